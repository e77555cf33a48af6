"""Faults around an evaluation: a killed parent's CRF workers, an unwritable output folder, a full disk."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

import wildcat.io as wildcat_io
from wildcat.engine.train import train
from wildcat.errors import WildcatError
from wildcat.eval.combine import combine
from wildcat.eval.evaluate import evaluate
from wildcat.io import atomic_path, atomic_torch_save, atomic_write_text

from helpers import ROOT, tiny_config

MOUNT_SIZE_BYTES = 1 << 20


@pytest.fixture(scope="module")
def slow_crf_run(tiny_data_root, tmp_path_factory) -> Path:
    """A trained tiny run whose dense CRF takes long (1000 mean-field iterations per image), so
    that an evaluation with CRF workers keeps them busy for many seconds."""
    run = tmp_path_factory.mktemp("run")
    train(tiny_config(tiny_data_root, epochs=1, crf_iterations=1000), run, progress=False)
    return run


def _wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``condition`` until it holds or ``timeout_s`` has passed; whether it held."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _children(pid: int) -> dict[int, str]:
    """The live child processes of ``pid``: ``{pid: command line}``, from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()  # state, ppid, ...
            if int(fields[1]) == pid and fields[0] not in "ZX":
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):  # it ended while being read
            continue
    return found


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (an orphan's zombie may never be reaped here)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in "ZX"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux's")
def test_crf_workers_die_when_evaluate_is_killed(slow_crf_run, tmp_path):
    """SIGKILL of `wildcat evaluate --crf-workers 2` (no cleanup runs) takes its CRF workers and
    the multiprocessing resource tracker with it, instead of leaving them to PID 1."""
    stderr_path = tmp_path / "stderr.txt"
    command = [sys.executable, "-m", "wildcat", "evaluate", "--run", str(slow_crf_run), "--out",
               str(tmp_path / "metrics.json"), "--crf-workers", "2", "--quiet"]
    with open(stderr_path, "wb") as stderr:
        parent = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
    children: dict[int, str] = {}
    try:
        def workers_started() -> bool:
            children.update(_children(parent.pid))
            return parent.poll() is not None or sum("spawn_main" in line for line in children.values()) >= 2

        started = _wait_for(workers_started, timeout_s=180)
        assert parent.poll() is None, (f"evaluate ended (status {parent.returncode}) before its 2 CRF workers were seen: "
                                       f"{stderr_path.read_text()[-2000:]}")
        assert started, f"evaluate started no 2 CRF workers within 180 s; its children: {children}"
        children.update(_children(parent.pid))  # the resource tracker, if it was missed
        parent.kill()
        parent.wait()
        _wait_for(lambda: not any(map(_alive, children)), timeout_s=30)
        left = {pid: line for pid, line in children.items() if _alive(pid)}
        assert not left, f"still alive 30 s after their parent was SIGKILLed: {left}"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pid in children:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def mount_tmpfs(tmp_path) -> Iterator[Callable[[str], Path]]:
    """``mount(options)``: a new tmpfs under ``tmp_path`` (unmounted afterwards); the test is
    skipped where mounting is not permitted."""
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        target = tmp_path / f"mnt{len(mounted)}"
        target.mkdir()
        if shutil.which("mount") is None:
            pytest.skip("no `mount` command to make a real full or read-only filesystem")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in mounted:  # lazily: a failed test's traceback may still hold a file open there
        subprocess.run(["umount", "--lazy", str(target)], check=True)


def _not_loaded(*args, **kwargs):
    raise AssertionError("the model was loaded before the output folder was checked")


def test_unwritable_output_folder_fails_before_the_model_loads(slow_crf_run, tmp_path, monkeypatch, mount_tmpfs):
    """An output folder that cannot be created (a regular file is in its path) or is on a
    read-only filesystem (unwritable even by root) is a one-line error before any work."""
    monkeypatch.setattr("wildcat.eval.evaluate.load_trained", _not_loaded)
    monkeypatch.setattr("wildcat.eval.combine.load_trained", _not_loaded)
    a_file = tmp_path / "file.txt"
    a_file.write_text("not a folder")
    blocked = a_file / "out"
    calls = {
        "evaluate --out": lambda: evaluate(slow_crf_run, blocked / "metrics.json", progress=False),
        "combine --out": lambda: combine([slow_crf_run], blocked / "metrics.json", progress=False),
        "combine --scores-out": lambda: combine([slow_crf_run], tmp_path / "ok" / "metrics.json",
                                                scores_out=blocked / "scores.npz", progress=False),
    }
    for name, call in calls.items():
        with pytest.raises(WildcatError, match="cannot write in the output folder .*file.txt") as caught:
            call()
        assert isinstance(caught.value, wildcat_io.OutputNotWritableError), name
        assert "\n" not in str(caught.value)
    read_only = mount_tmpfs("ro,size=64k")
    with pytest.raises(WildcatError, match=f"cannot write in the output folder {read_only}.*Read-only file system"):
        evaluate(slow_crf_run, read_only / "metrics.json", progress=False)
    assert os.listdir(read_only) == []


def _fill(folder: Path, leave_bytes: int) -> None:
    """Fill the filesystem of ``folder`` up to ``leave_bytes`` free (0: until a write fails)."""
    with open(folder / "filler", "wb") as handle:
        try:
            while shutil.disk_usage(folder).free > leave_bytes:
                handle.write(b"\0" * 4096)
                handle.flush()
        except OSError:
            pass


@pytest.mark.parametrize("leave_bytes", [0, 256 * 1024], ids=["full", "nearly-full"])
def test_full_disk_raises_disk_full_error(mount_tmpfs, tmp_path, leave_bytes):
    """torch.save and a text write that run out of space raise DiskFullError naming the file,
    leave no temporary file, and keep the previous file; other errors stay as they were."""
    disk = mount_tmpfs(f"size={MOUNT_SIZE_BYTES}")
    (disk / "model.pt").write_text("previous")
    _fill(disk, leave_bytes)
    too_big = torch.zeros(MOUNT_SIZE_BYTES // 4 + 1)  # float32: more bytes than the whole filesystem
    writes = {"model.pt": lambda: atomic_torch_save(too_big, disk / "model.pt"),
              "metrics.json": lambda: atomic_write_text(disk / "metrics.json", "x" * 2 * MOUNT_SIZE_BYTES)}
    for name, write in writes.items():
        with pytest.raises(WildcatError, match=f"no space left on the device to write {disk / name} .*MB free") as caught:
            write()
        assert isinstance(caught.value, wildcat_io.DiskFullError)
        assert "\n" not in str(caught.value) and "choose another --out" in str(caught.value)
        assert sorted(os.listdir(disk)) == ["filler", "model.pt"], f"{name}: a temporary file was left"
    assert (disk / "model.pt").read_text() == "previous"
    with pytest.raises(RuntimeError, match="^an unrelated failure$"):
        with atomic_path(disk / "other"):
            raise RuntimeError("an unrelated failure")
    with pytest.raises(RuntimeError, match="unexpected pos"):  # torch's words, but space is left
        with atomic_path(tmp_path / "other"):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
