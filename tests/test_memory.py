"""wildcat.engine.memory: glibc's mmap threshold is fixed where glibc is the C library, and
nothing is touched elsewhere (benchmarks/eval_memory.py measures what it does to a pass)."""

from __future__ import annotations

import platform

import pytest

from wildcat.engine import memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_the_threshold_is_fixed_under_glibc():
    assert memory.fix_mmap_threshold() is True


@pytest.mark.parametrize(("system", "libc"), [("Darwin", ""), ("Linux", "musl")])
def test_other_c_libraries_are_left_alone(monkeypatch, system, libc):
    monkeypatch.setattr(memory.platform, "system", lambda: system)
    monkeypatch.setattr(memory.platform, "libc_ver", lambda: (libc, ""))
    monkeypatch.setattr(memory.ctypes, "CDLL", lambda *_: pytest.fail("mallopt called off glibc"))
    assert memory.fix_mmap_threshold() is False
