"""The experiment grid of a workflow config: every (dataset, method, seed) run and its settings.

A workflow config (``config/config.yaml``, ``config/paper.yaml``; keys in
``workflow/schemas/config.schema.yaml`` and ``config/README.md``) lists datasets, each with its
shared ``experiment`` settings, its ``methods`` (ids of the top-level ``methods`` mapping), seeds,
per-method seeds and overrides, and its multi-scale models (paper Section 4.1). :class:`Grid`
turns it into runs and is the one place that gives them meaning: the Snakefile's rules, ``wildcat
budget`` and the tests all read the grid through it.

A run's settings merge, later keys winning: ``data_root`` <- the dataset's ``experiment`` <- the
method's settings (a ``methods`` entry, or a multi-scale member's ``base`` + scale) <- the
dataset's ``method_overrides`` for that method <- ``seed``. A split name may hold ``{seed}``
(15 Scene: one random train/test split per seed). ``device: auto`` becomes ``cuda`` for a
dataset whose ``resources`` ask for GPUs: such a job then stops at once, with one line, on a node
where torch sees no GPU, instead of training on the CPU until its time limit (``device: cpu``
keeps the CPU).

Every run's settings are validated when the grid is built (:func:`wildcat.engine.config.make_config`),
so a bad value fails the dry run with the key, the value and what is allowed, not a queued job.

Torch-free (the standard library and PyYAML): the Snakefile imports it.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wildcat.engine.config import ConfigError, load_yaml, make_config

__all__ = ["Run", "Grid", "check_config_files", "option_flag", "cli_options", "train_launcher"]

#: The port of a several-node job's c10d rendezvous: one per job id, so that two jobs whose first
#: node is the same do not collide (shell arithmetic, expanded on that node).
RENDEZVOUS_PORT = "$((29500 + SLURM_JOB_ID % 1000))"


@dataclass(frozen=True)
class Run:
    """One experiment of the grid: a trained model (``members`` empty) or a multi-scale
    combination of the per-scale runs ``members`` (method ids, in scale order)."""

    dataset: str
    method: str
    seed: int
    members: tuple[str, ...] = ()


def _flatten(items: list[Any]) -> list[Any]:
    """A YAML alias inside a list (``[a, *more]``) loads as a nested list."""
    return [leaf for item in items for leaf in (_flatten(item) if isinstance(item, list) else [item])]


def check_config_files(paths: list[str | Path]) -> None:
    """Read each workflow config file with the strict loader: a key given twice in one mapping
    (which Snakemake's YAML reading keeps silently, last value winning) is an error."""
    for path in paths:
        load_yaml(path)


class Grid:
    """The runs of a workflow config, validated on construction (raises :class:`ConfigError`)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.datasets: dict[str, Mapping[str, Any]] = dict(config["datasets"])
        self.methods: Mapping[str, Mapping[str, Any]] = config.get("methods") or {}
        self._multiscale = {dataset: self._parse_multiscale(dataset) for dataset in self.datasets}
        self.combined = sorted({method for specs in self._multiscale.values() for method in specs})
        self._check_multiscale()
        for dataset in self.datasets:
            for method in self.methods_of(dataset):
                self.method_settings(dataset, method)  # an unknown id fails here, naming it
        self.runs = self._expand()
        for run in self.runs:
            for method in run.members or (run.method,):
                self.settings(run.dataset, method, run.seed)

    # Look-ups.

    def methods_of(self, dataset: str) -> list[str]:
        """The single-model method ids of a dataset, in config order."""
        return [str(method) for method in _flatten(list(self.datasets[dataset].get("methods") or []))]

    def seeds_of(self, dataset: str, method: str) -> list[int]:
        """The seeds of a single-model method: ``method_seeds``, else the dataset's, else the config's."""
        spec = self.datasets[dataset]
        seeds = spec.get("method_seeds", {}).get(method, spec.get("seeds", self.config.get("seeds", [0])))
        return [int(seed) for seed in seeds]

    def multiscale_specs(self, dataset: str) -> dict[str, dict[str, Any]]:
        """``{combined method id: {"base", "scales", "seeds"}}``: the dataset's multi-scale models.
        VOC 2012 has two in the paper grid: classification (train) and Table 9's (train_aug)."""
        return self._multiscale[dataset]

    def multiscale_members(self, dataset: str, method: str | None = None) -> dict[str, dict[str, Any]]:
        """``{member id: settings}`` of the dataset's multi-scale models (of ``method`` only if
        given), in scale order: the member at ``P`` px of model ``wildcat`` is ``wildcat_s<P>``, a
        normal single-scale run."""
        return {
            f"{combined}_s{scale['image_size_px']}": {**spec["base"], **scale}
            for combined, spec in self._multiscale[dataset].items()
            if method in (None, combined)
            for scale in spec["scales"]
        }

    def method_settings(self, dataset: str, method: str) -> dict[str, Any]:
        """The ExperimentConfig keys of a method: a multi-scale member of the dataset, or ``methods``."""
        members = self.multiscale_members(dataset)
        if method in members:
            return members[method]
        if method not in self.methods:
            raise ConfigError(f"datasets.{dataset}.methods: unknown method id {method!r}; it is neither a key of "
                              f"`methods` ({', '.join(self.methods) or 'none'}) nor a multi-scale member "
                              f"({', '.join(members) or 'none'})")
        return dict(self.methods[method] or {})

    def settings(self, dataset: str, method: str, seed: int | str) -> dict[str, Any]:
        """The validated ExperimentConfig keys of one run (see the module docstring for the order)."""
        spec = self.datasets[dataset]
        settings = {
            "data_root": self.config.get("data_root", "data"),
            **(spec.get("experiment") or {}),
            **self.method_settings(dataset, method),
            **(spec.get("method_overrides") or {}).get(method, {}),
            "seed": int(seed),
        }
        for key in ("train_split", "test_split"):
            if key in settings:
                settings[key] = str(settings[key]).format(seed=seed)
        if settings.get("device", "auto") == "auto" and int(self.resources(dataset).get("gpu", 0) or 0) >= 1:
            settings["device"] = "cuda"  # a GPU job on a node whose GPU torch cannot see fails at once
        try:
            make_config(settings, "the run's settings")
        except ConfigError as error:
            where = self._origin(dataset, method, error.key)
            raise ConfigError(f"{where}: {error} (run {dataset}/{method}/seed{seed})", error.key) from None
        return settings

    def _origin(self, dataset: str, method: str, key: str | None) -> str:
        """Where in the config a run's setting ``key`` comes from (the last layer that sets it)."""
        spec = self.datasets[dataset]
        layers = [(f"datasets.{dataset}.experiment", spec.get("experiment") or {})]
        if method in self.multiscale_members(dataset):
            layers.append((f"datasets.{dataset}.multiscale", self.multiscale_members(dataset)[method]))
        else:
            layers.append((f"methods.{method}", self.methods.get(method) or {}))
        layers.append((f"datasets.{dataset}.method_overrides.{method}", (spec.get("method_overrides") or {}).get(method, {})))
        return next((name for name, values in reversed(layers) if key in values), f"datasets.{dataset}, method {method}")

    def resources(self, dataset: str) -> dict[str, Any]:
        """The dataset's ``resources`` (runtime, mem_mb, gpu per node, nodes, cpus_per_task)."""
        return dict(self.datasets[dataset].get("resources") or {})

    def train_resources(self, dataset: str) -> dict[str, Any]:
        """The resources of a training job that choose its layout, named as the SLURM executor
        plugin reads them (docs/distributed.md); None leaves a resource unset. One node: ``gpu``
        (sbatch --gpus). Several nodes: an MPI job of one task per node, ``nodes``, ``tasks`` =
        nodes, ``mpi``, ``gres: gpu:<gpu>`` (GPUs per node; --gpus would count the whole job) and
        ``tasks_per_gpu: 0`` (else the plugin turns ``tasks`` into --ntasks-per-gpu)."""
        resources = self.resources(dataset)
        nodes, gpus = int(resources.get("nodes", 1)), int(resources.get("gpu", 0) or 0)
        layout = {"gpu": gpus, "nodes": None, "tasks": None, "mpi": None, "gres": None, "tasks_per_gpu": None}
        if nodes > 1:
            layout.update(gpu=None, nodes=nodes, tasks=nodes, mpi="srun", gres=f"gpu:{gpus}" if gpus else None,
                          tasks_per_gpu=0 if gpus else None)
        return {**layout, "cpus_per_task": resources.get("cpus_per_task")}

    # Parsing.

    def _parse_multiscale(self, dataset: str) -> dict[str, dict[str, Any]]:
        spec = self.datasets[dataset]
        entries = spec.get("multiscale") or []
        specs: dict[str, dict[str, Any]] = {}
        for entry in entries if isinstance(entries, list) else [entries]:
            method = entry.get("method", "wildcat")
            if method in specs:
                raise ConfigError(f"datasets.{dataset}.multiscale: the method id {method!r} is given twice; "
                                  "give each multi-scale model its own id")
            seeds = entry.get("seeds", spec.get("seeds", self.config.get("seeds", [0])))
            specs[method] = {"base": entry.get("base", {}), "scales": entry["scales"], "seeds": [int(s) for s in seeds]}
        return specs

    def _check_multiscale(self) -> None:
        """One output per rule (a combined id is never a single-model method nor a member of
        another model) and distinct scales."""
        for dataset in self.datasets:
            members: set[str] = set()
            for method, spec in self._multiscale[dataset].items():
                sizes = [scale.get("image_size_px") for scale in spec["scales"]]
                if len(set(sizes)) != len(sizes):
                    raise ConfigError(f"datasets.{dataset}.multiscale ({method}): image_size_px values repeat "
                                      f"({sizes}); give each scale once")
                if method in self.methods or method in self.methods_of(dataset):
                    raise ConfigError(
                        f"datasets.{dataset}.multiscale.method {method!r} is also a single-model method id; the "
                        "multi-scale combination needs an id of its own (rename the single-scale method, e.g. to "
                        f"{method}_s448, the member run at 448 px)")
                for member in self.multiscale_members(dataset, method):
                    if member in self.methods:
                        raise ConfigError(f"method id {member!r} is both a key of `methods` and a member of "
                                          f"datasets.{dataset}.multiscale; rename the method")
                    if member in members or member in self.combined:
                        raise ConfigError(f"method id {member!r} of datasets.{dataset}.multiscale is made twice; "
                                          "give the multi-scale models distinct ids")
                    members.add(member)

    def _expand(self) -> list[Run]:
        """Every run: the single models, then the multi-scale combinations (the paper's order)."""
        single = [Run(dataset, method, seed) for dataset in self.datasets for method in self.methods_of(dataset)
                  for seed in self.seeds_of(dataset, method)]
        combined = [Run(dataset, method, seed, tuple(self.multiscale_members(dataset, method)))
                    for dataset in self.datasets for method, spec in self._multiscale[dataset].items()
                    for seed in spec["seeds"]]
        return single + combined


def option_flag(key: str) -> str:
    """The command-line flag of a settings key: ``image_size_px`` -> ``--image-size-px`` (the
    options of ``wildcat train`` and ``wildcat make-synthetic`` are spelled this way)."""
    return f"--{key.replace('_', '-')}"


def cli_options(settings: Mapping[str, Any]) -> str:
    """``--key=value`` options for settings keys (ExperimentConfig keys for ``wildcat train``,
    SyntheticSpec fields for ``wildcat make-synthetic``): YAML values, quoted for the shell."""
    options = []
    for key, value in settings.items():
        text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()
        options.append(f"{option_flag(key)}={shlex.quote(text)}")
    return " ".join(options)


def train_launcher(resources: Mapping[str, Any], threads: int, dataset: str) -> str:
    """The command that starts ``wildcat train``, from the job's resources (after the profile's
    ``set-resources``; docs/distributed.md):

    - the CPU or one GPU: ``python``;
    - ``gpu`` > 1 on one node: ``torchrun --standalone``, one process per GPU;
    - ``nodes`` > 1: the plugin runs an MPI job's shell command once, on the first node of the
      allocation, where ``srun`` starts one ``torchrun`` per node (one process per GPU of
      ``gres``, one without GPUs), and they meet at a c10d rendezvous on this first node
      (``$(hostname)``), whose store ``python -m wildcat.engine.rendezvous`` hosts until srun has
      ended (no agent hosts it: one that did would take it down while the others still close
      the rendezvous). srun is told the step's nodes, CPUs and GPUs: the plugin's job step
      clears the SLURM_* variables but the job id (and a few others), and srun (Slurm >= 22.05)
      does not inherit --cpus-per-task from sbatch anyway.
    """
    nodes = int(resources.get("nodes", 1) or 1)
    if nodes > 1:
        if resources.get("tasks") != nodes or "mpi" not in resources.keys():
            raise ConfigError(
                f"training on {dataset} ({nodes} nodes): a run on several nodes is an MPI job of one task per node, "
                f"but its resources have tasks={resources.get('tasks')!r}, mpi={resources.get('mpi')!r}; leave tasks and "
                "mpi to the train rule (do not set them in a profile)")
        gres = str(resources.get("gres") or "")
        name, count = gres.split(":")[0], gres.split(":")[-1]  # gpu:4, gpu:a100:4
        per_node = int(count) if name == "gpu" and count.isdigit() else 1
        cpus = resources.get("cpus_per_task") or per_node * int(resources.get("cpus_per_gpu", 0) or 0) or threads
        gpus = f" --gres={gres}" if name == "gpu" else ""
        return (
            f"python -m wildcat.engine.rendezvous --port={RENDEZVOUS_PORT} "
            f"srun --nodes={nodes} --ntasks={nodes} --ntasks-per-node=1 --cpus-per-task={cpus}{gpus} --kill-on-bad-exit=1 "
            f"torchrun --nnodes={nodes} --nproc_per_node={per_node} --rdzv_backend=c10d --rdzv_id=$SLURM_JOB_ID "
            f"--rdzv_endpoint=$(hostname):{RENDEZVOUS_PORT} --rdzv_conf=is_host=false"
        )
    gpus = int(resources.get("gpu", 0) or 0)
    return f"torchrun --standalone --nproc_per_node={gpus}" if gpus > 1 else "python"
