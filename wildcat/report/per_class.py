"""The ``per_class`` table: per-class AP with alpha = 0 against alpha > 0, for the classes built
for negative evidence and for the controls (paper Section 3.3).

The synthetic dataset is built so that negative evidence has something to do (docs/synthetic.md):
in a shared pair ``{"emblem_of": Y, "base_of": X}`` the base of ``X`` is the emblem of ``Y``, so
the emblem of ``Y`` next to the mark of ``X`` is an ``X`` and not a ``Y``: the mark of ``X`` is
evidence against ``Y``, which the lowest regions of the ``Y`` map can carry when alpha > 0 (paper
Equation 2). The classes of no pair are the controls. ``wildcat evaluate`` records the design of
the test split's tree as ``dataset_design`` in ``metrics.json`` (docs/contracts.md), so the
report needs the results files only.

* :func:`load_per_class` reads each run's per-class AP (``per_class.map``) and design.
* :func:`per_class_table` puts, for each ablation base of the layout and each dataset with a
  design, the AP of every class at each alpha of the base's alpha ablation
  (:func:`~wildcat.report.tables.ablation_runs`) beside the difference alpha > 0 minus alpha = 0
  and its verdict by :func:`~wildcat.report.compare.welch_verdict` (the claims table's rule). Its
  note says, computed from the cells, how many classes of each group alpha > 0 raises.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from wildcat.report.compare import welch_verdict
from wildcat.report.layout import ReportLayout
from wildcat.report.load import ResultsFormatError, read_metrics_json
from wildcat.report.names import DATASETS
from wildcat.report.tables import NOT_RUN, ablation_runs, display_order, format_ours

__all__ = ["AP_COLUMNS", "GROUPS", "PerClassResults", "class_roles", "load_per_class", "per_class_table"]

#: The columns of :attr:`PerClassResults.ap`.
AP_COLUMNS = ("dataset", "method", "seed", "class", "value")
#: The groups of classes, in row order: the classes whose emblem is another's base (those that
#: negative evidence should help), the classes whose base is another's emblem, the controls.
GROUPS = ("emblem shared", "base shared", "control")
#: How the sentences under the table name each group: (one class, several classes).
_GROUP_WORDS = {
    "emblem shared": ("class whose emblem is another class's base (where negative evidence should help)",
                      "classes whose emblem is another class's base (where negative evidence should help)"),
    "base shared": ("class whose base is another class's emblem", "classes whose base is another class's emblem"),
    "control": ("control (no shared part)", "controls (no shared part)"),
}
UNDEFINED = "undefined"
VERDICT_RAISED, VERDICT_LOWERED, VERDICT_NOT_RESOLVED = "raised", "lowered", "not resolved"
VERDICT_INCONCLUSIVE = "inconclusive (under 2 seeds)"


@dataclass(frozen=True)
class PerClassResults:
    """What the ``per_class`` table reads from the runs' ``metrics.json``.

    Attributes:
        ap: one row per (run, class): :data:`AP_COLUMNS`, ``value`` the AP in % (NaN where the
            class has no positive test image).
        designs: ``{dataset: dataset_design}`` for the datasets whose runs record a design.
    """

    ap: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(AP_COLUMNS)))
    designs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def _checked_design(design: Any, path: Path) -> dict[str, Any]:
    """``design`` if it is a ``dataset_design`` (a class list and shared pairs of its classes)."""
    classes = design.get("classes") if isinstance(design, dict) else None
    pairs = design.get("shared_pairs") if isinstance(design, dict) else None
    if (not isinstance(classes, list) or not isinstance(pairs, list)
            or not all(isinstance(p, dict) and p.get("emblem_of") in classes and p.get("base_of") in classes
                       for p in pairs)):
        raise ResultsFormatError(f"{path}: \"dataset_design\" must hold \"classes\" and \"shared_pairs\" of "
                                 "{\"emblem_of\": class, \"base_of\": class} (docs/contracts.md); rerun `wildcat evaluate`")
    return design


def load_per_class(runs: pd.DataFrame, runs_dir: str | os.PathLike[str]) -> PerClassResults:
    """Read per-class AP and the class design of each run of ``runs``.

    Args:
        runs: rows of :func:`~wildcat.report.load.load_runs` of ``runs_dir`` (their ``path``).
        runs_dir: the folder the runs' paths are relative to.

    Raises:
        ResultsFormatError: a malformed ``per_class.map`` or ``dataset_design``, or two runs of
            one dataset that record different designs.
    """
    root = Path(runs_dir)
    rows: list[dict[str, Any]] = []
    designs: dict[str, tuple[dict[str, Any], Path]] = {}
    for relative in sorted(set(runs["path"])):
        path = root / relative
        record = read_metrics_json(path, root)
        per_class = (record.get("per_class") or {}).get("map") or {}
        if not isinstance(per_class, dict) or not all(
                value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
                for value in per_class.values()):
            raise ResultsFormatError(f"{path}: \"per_class\".\"map\" must map each class to its AP in % or null "
                                     "(docs/contracts.md); rerun `wildcat evaluate`")
        for name, value in per_class.items():
            rows.append({"dataset": record["dataset"], "method": record["method"], "seed": int(record["seed"]),
                         "class": name, "value": math.nan if value is None else float(value)})
        if record.get("dataset_design") is None:
            continue
        design = _checked_design(record["dataset_design"], path)
        seen = designs.setdefault(record["dataset"], (design, path))
        if json.dumps(seen[0], sort_keys=True) != json.dumps(design, sort_keys=True):
            raise ResultsFormatError(f"{seen[1]} and {path} record different class designs of {record['dataset']}: "
                                     "their test sets differ; rerun them on one dataset tree")
    ap = pd.DataFrame(rows, columns=list(AP_COLUMNS)).astype({"seed": "int64", "value": "float64"})
    return PerClassResults(ap, {dataset: design for dataset, (design, _) in designs.items()})


def class_roles(design: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(class, group, role)`` of every class of ``design``, in row order: the groups of
    :data:`GROUPS`, each in class order."""
    roles: dict[str, tuple[str, str]] = {}
    for pair in design["shared_pairs"]:
        roles[pair["emblem_of"]] = ("emblem shared", f"emblem = base of {pair['base_of']}")
        roles[pair["base_of"]] = ("base shared", f"base = emblem of {pair['emblem_of']}")
    ordered = [(name, *roles.get(name, ("control", "no shared part"))) for name in design["classes"]]
    return sorted(ordered, key=lambda row: GROUPS.index(row[1]))


def _alpha_text(alpha: float) -> str:
    return f"{alpha:g}"


def _ap_column(alpha: float) -> str:
    return f"AP, alpha = {_alpha_text(alpha)}"


def _difference_columns(alpha: float) -> tuple[str, str]:
    return f"alpha {_alpha_text(alpha)} - 0", f"verdict, alpha {_alpha_text(alpha)} vs 0"


def _seed_values(ap: pd.DataFrame) -> dict[tuple[str, str], list[float]]:
    """``{(method, class): [AP of each seed, in seed order]}``, undefined APs left out."""
    values: dict[tuple[str, str], list[float]] = {}
    for method, name, value in ap.sort_values("seed", kind="stable")[["method", "class", "value"]].itertuples(index=False):
        if not math.isnan(value):
            values.setdefault((method, name), []).append(float(value))
    return values


@dataclass
class _Comparison:
    """One alpha > 0 against alpha = 0 of one ablation: each class's difference and verdict."""

    dataset: str
    base: str
    alpha: float
    differences: dict[str, float] = field(default_factory=dict)  # class -> alpha minus alpha 0
    verdicts: dict[str, str] = field(default_factory=dict)


def _compare(reference: Sequence[float], candidate: Sequence[float]) -> tuple[float, str, str]:
    """The difference (candidate - reference), its cell and the verdict (:func:`welch_verdict`)."""
    difference, tolerance, verdict = welch_verdict(reference, candidate)
    if verdict == "inconclusive":
        return difference, f"{difference:+.1f}", VERDICT_INCONCLUSIVE
    cleared = verdict == "differs"
    word = (VERDICT_RAISED if difference > 0 else VERDICT_LOWERED) if cleared else VERDICT_NOT_RESOLVED
    return difference, f"{difference:+.1f} (tol. {tolerance:.1f})", word


def _ablation_rows(dataset: str, base: str, chosen: pd.DataFrame, ap: pd.DataFrame,
                   design: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[_Comparison]]:
    """The rows of one alpha ablation (``chosen``: its runs of ``dataset``, one per seed and alpha
    value) and its comparisons, one per alpha > 0."""
    method_of = dict(zip(chosen["alpha"], chosen["method"]))
    alphas = sorted(method_of)
    chosen_runs = set(zip(chosen["method"], chosen["seed"]))
    chosen_rows = pd.Series([run in chosen_runs for run in zip(ap["method"], ap["seed"])], index=ap.index, dtype=bool)
    seeds = _seed_values(ap[(ap["dataset"] == dataset) & chosen_rows])
    comparisons = [_Comparison(dataset, base, alpha) for alpha in alphas if alpha > 0]
    rows = []
    for name, group, role in class_roles(design):
        row: dict[str, Any] = {"dataset": dataset, "base": base, "class": name, "group": group, "role": role}
        values = {alpha: seeds.get((method_of[alpha], name), []) for alpha in alphas}
        for alpha in alphas:
            row[_ap_column(alpha)] = format_ours(values[alpha]) if values[alpha] else UNDEFINED
        for comparison in comparisons:
            difference_column, verdict_column = _difference_columns(comparison.alpha)
            if not (values[0.0] and values[comparison.alpha]):
                row[difference_column] = row[verdict_column] = UNDEFINED
                continue
            difference, row[difference_column], row[verdict_column] = _compare(values[0.0], values[comparison.alpha])
            comparison.differences[name] = difference
            comparison.verdicts[name] = row[verdict_column]
        rows.append(row)
    return rows, comparisons


def _sentence(comparison: _Comparison, design: Mapping[str, Any], layout: ReportLayout) -> str:
    """What one comparison shows, from its numbers: how many classes of each group alpha > 0
    raises, and which differences clear the seeds' noise."""
    groups: dict[str, list[str]] = {}
    for name, group, _ in class_roles(design):
        if name in comparison.differences:
            groups.setdefault(group, []).append(name)
    parts = [f"on {sum(comparison.differences[name] > 0 for name in names)} of {len(names)} "
             f"{_GROUP_WORDS[group][len(names) > 1]}" for group, names in groups.items()]
    counts = (", ".join(parts[:-1]) + " and " if len(parts) > 1 else "") + (parts[-1] if parts else "on no class")
    cleared = [f"{name} {comparison.differences[name]:+.1f} ({verdict})" for name, verdict in comparison.verdicts.items()
               if verdict in (VERDICT_RAISED, VERDICT_LOWERED)]
    if any(verdict == VERDICT_INCONCLUSIVE for verdict in comparison.verdicts.values()):
        noise = "With under 2 seeds a side, no difference can be judged against the seeds' noise."
    elif cleared:
        noise = f"The differences that clear the seeds' noise: {', '.join(cleared)}."
    else:
        noise = "No difference clears the seeds' noise."
    return (f"{comparison.dataset}, around {layout.label(comparison.base)}: alpha = {_alpha_text(comparison.alpha)} "
            f"gives a higher mean AP than alpha = 0 {counts}. {noise}")


_NOTE = ("Per-class AP (%, mean ± sample std over seeds) of the alpha ablation around each base; "
         "`alpha a - 0`: the mean at alpha = a minus the mean at alpha = 0, with the tolerance max(1, "
         "t(0.975, Welch df) x standard error) of the claims table; `raised` / `lowered` only where the "
         "difference exceeds it. Groups: a shared pair's class whose emblem is the other's base (the other's "
         "mark is evidence against it: negative evidence, paper Section 3.3, should help it), the pair's other "
         "class, and the controls (docs/synthetic.md).")
_NOT_AVAILABLE = ("Not available: no dataset of this config records a class design (`dataset_design` in "
                  "metrics.json, written for the synthetic dataset) and has runs with alpha = 0 and alpha > 0 "
                  "around a base of the report block's `ablation_bases`.")


def per_class_table(runs: pd.DataFrame, results: PerClassResults, layout: ReportLayout) -> pd.DataFrame:
    """The ``per_class`` table (see the module docstring) of one config's runs.

    Args:
        runs: rows of :func:`~wildcat.report.load.load_runs` (one config).
        results: :func:`load_per_class` of those runs.
        layout: its ``ablation_bases`` are the bases of the alpha ablations; ``labels`` name them.

    Returns:
        One row per (dataset, base, class): ``dataset, base, class, group, role``, then
        ``AP, alpha = a`` for each alpha of the ablations (:data:`~wildcat.report.tables.NOT_RUN`
        where an ablation has no such alpha), then ``alpha a - 0`` and ``verdict, alpha a vs 0``
        for each a > 0. Rows: datasets in display order, bases in the layout's order, classes by
        group (:data:`GROUPS`). ``attrs["note"]`` holds the sentences that say what it shows (or
        why it is empty). Every cell is a string.
    """
    rows: list[dict[str, Any]] = []
    sentences: list[str] = []
    alphas: set[float] = set()
    for dataset in display_order(list(results.designs), DATASETS):
        for base in layout.ablation_bases:
            chosen = ablation_runs(runs[runs["dataset"] == dataset], base, "alpha")
            chosen = chosen[chosen["metric"] == "map"]
            if 0.0 not in set(chosen["alpha"]) or chosen["alpha"].nunique() < 2:
                continue
            table_rows, comparisons = _ablation_rows(dataset, base, chosen, results.ap, results.designs[dataset])
            rows += table_rows
            alphas |= set(chosen["alpha"])
            sentences += [_sentence(c, results.designs[dataset], layout) for c in comparisons]
    columns = ["dataset", "base", "class", "group", "role", *map(_ap_column, sorted(alphas))]
    columns += [column for alpha in sorted(alphas) if alpha > 0 for column in _difference_columns(alpha)]
    frame = pd.DataFrame(rows, columns=columns).fillna(NOT_RUN)
    frame.attrs["note"] = "\n\n".join([*sentences, _NOTE]) if rows else _NOT_AVAILABLE
    return frame
