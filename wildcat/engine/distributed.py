"""Data-parallel runs launched by ``torchrun`` (PyTorch DDP): process group, rank helpers, gathers.

``wildcat train`` and ``wildcat evaluate`` run unchanged under::

    torchrun --nproc_per_node 4 -m wildcat train --config exp.yaml --out runs/x

``torchrun`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (and ``MASTER_ADDR`` /
``MASTER_PORT``); with ``WORLD_SIZE`` unset or 1 everything here is a no-op and a run is a plain
single-process one. NCCL on CUDA, gloo on the CPU. See ``docs/distributed.md``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["DistInfo", "env_info", "session", "is_distributed", "rank", "world_size", "is_main",
           "barrier", "all_gather_objects", "all_reduce_sum"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in a (possibly one-process) run."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} must be an integer (torchrun sets it)") from None


def env_info() -> DistInfo:
    """Rank, local rank and world size from the process group if one is up, else from the
    ``torchrun`` environment variables (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), _env_int("LOCAL_RANK", 0), dist.get_world_size())
    world = _env_int("WORLD_SIZE", 1)
    info = DistInfo(_env_int("RANK", 0), _env_int("LOCAL_RANK", 0), world)
    if world < 1 or not 0 <= info.rank < world:
        raise ValueError(f"RANK={info.rank} and WORLD_SIZE={world} are inconsistent; launch with torchrun")
    return info


@contextlib.contextmanager
def session(device_type: str) -> Iterator[DistInfo]:
    """Join the process group that the environment describes, for the body of the ``with``.

    Args:
        device_type: ``"cuda"`` (NCCL; the process uses GPU ``LOCAL_RANK``) or ``"cpu"`` (gloo).

    A group already initialised by the caller is used and left up; one started here is
    destroyed on exit. Without ``WORLD_SIZE > 1`` nothing is started.
    """
    info = env_info()
    started = False
    if info.distributed and not dist.is_initialized():
        if device_type == "cuda":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo",
                                rank=info.rank, world_size=info.world_size)
        started = True
    try:
        yield info
    finally:
        if started:
            dist.destroy_process_group()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on rank 0 (the process that writes files) and in a single-process run."""
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_gather_objects(value: Any) -> list[Any]:
    """``[value of rank 0, value of rank 1, ...]`` on every rank (``[value]`` single-process)."""
    if not is_distributed():
        return [value]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def all_reduce_sum(array: np.ndarray) -> np.ndarray:
    """The element-wise sum of ``array`` over all ranks (exact for integer arrays)."""
    if not is_distributed():
        return array
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    tensor = torch.from_numpy(np.ascontiguousarray(array)).to(device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().numpy()
