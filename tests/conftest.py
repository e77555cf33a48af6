"""Shared fixtures: a tiny synthetic dataset, generated once per session (helpers: tests/helpers/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wildcat.data.synthetic import make_synthetic

from helpers import TINY_SPEC


@pytest.fixture(autouse=True)
def _count_warnings_not_yet_given():
    """Each test starts as a new process would: no dataset-size warning given yet."""
    import wildcat.data

    wildcat.data._WARNED_COUNTS.clear()


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    make_synthetic(root, TINY_SPEC)
    return root
