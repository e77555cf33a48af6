"""Tests for the training engine (wildcat.engine.train) on the synthetic data."""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from wildcat.engine.config import save_config
from wildcat.engine.train import CHECKPOINT, FINAL_WEIGHTS, SeededItems, multilabel_loss, train
from wildcat.eval.evaluate import evaluate

from helpers import tiny_config


def test_multilabel_loss_hand_computed():
    scores = torch.tensor([[0.0, 2.0, -1.0]])
    targets = torch.tensor([[1.0, -1.0, 0.0]])
    bce = [math.log(2), math.log(1 + math.e**2)]  # -log sigmoid(0); -log(1 - sigmoid(2))
    positive_difficult = -math.log(1 / (1 + math.e))  # -log sigmoid(-1): the difficult as a positive
    negative_difficult = math.log(1 + math.exp(-1))  # -log(1 - sigmoid(-1))
    assert multilabel_loss(scores, targets, "positive").item() == pytest.approx((sum(bce) + positive_difficult) / 3)
    assert multilabel_loss(scores, targets, "negative").item() == pytest.approx((sum(bce) + negative_difficult) / 3)
    assert multilabel_loss(scores, targets, "ignore").item() == pytest.approx(sum(bce) / 2)
    reference = torch.nn.MultiLabelSoftMarginLoss()(scores, (targets >= 0).float())
    assert multilabel_loss(scores, targets, "positive").item() == pytest.approx(reference.item())


def _log(run: Path) -> list[dict[str, str]]:
    with open(run / "train_log.csv") as handle:
        return list(csv.DictReader(handle))


def chance_map(targets: np.ndarray) -> float:
    """Expected AP of a random ranking: the frequency of positives among non-difficult items."""
    frequencies = [(t == 1).sum() / (t != 0).sum() for t in targets.T if (t == 1).any()]
    return 100 * float(np.mean(frequencies))


@pytest.mark.slow
def test_short_training_learns(tiny_data_root, tmp_path):
    config = tiny_config(tiny_data_root, epochs=6)
    run = tmp_path / "run"
    train(config, run, progress=False)
    losses = [float(row["loss"]) for row in _log(run)]
    assert len(losses) == 6
    assert losses[-1] < 0.8 * losses[0]
    assert sorted((run).iterdir()) == sorted(run / name for name in (
        "checkpoint.pt", "config.yaml", "model.pt", "provenance.json", "train_log.csv"))
    result = evaluate(run, tmp_path / "metrics.json", progress=False)
    from wildcat.data import get_dataset

    targets = get_dataset("synthetic", tiny_data_root, "test").targets
    assert result["metrics"]["map"] > chance_map(targets) + 15


def test_finished_run_is_not_retrained(tiny_data_root, tmp_path):
    config = tiny_config(tiny_data_root, epochs=1)
    run = tmp_path / "run"
    final = train(config, run, progress=False)
    stamp = final.stat().st_mtime_ns
    assert train(config, run, progress=False) == final
    assert final.stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_sigkill_then_resume_gives_identical_weights(tiny_data_root, tmp_path):
    """A run killed (SIGKILL) after an epoch and resumed ends with exactly the weights and
    metrics of an uninterrupted run (CPU, fixed seed)."""
    config = tiny_config(tiny_data_root, epochs=4, batch_size=16)
    straight = tmp_path / "straight"
    train(config, straight, progress=False)

    killed = tmp_path / "killed"
    save_config(config, tmp_path / "exp.yaml")
    command = [sys.executable, "-m", "wildcat", "train", "--quiet", "--config", str(tmp_path / "exp.yaml"), "--out", str(killed)]
    process = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())})
    deadline = time.monotonic() + 120
    while not (killed / CHECKPOINT).exists():
        assert process.poll() is None, "training ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / FINAL_WEIGHTS).exists(), "the run finished before it could be killed"
    epochs_done = torch.load(killed / CHECKPOINT, weights_only=False)["epoch"]
    assert 1 <= epochs_done < 4

    train(config, killed, progress=False)  # resumes from the checkpoint
    a = torch.load(straight / FINAL_WEIGHTS, weights_only=True)
    b = torch.load(killed / FINAL_WEIGHTS, weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [row["loss"] for row in _log(straight)] == [row["loss"] for row in _log(killed)]
    metrics_a = evaluate(straight, tmp_path / "a.json", progress=False)["metrics"]
    metrics_b = evaluate(killed, tmp_path / "b.json", progress=False)["metrics"]
    assert metrics_a == metrics_b


class _Draws(torch.utils.data.Dataset):
    """An item is three draws of the global CPU generator (as the random flip draws its own)."""

    def __len__(self) -> int:
        return 5

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.rand(3)


def test_seeded_items_draw_from_the_item_seed_and_leave_the_global_generator():
    items = SeededItems(_Draws(), seed=7)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    drawn = items[(2, 1)]
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(items[(2, 1)], drawn)  # any worker, any rank, after a resume
    assert not torch.equal(items[(3, 1)], drawn) and not torch.equal(items[(2, 2)], drawn)
    # The draws of torch.manual_seed with the item's seed (what the cached results were trained with).
    torch.manual_seed(((7 * 100_003 + 1) * 1_000_003 + 2) % 2**63)
    assert torch.equal(torch.rand(3), drawn)
