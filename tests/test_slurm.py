"""The SLURM profile (workflow/profiles/slurm) against snakemake-executor-plugin-slurm 2.8.0.

1. Dry runs of the profile: these need no SLURM at all, only the plugin installed.
2. The tiny slice of the default grid through a real single-node SLURM cluster started here
   (tests/slurm_cluster.py; skipped with the reason where SLURM/munge are missing or we are not
   root): every non-local job must pass through SLURM, and the metrics must equal those of a
   local run of the same workflow.

What the test cluster changes from the profile, and why (docs/slurm.md has the long form):
- its one partition takes the profile's name (``slurm_partition``), so the profile's
  default-resources go to sbatch unchanged;
- ``--slurm-status-command squeue``: no accounting here, and with the default ``sacct`` the
  plugin waits forever; ``--slurm-init-seconds-before-status-checks 1`` for speed;
- train/evaluate threads and cpus_per_task 1 (the profile asks for 8, the machine has 2 cores,
  and the thread count must equal the local run's for equal numbers), mem_mb 1000 (small
  machines), and ``gpu: 1`` for training, on two GPUs the node declares without having them,
  so that the profile's GPU path (``gpu`` -> ``sbatch --gpus``) is scheduled for real;
- ``--slurm-keep-successful-logs``: the per-job SLURM logs stay as evidence.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from helpers.slurm_cluster import slurm_cluster, unavailable_reason

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "workflow" / "profiles" / "slurm"
TINY = ROOT / "tests" / "data" / "tiny_workflow.yaml"
DRY_RUN_TIMEOUT_S = 60
# The tiny workflow takes about 90 s through SLURM on 2 cores (the plugin sees a finished job
# at 1, 12, 33, ... s after submission); a hang (the sacct pitfall) must fail, not block CI.
WORKFLOW_TIMEOUT_S = 180

CLUSTER_OPTIONS = [
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "1",
    "--slurm-keep-successful-logs",
    "--set-threads", "train=1", "evaluate=1",
    "--set-resources", "train:cpus_per_task=1", "evaluate:cpus_per_task=1", "train:mem_mb=1000",
    "evaluate:mem_mb=1000", "train:gpu=1",
]


def profile() -> dict:
    return yaml.safe_load((PROFILE / "config.yaml").read_text())


def snakemake_command(workdir: Path, *options: str, config: Path = TINY) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--configfile", str(config),
            "--directory", str(workdir), "--config", f"paper_dir={ROOT / 'results' / 'paper'}", f"paper_recipe={ROOT / 'config' / 'paper.yaml'}", *options]


def workflow_env() -> dict[str, str]:
    """The rules call `python -m wildcat`: this interpreter's venv goes first on PATH. One thread
    everywhere: the local run and the SLURM run must sum floating point in the same order."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    # A pytest started inside a SLURM job must not lend that job's identity to the test cluster.
    return {key: value for key, value in env.items() if not key.startswith(("SLURM_", "SBATCH_", "SRUN_"))}


def require_plugin() -> None:
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="the SLURM executor plugin is not installed "
                        "(pip install --constraint requirements/lock.txt -e '.[workflow]')")


def run_dry(workdir: Path, *options: str, config: Path = TINY) -> str:
    require_plugin()
    result = subprocess.run(snakemake_command(workdir, "-n", "--workflow-profile", str(PROFILE), *options,
                                              config=config),
                            cwd=ROOT, env=workflow_env(), capture_output=True, text=True, timeout=DRY_RUN_TIMEOUT_S)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


def job_blocks(output: str, rule: str) -> list[str]:
    """The dry run's description of each job of a rule."""
    return re.findall(rf"^rule {rule}:\n(?:    .*\n)+", output, flags=re.M)


def test_profile_dry_run_lists_the_tiny_grid(tmp_path):
    output = run_dry(tmp_path)
    assert "Using workflow specific profile" in output and "profiles/slurm" in output
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", output.split("Job stats:", 1)[1], flags=re.M))
    assert counts == {"make_synthetic": "1", "train": "2", "evaluate": "2", "keep_train_log": "2", "report": "1", "all": "1",
                      "total": "9"}
    partition = profile()["default-resources"]["slurm_partition"]
    trains = job_blocks(output, "train")
    assert len(trains) == 2
    for block in trains:
        assert f"slurm_partition={partition}" in block and "cpus_per_task=8" in block, block


def test_profile_dry_run_asks_a_gpu_for_every_paper_training_job(tmp_path):
    output = run_dry(tmp_path, config=ROOT / "config" / "paper.yaml")
    trains = job_blocks(output, "train")
    assert len(trains) > 100
    for block in trains:
        assert re.search(r"\bgpu=1\b", block) and "cpus_per_task=8" in block, block


def start(command: list[str], workdir: Path, log: Path, nice: int = 0) -> subprocess.Popen:
    """Start a Snakemake run in its own process group (so that a timeout can kill all of it)."""
    workdir.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        return subprocess.Popen(["nice", "-n", str(nice), *command], cwd=ROOT, env=workflow_env(),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def finish(process: subprocess.Popen, deadline: float, log: Path, what: str, details=lambda: "") -> str:
    """Wait for a run until the deadline, then kill its whole process group (SIGKILL: the sacct
    hang ignores SIGTERM). Returns the log; fails the test, with the log's tail and
    ``details()``, if the run failed or hung."""
    try:
        process.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail(f"{what} still running after {WORKFLOW_TIMEOUT_S} s, killed; log tail:\n"
                    f"{log.read_text()[-4000:]}\n{details()}")
    output = log.read_text()
    assert process.returncode == 0, f"{what} failed (exit status {process.returncode}):\n{output[-6000:]}\n{details()}"
    return output


def numbers(metrics_json: Path) -> dict:
    document = json.loads(metrics_json.read_text())
    return {key: document[key] for key in ("metrics", "per_class", "num_test_images")}


def test_tiny_workflow_through_slurm_equals_local_run(tmp_path):
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    require_plugin()
    partition = profile()["default-resources"]["slurm_partition"]
    local_dir, slurm_dir = tmp_path / "local", tmp_path / "slurm"
    local_log, slurm_log = tmp_path / "local.log", tmp_path / "slurm.log"

    # Daemons first: with a slurm.conf present and no slurmctld, every snakemake call (which
    # imports the plugin) spends ~9 s in `scontrol show config`.
    with slurm_cluster(partition=partition, gpus=2) as cluster:
        deadline = time.monotonic() + WORKFLOW_TIMEOUT_S
        slurm_run = start(snakemake_command(slurm_dir, "--workflow-profile", str(PROFILE), *CLUSTER_OPTIONS),
                          slurm_dir, slurm_log)
        # The reference runs meanwhile, niced: the SLURM run mostly waits for its status polls.
        local_run = start(snakemake_command(local_dir, "--cores", "2"), local_dir, local_log, nice=19)
        try:
            slurm_output = finish(slurm_run, deadline, slurm_log, "the SLURM run", cluster.log_tails)
            finish(local_run, deadline, local_log, "the local run")
        finally:
            for process in (slurm_run, local_run):
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        jobs = cluster.jobs()

    # Every job but the local rules went through SLURM and completed there; the local ones did not.
    remote_rules = sorted(re.findall(r"^rule (\w+):$", slurm_output, flags=re.M))
    local_rules = set(re.findall(r"^localrule (\w+):$", slurm_output, flags=re.M))
    assert {"report", "all"} <= local_rules and {"train", "evaluate"} <= set(remote_rules), slurm_output[-4000:]
    submitted = dict(re.findall(r"^Job (\d+) has been submitted with SLURM jobid (\d+)", slurm_output, flags=re.M))
    assert sorted(submitted.values()) == sorted(jobs), (submitted, jobs)
    comments = {job["Comment"]: job for job in jobs.values()}
    assert sorted(re.fullmatch(r"rule_(.+?)(?:_wildcards_.*)?", c).group(1) for c in comments) == remote_rules
    assert {f"rule_{rule}_wildcards_synthetic_{method}_0" for rule in ("train", "evaluate")
            for method in ("wildcat", "gmp")} <= set(comments)
    for comment, job in comments.items():
        assert job["State"] == "COMPLETED" and job["Partition"] == partition and job["NumCPUs"] == "1", job
        # gpu: 1 -> sbatch --gpus=1, as the profile does for the paper grid's training jobs.
        assert job["tres-per-job"] == ("gres:gpu:1" if comment.startswith("rule_train_") else "N/A"), job
    slurm_logs = slurm_dir / ".snakemake" / "slurm_logs"
    assert {path.relative_to(slurm_logs).parts[0] for path in slurm_logs.rglob("*.log")} == {
        f"rule_{rule}" for rule in remote_rules}

    # The same numbers as the local run.
    results = Path("results/runs/tiny/synthetic")
    for method in ("wildcat", "gmp"):
        local_metrics = local_dir / results / method / "seed0" / "metrics.json"
        slurm_metrics = slurm_dir / results / method / "seed0" / "metrics.json"
        assert numbers(slurm_metrics) == numbers(local_metrics), method
    assert (slurm_dir / "reports" / "tiny" / "classification.md").is_file()
