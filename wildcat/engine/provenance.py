"""Where a number comes from: code, environment, device, data and time of a training or evaluation.

``wildcat train`` writes the record of its training as ``provenance.json`` in the run folder;
``wildcat evaluate`` and ``wildcat combine`` put it, with their own, under the ``provenance`` key of
``metrics.json`` (format in docs/contracts.md). ``wildcat compare`` reads them to tell whether two
results are comparable (docs/reproduction.md).
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from wildcat.data.download import checksums_summary

#: The checkout this package runs from (its git state and lock file are recorded).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCK_FILE = Path("requirements") / "lock.txt"
#: Distribution names of the libraries whose versions are recorded.
LIBRARIES = {"torch": "torch", "torchvision": "torchvision", "numpy": "numpy", "pydensecrf": "pydensecrf2"}
PROVENANCE_FILE = "provenance.json"
#: The committed folders of results that the workflow writes: not code.
OUTPUT_FOLDERS = ("results", "reports")


def code_version(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """``{"commit": sha, "dirty": bool}`` of the git checkout at ``root``: dirty when a tracked file
    differs from the commit, outside :data:`OUTPUT_FOLDERS` (which a run itself rewrites); both
    ``None`` outside a git checkout (an installed package)."""
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=30, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", ".",
                                 *(f":!{folder}" for folder in OUTPUT_FOLDERS)],
                                capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def file_sha256(path: Path) -> str | None:
    """The sha256 of a file, or None if it does not exist."""
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions() -> dict[str, str | None]:
    """Python's version and those of :data:`LIBRARIES` (None where not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name, distribution in LIBRARIES.items():
        try:
            versions[name] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def environment(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """Code version, lock file digest, library versions and the host's CPU."""
    return {"code": code_version(root), "lock_sha256": file_sha256(root / LOCK_FILE), "versions": library_versions(),
            "cpu": cpu_model()}


def device_record(device: Any, world_size: int, precision: str) -> dict[str, Any]:
    """The device a run actually used (a ``torch.device``): ``type`` (cpu, cuda), its ``name`` (the
    CPU model or the GPU's), ``count`` (processes, one per GPU on CUDA), ``threads`` per process
    and ``precision``."""
    import torch  # lazily: the rest of this module reads no tensors

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    return {"type": device.type, "name": name, "count": world_size, "threads": torch.get_num_threads(),
            "precision": precision}


def data_checksums(dataset: Any) -> str:
    """Which digests the files of a loaded split were verified against when downloaded
    (:func:`wildcat.data.download.dataset_checksums` of its dataset and data root: ``official``,
    ``custom: <FILE>``, ``not checksummed``, ``-``), over every download the split reads (voc2012's
    ``train_aug`` also reads SBD); ``generated`` for the synthetic dataset."""
    if dataset.name == "synthetic":
        return "generated"
    return checksums_summary([dataset.name, *(["sbd"] if dataset.split == "train_aug" else [])], dataset.root)


def dataset_fingerprint(dataset: Any) -> str:
    """A sha256 over the image ids and labels of a loaded split (what its list file and annotations
    gave): two runs that read the same split of the same data have the same fingerprint."""
    digest = hashlib.sha256()
    digest.update(json.dumps([dataset.name, dataset.split, list(dataset.ids)]).encode())
    targets = np.ascontiguousarray(dataset.targets)
    digest.update(f"{targets.dtype.str}{targets.shape}".encode())
    digest.update(targets.tobytes())
    return digest.hexdigest()
