"""Atomic writes: nothing half-written is ever left under a final name (a crash leaves the
previous file, or none). Each writer goes through a temporary file in the same folder and
``os.replace``; :func:`atomic_dir` does the same for a whole folder. A write that runs out of
space raises :class:`DiskFullError`; :func:`ensure_writable_dirs` checks output folders
before the work whose results go there."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wildcat.errors import WildcatError

#: A failed write with less free space than this (bytes) on its filesystem ran out of space.
_NEARLY_FULL_BYTES = 1 << 20
#: What torch's file writer (``torch.save`` to a path) raises when a write fails.
_TORCH_WRITE_FAILURES = ("unexpected pos", "iostream error", "file write failed")


class OutputNotWritableError(WildcatError, OSError):
    """An output folder that cannot be created or written in."""


class DiskFullError(WildcatError, OSError):
    """A write that ran out of space on its filesystem."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except (OSError, RuntimeError) as error:
        if not _out_of_space(error, path.parent):
            raise
        Path(tmp).unlink(missing_ok=True)  # before measuring the free space
        free_mb = shutil.disk_usage(path.parent).free / 1e6
        raise DiskFullError(f"no space left on the device to write {path} ({free_mb:.1f} MB free there): "
                            "free some space or choose another --out") from error
    finally:
        Path(tmp).unlink(missing_ok=True)


def _out_of_space(error: OSError | RuntimeError, folder: Path) -> bool:
    """Whether ``error`` from a write in ``folder`` means its filesystem is full: ``ENOSPC``, or
    torch's write failure with (nearly) no free space left there."""
    if isinstance(error, OSError):
        return error.errno == errno.ENOSPC
    return (any(text in str(error) for text in _TORCH_WRITE_FAILURES)
            and shutil.disk_usage(folder).free < _NEARLY_FULL_BYTES)


def ensure_writable_dirs(*paths: str | os.PathLike[str] | None) -> None:
    """Create each folder of ``paths`` (and its parents; None entries are skipped) if needed and
    check that a file can be written in it, before the work whose results go there.

    Raises:
        OutputNotWritableError: one cannot be created, or a file cannot be written in it.
    """
    for path in (Path(p) for p in paths if p is not None):
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path, prefix=".wildcat-write-check."):
                pass
        except OSError as error:
            raise OutputNotWritableError(
                f"cannot write in the output folder {path} ({error.strerror or error}): "
                "make it writable or choose another output path") from None


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a new empty folder beside ``path``; on success it takes the place of ``path``.

    The old ``path`` (if any) is renamed away, the new folder renamed in, then the old one
    deleted; on an error the new folder is deleted and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    old = tmp.with_name(f"{tmp.name}.old")
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700; give the usual permissions
        if os.path.lexists(path):
            os.rename(path, old)
        try:
            os.rename(tmp, path)
        except BaseException:
            if os.path.lexists(old):
                os.rename(old, path)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old)
    elif os.path.lexists(old):
        old.unlink()


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically, as UTF-8."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented, key-sorted JSON atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` atomically."""
    import torch  # lazily: the report tools run without torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
