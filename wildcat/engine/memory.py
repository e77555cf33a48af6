"""Keep a long pass's memory at what it holds, not at what the allocator kept.

glibc's ``malloc`` raises its mmap threshold each time a large mmapped block is freed (up to
32 MiB): after the first batches, torch's activation buffers come from the heap, and the small
arrays that live on between batches (the evaluation's scores, points and object peaks) pin the
freed space there. Over a large test split the resident memory then grows with the number of
batches, far beyond the arrays the metrics keep (benchmarks/eval_memory.py measures it). A fixed
threshold keeps every large buffer mmapped, so it goes back to the system when freed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

__all__ = ["MMAP_THRESHOLD_BYTES", "fix_mmap_threshold"]

#: glibc's ``mallopt`` parameter ``M_MMAP_THRESHOLD`` (malloc.h) and the value set: its default
#: starting point, which setting it freezes.
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 128 * 1024


def fix_mmap_threshold(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold at ``threshold_bytes`` for this process (see the module
    docstring). Returns False, changing nothing, where the C library is not glibc (macOS, musl)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    name = ctypes.util.find_library("c") or "libc.so.6"
    return bool(ctypes.CDLL(name).mallopt(_M_MMAP_THRESHOLD, threshold_bytes))
