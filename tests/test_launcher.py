"""How the train rule starts `wildcat train` for each layout (train_launcher and train_resources in
workflow/rules/common.smk; docs/distributed.md), and a real two-"node" DDP run on this machine.

1. Dry runs (``-n -p``) of the tiny workflow with a dataset's ``resources`` set for the CPU, 1 GPU,
   4 GPUs of one node and 2 nodes x 4 GPUs: the exact shell command, and the sbatch options that
   snakemake-executor-plugin-slurm makes of the job's resources (its own ``get_submit_command``,
   fed the resources the dry run prints).
2. The several-node launcher, with ``srun`` replaced by a stand-in that runs its command once
   per "node" on this machine (CPU, gloo, one process per "node", the c10d store hosted by
   ``python -m wildcat.engine.rendezvous`` on a free port), must train the same model, bit for bit, as
   ``torchrun --standalone --nproc_per_node 2``: both are world size 2 and give each rank the same batches, and an
   all-reduce of two values is exact whatever the order. No SLURM and no GPU are involved.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from wildcat.engine.config import save_config
from wildcat.engine.train import CHECKPOINT, FINAL_WEIGHTS

from helpers import ROOT, free_port, tiny_config
from helpers.workflow import TINY, snakemake

# Subprocess launches of the training command: out of `make test-fast`, in `make test`.
pytestmark = pytest.mark.slow

TRAIN_TARGET = "runs/tiny/synthetic/wildcat/seed0/model.pt"
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))

PORT = "$((29500 + SLURM_JOB_ID % 1000))"
MULTI_NODE = (f"python -m wildcat.engine.rendezvous --port={PORT} "
              "srun --nodes=2 --ntasks=2 --ntasks-per-node=1 --cpus-per-task=32 --gres=gpu:4 --kill-on-bad-exit=1 "
              "torchrun --nnodes=2 --nproc_per_node=4 --rdzv_backend=c10d --rdzv_id=$SLURM_JOB_ID "
              f"--rdzv_endpoint=$(hostname):{PORT} --rdzv_conf=is_host=false")

#: layout -> (the dataset's `resources`, the launcher, sbatch options present, sbatch options absent)
LAYOUTS = {
    "cpu": (None, "python", ["--ntasks=1"], ["--gpus", "--gres", "--nodes"]),
    "1 gpu": ({"gpu": 1}, "python", ["--gpus=1"], ["--gres", "--nodes", "--ntasks"]),
    "4 gpus": ({"gpu": 4}, "torchrun --standalone --nproc_per_node=4", ["--gpus=4"], ["--gres", "--nodes", "--ntasks"]),
    "2 nodes x 4 gpus": (
        {"nodes": 2, "gpu": 4, "cpus_per_task": 32, "runtime": 180, "mem_mb": 128000},
        MULTI_NODE,
        ["--nodes=2", "--ntasks=2", "--gres=gpu:4", "--cpus-per-task=32", "-t 180", "--mem 128000"],
        ["--gpus", "--ntasks-per-gpu"],
    ),
}


def dry_run_train(tmp_path: Path, resources: dict | None) -> tuple[str, dict[str, str]]:
    """The shell command and the resources of the tiny workflow's training job, from a dry run."""
    config = yaml.safe_load(TINY.read_text())
    config["datasets"]["synthetic"]["methods"] = ["wildcat"]
    if resources:
        config["datasets"]["synthetic"]["resources"] = resources
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake("-n", "-p", "--forceall", "--configfile", str(path), "--directory", str(tmp_path), TRAIN_TARGET)
    assert result.returncode == 0, result.stderr
    (job,) = [block for block in result.stdout.split("\n\n") if "rule train:" in block]
    shell = re.search(r"^Shell command: (.*)$", job, re.MULTILINE).group(1)
    listed = re.search(r"^\s+resources: (.*)$", job, re.MULTILINE).group(1)
    return shell, dict(item.split("=", 1) for item in listed.split(", "))


def launcher_of(shell: str) -> str:
    """What the shell command puts between the environment and ``-m wildcat train``."""
    prefix = shell.split(" -m wildcat train ", 1)[0]
    return prefix.split("${PYTHONPATH:+:$PYTHONPATH} ", 1)[1]


class _Resources(dict):
    """A job's resources as the plugin reads them: ``.get(name)`` and ``.name``."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def sbatch_options(resources: dict[str, str], threads: int = 1) -> str:
    """The sbatch call snakemake-executor-plugin-slurm builds for a job with these resources."""
    submit = pytest.importorskip("snakemake_executor_plugin_slurm.submit_string",
                                 reason="snakemake-executor-plugin-slurm is not installed")
    utils = pytest.importorskip("snakemake_executor_plugin_slurm.utils")
    values = _Resources({key: int(value) if value.isdigit() else value for key, value in resources.items()})
    job = SimpleNamespace(resources=values, threads=threads)
    params = dict(run_uuid="id", slurm_logfile="log", comment_str="rule_train", account="", partition="", workdir="")
    return submit.get_submit_command(job, params) + utils.set_gres_string(job)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_train_launcher_for_each_layout(tmp_path, layout):
    resources, launcher, present, absent = LAYOUTS[layout]
    shell, job_resources = dry_run_train(tmp_path, resources)
    assert launcher_of(shell) == launcher
    assert f" {launcher} -m wildcat train --quiet --restart-if-changed --out runs/tiny/synthetic/wildcat/seed0 " in shell
    call = sbatch_options(job_resources)
    for option in present:
        assert re.search(rf"(^| ){re.escape(option)}( |$)", call), (option, call)
    for option in absent:
        assert not re.search(rf"(^| ){re.escape(option)}[= ]", call), (option, call)
    # The job step runs the shell command of an MPI job (`mpi` among its resources) as it is, on
    # the first node; any other job under `srun -n1` (snakemake-executor-plugin-slurm-jobstep).
    assert ("mpi" in job_resources) == layout.startswith("2 nodes")


def test_several_nodes_without_gpus_start_one_process_per_node(tmp_path):
    shell, job_resources = dry_run_train(tmp_path, {"nodes": 3})
    assert launcher_of(shell) == (
        f"python -m wildcat.engine.rendezvous --port={PORT} "
        "srun --nodes=3 --ntasks=3 --ntasks-per-node=1 --cpus-per-task=1 --kill-on-bad-exit=1 torchrun --nnodes=3 "
        f"--nproc_per_node=1 --rdzv_backend=c10d --rdzv_id=$SLURM_JOB_ID --rdzv_endpoint=$(hostname):{PORT} "
        "--rdzv_conf=is_host=false"
    )
    call = sbatch_options(job_resources)
    assert " --nodes=3 " in call and " --ntasks=3 " in call and "gpu" not in call


#: What ``srun --ntasks=N ... COMMAND`` does on N nodes, on this machine: COMMAND N times at once
#: (SLURM_NODEID = task number), task i's output in $SRUN_LOGS/task<i>.log, the worst exit status.
FAKE_SRUN = """#!/usr/bin/env bash
tasks=1
while [[ $1 == --* ]]; do case $1 in --ntasks=*) tasks=${1#--ntasks=};; esac; shift; done
pids=()
for ((i = 0; i < tasks; i++)); do SLURM_NODEID=$i SLURM_PROCID=$i "$@" >"$SRUN_LOGS/task$i.log" 2>&1 & pids+=($!); done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
exit $status
"""


def _run(command: list[str], env: dict[str, str], timeout_s: int = 300) -> str:
    """Run the command to its end; its output (stdout and stderr), which must end with status 0."""
    result = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=timeout_s)
    assert result.returncode == 0, result.stdout[-3000:]
    return result.stdout


@pytest.mark.slow
def test_two_node_launcher_trains_as_one_node_with_two_processes(tiny_data_root, tmp_path):
    # The wired launcher for 2 nodes on the CPU (one process per node), srun replaced by a stand-in
    # that starts its command once per "node" on this machine.
    (tmp_path / "dry").mkdir()
    shell, _ = dry_run_train(tmp_path / "dry", {"nodes": 2})
    launcher = launcher_of(shell)
    assert launcher.startswith(f"python -m wildcat.engine.rendezvous --port={PORT} srun --nodes=2 --ntasks=2 ")
    assert " torchrun --nnodes=2 --nproc_per_node=1 --rdzv_backend=c10d " in launcher
    launcher = launcher.replace(PORT, str(free_port()))  # the one port this test may take
    try:
        socket.gethostbyname(socket.gethostname())
    except OSError:  # `$(hostname)` must resolve, as cluster node names do
        launcher = launcher.replace("$(hostname)", "127.0.0.1")
    bin_dir, logs = tmp_path / "bin", tmp_path / "srun_logs"
    bin_dir.mkdir(), logs.mkdir()
    (bin_dir / "srun").write_text(FAKE_SRUN)
    (bin_dir / "srun").chmod(0o755)

    config = tiny_config(tiny_data_root, epochs=2, batch_size=16)  # 240 images: 2 x 8 steps of 2 x 16
    save_config(config, tmp_path / "exp.yaml")
    train = f"-m wildcat train --quiet --config {shlex.quote(str(tmp_path / 'exp.yaml'))} --out "
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "SLURM_JOB_ID": "4242", "SRUN_LOGS": str(logs),
           "PATH": os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]])}

    _run(["bash", "-c", f"{launcher} {train}{shlex.quote(str(tmp_path / 'two_nodes'))}"], env)
    for task in (0, 1):  # each "node"'s rank prints the final weights, and no torchrun lost the store
        output = (logs / f"task{task}.log").read_text()
        assert str(tmp_path / "two_nodes" / FINAL_WEIGHTS) in output.splitlines(), output[-3000:]
        assert "RendezvousConnectionError" not in output and "failed to shutdown" not in output, output[-3000:]
    _run([TORCHRUN, "--standalone", "--nproc_per_node=2", *shlex.split(train), str(tmp_path / "one_node")], env)

    for name in (FINAL_WEIGHTS, CHECKPOINT):
        two = torch.load(tmp_path / "two_nodes" / name, weights_only=False)
        one = torch.load(tmp_path / "one_node" / name, weights_only=False)
        weights_two, weights_one = (two, one) if name == FINAL_WEIGHTS else (two["model"], one["model"])
        assert weights_two.keys() == weights_one.keys()
        for key in weights_one:
            assert torch.equal(weights_two[key], weights_one[key]), (name, key)
    losses = [[row.split(",")[1] for row in (tmp_path / run / "train_log.csv").read_text().splitlines()[1:]]
              for run in ("two_nodes", "one_node")]
    assert losses[0] == losses[1] and len(losses[0]) == 2
