"""Helpers shared by the tests (imported as ``helpers``: pytest puts tests/ on sys.path): the
project root, the tiny synthetic recipe, free ports, the Snakemake runner and the installer of
fake datasets. Fixtures stay in conftest.py."""

from __future__ import annotations

import random
import socket
from pathlib import Path

from wildcat.data.synthetic import SyntheticSpec
from wildcat.engine.config import ExperimentConfig, make_config

ROOT = Path(__file__).resolve().parents[2]

# Small enough to train in seconds on 2 cores, large enough to be learnable.
TINY_SPEC = SyntheticSpec(seed=0, image_size_px=64, num_train=240, num_val=0, num_test=80, num_classes=4,
                          num_shared_pairs=1)


def tiny_config(data_root: Path, **overrides) -> ExperimentConfig:
    """The default synthetic recipe, shrunk for tests."""
    values = dict(
        dataset="synthetic", data_root=str(data_root), train_split="train", test_split="test", image_size_px=64,
        backbone="cnn6", weights=None, num_maps=2, kmax=0.1, kmin=None, alpha=0.7, optimizer="adam", lr=0.003,
        lrp=1.0, schedule="onecycle", epochs=3, batch_size=32, workers=0, device="cpu", loc_tolerance_px=3.0,
        seg_tune_images=20, seg_background_grid=[0.3, 0.5], crf_iterations=3,
    )
    values.update(overrides)
    return make_config(values)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that no process holds, below the kernel's ephemeral range.

    A port that the kernel handed out (``bind(("", 0))``) and that the test closes before a child
    binds it can meanwhile be handed out again, to any process that connects somewhere; one below
    ``ip_local_port_range`` is never handed out, so only an explicit bind can take it.
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default
    candidates = list(range(20000, min(low, 30000)))
    random.SystemRandom().shuffle(candidates)
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free TCP port in 20000..{min(low, 30000) - 1}")
