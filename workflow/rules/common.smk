# Shared helpers: the run grid of the config and the settings of each run.
import re
import shlex
from pathlib import Path

import yaml

NAME = config["name"]
DATA_ROOT = config["data_root"]
RUNS = f"{config['runs_dir']}/{NAME}"
RESULTS = f"{config['results_dir']}/{NAME}"
REPORTS = f"{config['reports_dir']}/{NAME}"
LOGS = f"logs/{NAME}"
PAPER = config["paper_dir"]

# Rules call the wildcat CLI from this checkout, so that it runs the same in the README's venv
# and in the per-rule conda environments (which hold the dependencies, not the package).
WILDCAT_ENV = f"PYTHONPATH={shlex.quote(workflow.basedir)}${{PYTHONPATH:+:$PYTHONPATH}}"
WILDCAT = f"{WILDCAT_ENV} python -m wildcat"

# The marker each dataset leaves once it is complete on disk (see wildcat.data.download), outside
# the dataset's tree: Snakemake deletes a rule's output before rerunning it (--forceall), and the
# generator refuses to write over a tree that has lost its own synthetic.json.
SYNTHETIC_MARKER = f"{DATA_ROOT}/.wildcat/synthetic.complete"

# The method ids made by the `combine` rule (multi-scale models, `datasets.<d>.multiscale`).
def _multiscale_entries(spec):
    """A dataset's `multiscale` value as a list: one mapping (one model) or a list of them."""
    entries = spec.get("multiscale") or []
    return entries if isinstance(entries, list) else [entries]


COMBINED = sorted({entry.get("method", "wildcat") for spec in config["datasets"].values() for entry in _multiscale_entries(spec)})
# The `method` wildcard of single-model rules and of the combine rule: disjoint, so that no
# metrics.json can be made by both (evaluate and combine). A wildcard's regex is embedded in the
# path's regex, so the lookahead ends at the next "/".
SINGLE_MODEL_METHOD = (f"(?!(?:{'|'.join(map(re.escape, COMBINED))})(?:/|$))" if COMBINED else "") + "[A-Za-z0-9_.]+"
COMBINED_METHOD = "|".join(map(re.escape, COMBINED)) or "(?!)"


wildcard_constraints:
    dataset="[a-z0-9_]+",
    method=SINGLE_MODEL_METHOD,  # the combine rule widens it to COMBINED_METHOD in its output
    seed="[0-9]+",


def methods_of(dataset):
    """The method ids of a dataset (a YAML alias inside the list stands for a nested list)."""
    listed = config["datasets"][dataset]["methods"]
    return [m for item in listed for m in (item if isinstance(item, list) else [item])]


def multiscale_specs(dataset):
    """The dataset's multi-scale models (paper Section 4.1), ``{combined method id: spec}``: each
    spec has ``base`` (ExperimentConfig keys of every member), ``scales`` (one entry per member,
    with its ``image_size_px`` and per-scale keys such as ``kmax``) and ``seeds``. VOC 2012 has
    two: the classification model (train split) and Table 9's segmentation model (train_aug)."""
    dataset_spec = config["datasets"][dataset]
    default_seeds = dataset_spec.get("seeds", config["seeds"])
    specs = {}
    for entry in _multiscale_entries(dataset_spec):
        method = entry.get("method", "wildcat")
        if method in specs:
            raise ValueError(f"datasets.{dataset}.multiscale: the method id {method!r} is given twice; give each multi-scale model its own id")
        specs[method] = {"base": entry.get("base", {}), "scales": entry["scales"], "seeds": entry.get("seeds", default_seeds)}
    return specs


def multiscale_members(dataset, method=None):
    """``{member method id: settings}`` of the dataset's multi-scale models (only of ``method`` if
    given), in scale order: the member at ``P`` px of method ``wildcat`` is ``wildcat_s<P>``, a
    normal single-scale run."""
    return {
        f"{combined}_s{scale['image_size_px']}": {**spec["base"], **scale}
        for combined, spec in multiscale_specs(dataset).items()
        if method in (None, combined)
        for scale in spec["scales"]
    }


def check_multiscale():
    """Parse-time checks: one output per rule (a combined id is never a single-model method nor a
    member of another model) and distinct scales."""
    for dataset in config["datasets"]:
        members = set()
        for method, spec in multiscale_specs(dataset).items():
            sizes = [scale["image_size_px"] for scale in spec["scales"]]
            if len(set(sizes)) != len(sizes):
                raise ValueError(f"datasets.{dataset}.multiscale ({method}): image_size_px values repeat ({sizes}); give each scale once")
            if method in config["methods"] or method in methods_of(dataset):
                raise ValueError(
                    f"datasets.{dataset}.multiscale.method {method!r} is also a single-model method id; the "
                    "multi-scale combination needs an id of its own (rename the single-scale method, e.g. to "
                    f"{method}_s448, the member run at 448 px)"
                )
            for member in multiscale_members(dataset, method):
                if member in config["methods"]:
                    raise ValueError(f"method id {member!r} is both a key of `methods` and a member of datasets.{dataset}.multiscale; rename the method")
                if member in members or member in COMBINED:
                    raise ValueError(f"method id {member!r} of datasets.{dataset}.multiscale is made twice; give the multi-scale models distinct ids")
                members.add(member)


def method_settings(dataset, method):
    """The ExperimentConfig keys of a method: a multi-scale member of the dataset, or `methods`."""
    members = multiscale_members(dataset)
    if method in members:
        return members[method]
    if method not in config["methods"]:
        raise ValueError(f"method {method!r} of dataset {dataset} is neither a key of `methods` nor a multi-scale member ({', '.join(members) or 'none'})")
    return config["methods"][method]


check_multiscale()


def grid():
    """Every (dataset, method, seed) of the config: the paper's experiment list (single models,
    then the multi-scale combinations)."""
    single = [
        (dataset, method, seed)
        for dataset, spec in config["datasets"].items()
        for method in methods_of(dataset)
        for seed in spec.get("method_seeds", {}).get(method, spec.get("seeds", config["seeds"]))
    ]
    multiscale = [
        (dataset, method, seed)
        for dataset in config["datasets"]
        for method, spec in multiscale_specs(dataset).items()
        for seed in spec["seeds"]
    ]
    return single + multiscale


def run_settings(dataset, method, seed):
    """The ExperimentConfig keys of one run: dataset settings <- method settings <- seed.
    A split name may hold ``{seed}`` (15 Scene: one random train/test split per seed)."""
    spec = config["datasets"][dataset]
    settings = {
        "data_root": DATA_ROOT,
        **spec["experiment"],
        **method_settings(dataset, method),
        **spec.get("method_overrides", {}).get(method, {}),
        "seed": int(seed),
    }
    for key in ("train_split", "test_split"):
        if key in settings:
            settings[key] = str(settings[key]).format(seed=seed)
    return settings


def train_options(wildcards):
    """`wildcat train` options for a run (values in YAML syntax)."""
    settings = run_settings(wildcards.dataset, wildcards.method, wildcards.seed)
    options = []
    for key, value in settings.items():
        text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()
        options.append(f"--{key.replace('_', '-')}={shlex.quote(text)}")
    return " ".join(options)


def run_resources(wildcards):
    """The dataset's `resources` (runtime, mem_mb, gpu per node, nodes, cpus_per_task), shared by
    the train, evaluate and combine rules."""
    return config["datasets"][wildcards.dataset].get("resources", {})


def train_resources(wildcards):
    """The resources of a training job that choose its layout, named as the SLURM executor plugin
    reads them (docs/distributed.md); None leaves a resource unset. One node: ``gpu`` (sbatch
    --gpus). Several nodes: an MPI job of one task per node, ``nodes``, ``tasks`` = nodes, ``mpi``,
    ``gres: gpu:<gpu>`` (GPUs per node; --gpus would count the whole job) and ``tasks_per_gpu: 0``
    (else the plugin turns ``tasks`` into --ntasks-per-gpu)."""
    resources = run_resources(wildcards)
    nodes, gpus = int(resources.get("nodes", 1)), int(resources.get("gpu", 0) or 0)
    layout = {"gpu": gpus, "nodes": None, "tasks": None, "mpi": None, "gres": None, "tasks_per_gpu": None}
    if nodes > 1:
        layout.update(gpu=None, nodes=nodes, tasks=nodes, mpi="srun", gres=f"gpu:{gpus}" if gpus else None,
                      tasks_per_gpu=0 if gpus else None)
    return {**layout, "cpus_per_task": resources.get("cpus_per_task")}


def train_launcher(wildcards, resources, threads):
    """The command that starts `wildcat train`, from the job's resources (after the profile's
    `set-resources`; docs/distributed.md):

    - the CPU or one GPU: ``python``;
    - ``gpu`` > 1 on one node: ``torchrun --standalone``, one process per GPU;
    - ``nodes`` > 1: the plugin runs an MPI job's shell command once, on the first node of the
      allocation, where ``srun`` starts one ``torchrun`` per node (one process per GPU of
      ``gres``, one without GPUs), and they meet at a c10d rendezvous on this first node
      (``$(hostname)``). srun is told the step's nodes, CPUs and GPUs: the plugin's job step
      clears the SLURM_* variables but the job id (and a few others), and srun (Slurm >= 22.05)
      does not inherit --cpus-per-task from sbatch anyway.
    """
    nodes = int(resources.get("nodes", 1) or 1)
    if nodes > 1:
        if resources.get("tasks") != nodes or "mpi" not in resources.keys():
            raise ValueError(
                f"training on {wildcards.dataset} ({nodes} nodes): a run on several nodes is an MPI job of one task per node, "
                f"but its resources have tasks={resources.get('tasks')!r}, mpi={resources.get('mpi')!r}; leave tasks and "
                "mpi to the train rule (do not set them in a profile)"
            )
        gres = str(resources.get("gres") or "")
        name, count = gres.split(":")[0], gres.split(":")[-1]  # gpu:4, gpu:a100:4
        per_node = int(count) if name == "gpu" and count.isdigit() else 1
        cpus = resources.get("cpus_per_task") or per_node * int(resources.get("cpus_per_gpu", 0) or 0) or threads
        gpus = f" --gres={gres}" if name == "gpu" else ""
        return (
            f"srun --nodes={nodes} --ntasks={nodes} --ntasks-per-node=1 --cpus-per-task={cpus}{gpus} --kill-on-bad-exit=1 "
            f"torchrun --nnodes={nodes} --nproc_per_node={per_node} --rdzv_backend=c10d --rdzv_id=$SLURM_JOB_ID "
            "--rdzv_endpoint=$(hostname):$((29500 + SLURM_JOB_ID % 1000))"
        )
    gpus = int(resources.get("gpu", 0) or 0)
    return f"torchrun --standalone --nproc_per_node={gpus}" if gpus > 1 else "python"


def all_metrics():
    return [f"{RESULTS}/{d}/{m}/seed{s}/metrics.json" for d, m, s in grid()]


def data_marker(dataset):
    if dataset == "synthetic":
        return SYNTHETIC_MARKER
    return f"{DATA_ROOT}/.wildcat/{dataset}.complete"


def training_data(wildcards):
    """The datasets a run reads: its own, and SBD for VOC 2012's train_aug split (Table 9)."""
    settings = run_settings(wildcards.dataset, wildcards.method, wildcards.seed)
    markers = [data_marker(wildcards.dataset)]
    if settings.get("train_split") == "train_aug":
        markers.append(data_marker("sbd"))
    return markers


def member_models(wildcards):
    """The per-scale model.pt files of a multi-scale model, in scale order."""
    members = multiscale_members(wildcards.dataset, wildcards.method)
    if not members:
        raise ValueError(f"{wildcards.method} of {wildcards.dataset}: the dataset has no `multiscale` entry of that method")
    return [f"{RUNS}/{wildcards.dataset}/{member}/seed{wildcards.seed}/model.pt" for member in members]
