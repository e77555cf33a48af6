"""Which of a config's methods go in which table: the ``report`` block of a workflow config.

The method ids of a grid are the config's (``config/config.yaml``, ``config/paper.yaml``), so the
report reads them from there rather than knowing any itself. The block, validated by
``workflow/schemas/config.schema.yaml`` in the workflow and by :meth:`ReportLayout.from_config`
for ``wildcat report --layout`` (docs/contracts.md, "The report"):

* ``methods``: the columns of the ``methods`` table and the bars of ``methods_<dataset>.png``.
* ``extra_rows``: our methods added below the paper's rows of the main tables (classification,
  localization, segmentation: paper Tables 2-4, 8, 9) where they were run, each followed by the
  members ``<method>_s<px>`` of its multi-scale model that were evaluated on their own.
* ``ablation_bases``: the base methods of the ablation tables (alpha, M) and of the alpha figures.
* ``paper_ablation_base``: the base, one of ``ablation_bases``, whose settings are the paper's
  analysis setting (448 px, k+ = k- = 1, M = 1, alpha = 1 unless varied): the paper's Table 6 and
  Figures 4-5 numbers stand beside it. None: they are not shown.
* ``claims``: pairs ``[A, B]`` of method ids: the ``claims`` table says, per dataset and metric,
  whether A and B differ by more than their seeds' noise (the rule of ``wildcat compare``).
* ``labels``: readable names of method ids, in the rows our methods add and in the ``methods``
  table's title; a method without one is shown by its id, a member by its model's and its scale.

Standard library and PyYAML only: the Snakefile builds a layout to check the block at parse time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from wildcat.engine.config import ConfigError, load_yaml

__all__ = ["ReportLayout"]


@dataclass(frozen=True)
class ReportLayout:
    """A workflow config's ``report`` block (see the module docstring); empty by default."""

    methods: tuple[str, ...] = ()
    extra_rows: tuple[str, ...] = ()
    ablation_bases: tuple[str, ...] = ()
    paper_ablation_base: str | None = None
    claims: tuple[tuple[str, str], ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("methods", "extra_rows", "ablation_bases"):
            ids = getattr(self, name)
            if not isinstance(ids, (list, tuple)) or not all(isinstance(method, str) for method in ids):
                raise ConfigError(f"report.{name}: expected a list of method ids, got {ids!r}", name)
            object.__setattr__(self, name, tuple(ids))
        pairs = self.claims
        if not isinstance(pairs, (list, tuple)) or not all(
                isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(m, str) for m in pair)
                for pair in pairs):
            raise ConfigError(f"report.claims: expected a list of [method, method] pairs, got {pairs!r}", "claims")
        object.__setattr__(self, "claims", tuple(tuple(pair) for pair in pairs))
        if not isinstance(self.labels, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.labels.items()):
            raise ConfigError(f"report.labels: expected a mapping of method id to label, got {self.labels!r}", "labels")
        if self.paper_ablation_base is not None and self.paper_ablation_base not in self.ablation_bases:
            raise ConfigError(f"report.paper_ablation_base {self.paper_ablation_base!r} is not one of "
                              f"report.ablation_bases {list(self.ablation_bases)}", "paper_ablation_base")

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None) -> ReportLayout:
        """The layout of a ``report`` block (None: the empty layout).

        Raises:
            ConfigError: an unknown key, or a value of the wrong kind.
        """
        known = [f.name for f in fields(cls)]
        block = {} if block is None else block
        if not isinstance(block, Mapping):
            raise ConfigError(f"report: expected a mapping of {', '.join(known)}, got {block!r}")
        unknown = sorted(set(block) - set(known))
        if unknown:
            raise ConfigError(f"report: unknown key {unknown[0]!r}; allowed: {', '.join(known)}", unknown[0])
        return cls(**block)

    @classmethod
    def from_json(cls, text: str) -> ReportLayout:
        """The layout of a ``report`` block given as JSON (``wildcat report --layout``)."""
        try:
            block = json.loads(text)
        except ValueError as error:
            raise ConfigError(f"report layout {text!r} is not valid JSON ({error})") from None
        return cls.from_config(block)

    @classmethod
    def from_workflow_config(cls, path: str | Path) -> ReportLayout:
        """The layout of the ``report`` block of the workflow config file ``path``."""
        return cls.from_config((load_yaml(path) or {}).get("report"))

    def to_json(self) -> str:
        """The layout as canonical JSON, which :meth:`from_json` reads back."""
        return json.dumps(asdict(self), sort_keys=True)

    def label(self, method: str) -> str:
        """The readable name of ``method``: its label, else its id."""
        return self.labels.get(method, method)
