"""A real single-node SLURM cluster for tests: munged, slurmctld and slurmd on this machine.

Built for Debian 12 (slurm-wlm 22.05, munge 0.5.15), as root, without systemd. Use::

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    with slurm_cluster(partition="debug") as cluster:
        job_id = cluster.submit_wrap("hostname")
        cluster.wait_for_job(job_id)

The configuration goes to the compiled-in path ``/etc/slurm/slurm.conf`` and not to a file named
by ``SLURM_CONF``: the Snakemake jobstep plugin strips every ``SLURM_*`` variable but the job's
identity before its nested ``srun``, which would then find no configuration. The file carries a
marker line; one without it (a real cluster's) is never touched: the caller skips instead.
State, spool, pid and log files live in a fresh folder under the system temp dir (owned by the
``slurm`` user, which cannot enter pytest's 0700 ``tmp_path``), removed at the end.

The daemons run in the foreground as children of this process, so they are stopped by their
own pids when the context ends, on success and on failure alike. A run killed outright (SIGKILL)
leaves them running: the next start finds their pids through the marked configuration and ends
them first. Munge is started only when ``munge -n`` fails (a second munged fails to lock) and
stopped only if it was started here.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SLURM_CONF_PATH = Path("/etc/slurm/slurm.conf")
GRES_CONF_PATH = Path("/etc/slurm/gres.conf")
MARKER = "# wildcat-bench test cluster (tests/slurm_cluster.py): removed when the test ends"
MUNGED_PID_COMMENT = "# munged pid file (started by the test): "
REQUIRED_BINARIES = ("munge", "munged", "slurmctld", "slurmd", "sinfo", "sbatch", "squeue", "scancel", "scontrol")
CLIENT_TIMEOUT_S = 15
STOP_TIMEOUT_S = 10
JOB_FIELDS = ("JobID", "State", "Comment", "Partition", "NumCPUs", "MinMemory", "TimeLimit", "tres-per-job")
ACTIVE_STATES = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING"}


class ClusterStartError(RuntimeError):
    """The daemons did not reach an idle node in time; the message holds their log tails."""


def unavailable_reason() -> str | None:
    """Why a test cluster cannot be started here (a reason to skip), or None if it can."""
    if os.name != "posix" or os.geteuid() != 0:
        return "the SLURM test cluster needs root (it starts munged, slurmctld and slurmd)"
    missing = [name for name in REQUIRED_BINARIES if shutil.which(name) is None]
    if missing:
        return (f"SLURM or munge is not installed (missing: {', '.join(missing)}); "
                "install with: apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge")
    for user in ("slurm", "munge"):
        if _run(["id", "-u", user], check=False).returncode != 0:
            return f"the system user {user!r} does not exist (the slurm and munge packages create it)"
    if not Path("/etc/munge/munge.key").is_file():
        return "/etc/munge/munge.key is missing (the munge package creates it)"
    for path in (SLURM_CONF_PATH, GRES_CONF_PATH):
        if path.exists() and not _is_ours(path):
            return f"{path} belongs to a real SLURM set-up; the test does not overwrite it"
    return None


@dataclass
class SlurmCluster:
    """A running single-node cluster: one node, one partition, no accounting (no ``sacct``)."""

    state_dir: Path
    partition: str
    node_name: str
    cpus: int
    real_memory_mb: int
    gpus: int = 0

    @property
    def ctld_log(self) -> Path:
        return self.state_dir / "slurmctld.log"

    @property
    def slurmd_log(self) -> Path:
        return self.state_dir / "slurmd.log"

    def client(self, args: Sequence[str], timeout_s: float = CLIENT_TIMEOUT_S) -> subprocess.CompletedProcess:
        """Run a SLURM client command (sinfo, squeue, sbatch, ...) and return its output; raises on failure."""
        return _run(list(args), timeout_s=timeout_s)

    def submit_wrap(self, command: str, *extra_args: str) -> str:
        """``sbatch --wrap`` a shell command in the cluster's partition; returns the job id."""
        out = self.client(["sbatch", "--parsable", "-p", self.partition, "-o", str(self.state_dir / "job-%j.out"),
                           *extra_args, "--wrap", command]).stdout
        return out.strip().split(";")[0]

    def jobs(self, fields: Sequence[str] = JOB_FIELDS) -> dict[str, dict[str, str]]:
        """Every job slurmctld still remembers (finished ones for ``MinJobAge`` seconds), as
        job id -> {field: value} for ``squeue --Format`` fields (JobID, State, Comment, ...)."""
        columns = ["JobID", *[f for f in fields if f != "JobID"]]
        # Each field padded to 200 characters and closed by a "|": no value is cut or merged.
        out = self.client(["squeue", "-h", "--states=all", "-O", ",".join(f"{f}:200|" for f in columns)]).stdout
        jobs = {}
        for line in out.splitlines():
            values = [v.strip() for v in line.split("|")[: len(columns)]]
            jobs[values[0]] = dict(zip(columns, values))
        return jobs

    def wait_for_job(self, job_id: str, timeout_s: float = 60) -> str:
        """Wait until a job leaves the queue's active states; returns its final state."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.jobs(["State"]).get(job_id, {}).get("State", "UNKNOWN")
            if state not in ACTIVE_STATES | {"UNKNOWN"}:
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"SLURM job {job_id} still {state} after {timeout_s} s\n{self.log_tails()}")
            time.sleep(0.2)

    def log_tails(self, lines: int = 30) -> str:
        """The end of each daemon log, for failure messages."""
        return _log_tails(self.state_dir, lines)


@contextmanager
def slurm_cluster(partition: str = "debug", gpus: int = 0, start_timeout_s: float = 30,
                  min_job_age_s: int = 300) -> Iterator[SlurmCluster]:
    """Start munged (if needed), slurmctld and slurmd; yield the cluster once its node is idle; stop them.

    Args:
        partition: the single partition's name (all jobs run on the one node).
        gpus: how many GPUs the node declares (``Gres=gpu:N``). They are bookkeeping only, with
            no device behind them: enough for SLURM to schedule ``--gpus`` requests.
        start_timeout_s: how long to wait for the node to become idle.
        min_job_age_s: how long slurmctld remembers finished jobs (``squeue --states=all``
            sees them; Snakemake's ``squeue`` status command needs >= 3 x its first delay).
    Raises:
        ClusterStartError: a daemon exited or the node was not idle in time.
    """
    reason = unavailable_reason()
    if reason:
        raise ClusterStartError(reason)
    _stop_stale_cluster()

    state_dir = Path(tempfile.mkdtemp(prefix="wildcat-slurm-"))
    processes: list[tuple[str, subprocess.Popen]] = []
    try:
        cluster = SlurmCluster(state_dir=state_dir, partition=partition, node_name=_short_hostname(),
                               cpus=os.cpu_count() or 1, real_memory_mb=_real_memory_mb(), gpus=gpus)
        for sub in ("state", "spool"):
            (state_dir / sub).mkdir()
        _chown_tree(state_dir, "slurm")
        state_dir.chmod(0o755)

        munged_pid_file = None
        if _run(["munge", "-n"], check=False).returncode != 0:
            munged_pid_file = state_dir / "munged.pid"
            processes.append(("munged", _start_munged(state_dir, munged_pid_file)))
            _wait_until(lambda: _run(["munge", "-n"], check=False).returncode == 0, 10, "munged to answer",
                        state_dir, processes)

        SLURM_CONF_PATH.parent.mkdir(parents=True, exist_ok=True)
        if gpus:
            # slurmd counts GPUs by their device files; empty files stand in for them.
            devices = [state_dir / f"fake-gpu{i}" for i in range(gpus)]
            for device in devices:
                device.touch()
            files = ",".join(str(device) for device in devices)
            _write_atomic(GRES_CONF_PATH, f"{MARKER}\nAutoDetect=off\n"
                                          f"NodeName={cluster.node_name} Name=gpu File={files}\n")
        _write_atomic(SLURM_CONF_PATH, _slurm_conf(cluster, min_job_age_s, munged_pid_file))
        processes.append(("slurmctld", _popen(["slurmctld", "-D"], state_dir / "slurmctld.stdout")))
        processes.append(("slurmd", _popen(["slurmd", "-D"], state_dir / "slurmd.stdout")))
        _wait_until(lambda: _node_state() == "idle", start_timeout_s, "the node to become idle", state_dir, processes)
        yield cluster
    finally:
        if any(name == "slurmctld" and p.poll() is None for name, p in processes):
            _cancel_all_jobs(partition)
        for _name, process in reversed(processes):
            _stop(process)
        for path in (SLURM_CONF_PATH, GRES_CONF_PATH):
            if _is_ours(path):
                path.unlink()
        shutil.rmtree(state_dir, ignore_errors=True)


def _slurm_conf(cluster: SlurmCluster, min_job_age_s: int, munged_pid_file: Path | None) -> str:
    d = cluster.state_dir
    lines = [
        MARKER,
        f"{MUNGED_PID_COMMENT}{munged_pid_file}" if munged_pid_file else "",
        "ClusterName=wildcat-test",
        f"SlurmctldHost={cluster.node_name}(127.0.0.1)",
        "SlurmUser=slurm",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        f"StateSaveLocation={d / 'state'}",
        f"SlurmdSpoolDir={d / 'spool'}",
        f"SlurmctldPidFile={d / 'slurmctld.pid'}",
        f"SlurmdPidFile={d / 'slurmd.pid'}",
        f"SlurmctldLogFile={d / 'slurmctld.log'}",
        f"SlurmdLogFile={d / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "SchedulerType=sched/backfill",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "MpiDefault=none",
        "ReturnToService=2",
        f"MinJobAge={min_job_age_s}",
        "KillWait=5",
        "GresTypes=gpu" if cluster.gpus else "",
        f"NodeName={cluster.node_name} NodeAddr=127.0.0.1 CPUs={cluster.cpus} RealMemory={cluster.real_memory_mb}"
        + (f" Gres=gpu:{cluster.gpus}" if cluster.gpus else "") + " State=UNKNOWN",
        f"PartitionName={cluster.partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
    ]
    return "\n".join(line for line in lines if line) + "\n"


def _start_munged(state_dir: Path, pid_file: Path) -> subprocess.Popen:
    run_dir = Path("/run/munge")
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.chown(run_dir, "munge", "munge")
    run_dir.chmod(0o755)
    process = _popen(["munged", "--foreground"], state_dir / "munged.log", user="munge")
    pid_file.write_text(f"{process.pid}\n")
    return process


def _popen(args: list[str], log: Path, user: str | None = None) -> subprocess.Popen:
    with open(log, "ab") as out:
        kwargs = dict(user=user, group=user, extra_groups=[]) if user else {}
        # A new session: a Ctrl-C in the terminal reaches pytest, which then stops them in order.
        return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, **kwargs)


def _cancel_all_jobs(partition: str, timeout_s: float = 15) -> None:
    """Cancel what is still queued or running (after a test timed out, say): slurmstepd would
    otherwise keep a job running after slurmd stops."""
    _run(["scancel", "--full", "--partition", partition], check=False)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = _run(["squeue", "-h", "-o", "%T"], check=False)
        if out.returncode != 0 or not set(out.stdout.split()) & ACTIVE_STATES:
            return
        time.sleep(0.2)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)


def _stop_stale_cluster() -> None:
    """End the daemons of an earlier test run that was killed before it could stop them."""
    if not _is_ours(SLURM_CONF_PATH):
        return
    text = SLURM_CONF_PATH.read_text()
    pid_files = {"slurmctld": re.search(r"^SlurmctldPidFile=(.+)$", text, re.M),
                 "slurmd": re.search(r"^SlurmdPidFile=(.+)$", text, re.M),
                 "munged": re.search(rf"^{re.escape(MUNGED_PID_COMMENT)}(.+)$", text, re.M)}
    for name, match in pid_files.items():
        if not match:
            continue
        try:
            pid = int(Path(match.group(1).strip()).read_text().split()[0])
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except (OSError, ValueError, IndexError):
            continue
        if comm == name:
            os.kill(pid, signal.SIGKILL)
    state = re.search(r"^StateSaveLocation=(.+)$", text, re.M)
    if state and Path(state.group(1)).parent.name.startswith("wildcat-slurm-"):
        shutil.rmtree(Path(state.group(1)).parent, ignore_errors=True)
    for path in (SLURM_CONF_PATH, GRES_CONF_PATH):
        if _is_ours(path):
            path.unlink()


def _wait_until(predicate, timeout_s: float, what: str, state_dir: Path, processes) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        exited = [f"{name} (exit status {p.returncode})" for name, p in processes if p.poll() is not None]
        if exited or time.monotonic() > deadline:
            why = f"{', '.join(exited)} exited" if exited else f"still waiting after {timeout_s} s"
            raise ClusterStartError(f"SLURM test cluster: waiting for {what}: {why}\n{_log_tails(state_dir)}")
        time.sleep(0.1)


def _node_state() -> str:
    result = _run(["sinfo", "-h", "-o", "%T"], check=False, timeout_s=5)
    return result.stdout.strip() if result.returncode == 0 else ""


def _run(args: list[str], check: bool = True, timeout_s: float = CLIENT_TIMEOUT_S) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, capture_output=True, text=True, check=check, timeout=timeout_s,
                              stdin=subprocess.DEVNULL)
    except subprocess.CalledProcessError as error:
        raise RuntimeError(f"{' '.join(args)} failed with exit status {error.returncode}: "
                           f"{error.stderr.strip() or error.stdout.strip()}") from None
    except subprocess.TimeoutExpired:
        if check:
            raise
        return subprocess.CompletedProcess(args, returncode=124, stdout="", stderr=f"timed out after {timeout_s} s")


def _log_tails(state_dir: Path, lines: int = 30) -> str:
    parts = []
    # The daemons copy their log file to stdout (-D); stdout matters when the log file never opened.
    logs = sorted(state_dir.glob("*.log"))
    logs += [out for out in sorted(state_dir.glob("*.stdout")) if not out.with_suffix(".log").exists()]
    for log in logs:
        try:
            tail = log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
        parts.append(f"--- {log.name} (last {len(tail)} lines)\n" + "\n".join(tail))
    return "\n".join(parts)


def _is_ours(path: Path) -> bool:
    try:
        with open(path) as f:
            return f.readline().rstrip("\n") == MARKER
    except OSError:
        return False


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o644)
    tmp.replace(path)


def _chown_tree(root: Path, user: str) -> None:
    for path in [root, *root.rglob("*")]:
        shutil.chown(path, user, user)


def _short_hostname() -> str:
    return _run(["hostname", "-s"]).stdout.strip()


def _real_memory_mb() -> int:
    """90% of the machine's memory: slurmd drains a node that reports less than configured."""
    with open("/proc/meminfo") as f:
        total_kib = int(next(line for line in f if line.startswith("MemTotal:")).split()[1])
    return max(1, int(total_kib / 1024 * 0.9))
