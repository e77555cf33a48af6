"""Tests for the multi-scale Object Bank combination (wildcat.eval.combine)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from wildcat.cli import main
from wildcat.data import get_dataset
from wildcat.engine.config import load_config
from wildcat.engine.train import load_trained, train
from wildcat.eval import metrics
from wildcat.eval.combine import CombineError, combine, combine_scores, predict

from helpers import tiny_config


def _multilabel(rng, n, c):
    targets = np.where(rng.random((n, c)) < 0.35, 1, -1).astype(np.int8)
    targets[rng.random((n, c)) < 0.05] = 0  # difficult
    return targets


def test_informative_scale_beats_noise_multilabel():
    """Scale 0 carries the labels (plus noise), scale 1 is pure noise: the combination learns to
    trust scale 0 and beats the noisy scale by far."""
    rng = np.random.default_rng(0)
    c = 5
    train_targets, test_targets = _multilabel(rng, 300, c), _multilabel(rng, 200, c)

    def scales(targets):
        informative = (targets > 0) * 2.0 + rng.normal(0, 1.0, targets.shape)
        noise = rng.normal(0, 10.0, targets.shape)  # larger: a plain sum would drown scale 0
        return [informative, noise]

    train_scores, test_scores = scales(train_targets), scales(test_targets)
    combined = combine_scores(train_scores, train_targets, test_scores, "multilabel")
    assert combined.shape == (200, c)
    ap = {name: metrics.mean_average_precision(s, test_targets)[0]
          for name, s in (("combined", combined), ("informative", test_scores[0]), ("noise", test_scores[1]),
                          ("sum", test_scores[0] + test_scores[1]))}
    assert ap["combined"] > ap["noise"] + 0.3
    assert ap["combined"] > ap["sum"]
    assert ap["combined"] > ap["informative"] - 0.03


def test_difficult_labels_are_left_out_and_single_label_classes_fall_back():
    rng = np.random.default_rng(1)
    targets = np.where(rng.random((60, 2)) < 0.5, 1, -1).astype(np.int8)
    targets[:, 1] = 1  # class 1: no negative in the training split
    targets[:, 1][:5] = 0
    train_scores = [rng.normal(size=(60, 2)), rng.normal(size=(60, 2))]
    test_scores = [rng.normal(size=(10, 2)), rng.normal(size=(10, 2))]
    combined = combine_scores(train_scores, targets, test_scores, "multilabel")
    assert np.allclose(combined[:, 1], (test_scores[0][:, 1] + test_scores[1][:, 1]) / 2)
    # A difficult (0) image changes nothing, whatever its scores: it is not in the training set.
    moved = [s.copy() for s in train_scores]
    difficult = np.flatnonzero(targets[:, 0] != 0)[:3]
    targets[difficult, 0] = 0
    base = combine_scores(train_scores, targets, test_scores, "multilabel")
    for s in moved:
        s[difficult, 0] += 100.0
    assert np.allclose(combine_scores(moved, targets, test_scores, "multilabel")[:, 0], base[:, 0])


def test_informative_scale_beats_noise_multiclass():
    rng = np.random.default_rng(2)
    c = 4

    def scales(labels):
        informative = np.eye(c)[labels] * 3.0 + rng.normal(0, 1.0, (len(labels), c))
        return [rng.normal(0, 5.0, (len(labels), c)), informative]  # the noise first this time

    train_labels, test_labels = rng.integers(0, c, 400), rng.integers(0, c, 200)
    test_scores = scales(test_labels)
    combined = combine_scores(scales(train_labels), train_labels, test_scores, "multiclass")
    assert combined.shape == (200, c)
    assert metrics.accuracy(combined, test_labels) > metrics.accuracy(test_scores[0], test_labels) + 0.4
    assert metrics.accuracy(combined, test_labels) >= metrics.accuracy(test_scores[1], test_labels) - 0.03


def test_multiclass_two_classes_and_a_class_absent_from_training():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 100)  # classes 0 and 1 of 3
    train_scores = [np.eye(3)[labels] + rng.normal(0, 0.3, (100, 3))]
    test_labels = rng.integers(0, 2, 50)
    combined = combine_scores(train_scores, labels, [np.eye(3)[test_labels] + rng.normal(0, 0.3, (50, 3))], "multiclass")
    assert np.all(combined[:, 2] < combined[:, :2].min())
    assert metrics.accuracy(combined, test_labels) > 0.9


def test_one_scale_multilabel_keeps_the_ranking_of_a_monotone_score():
    """With a single scale and one feature per class, logistic regression is monotone in it."""
    rng = np.random.default_rng(4)
    targets = np.where(rng.random((80, 1)) < 0.5, 1, -1)
    scores = targets + rng.normal(0, 1.0, (80, 1))
    test = rng.normal(size=(30, 1))
    combined = combine_scores([scores], targets, [test], "multilabel")
    assert np.array_equal(np.argsort(combined[:, 0]), np.argsort(test[:, 0]))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([np.zeros((4, 2))], np.ones((4, 2)), [np.zeros((3, 2)), np.zeros((3, 2))], "multilabel"), "same scales"),
        (([np.zeros((4, 2)), np.zeros((4, 3))], np.ones((4, 2)), [np.zeros((3, 2))] * 2, "multilabel"), "same \\(N, C\\) shape"),
        (([np.zeros((4, 2))], np.ones((4, 3)), [np.zeros((3, 2))], "multilabel"), "multilabel targets"),
        (([np.zeros((4, 2))], np.ones((4, 2)), [np.zeros((3, 2))], "ranking"), "task must be"),
        (([np.full((4, 2), np.nan)], np.ones((4, 2)), [np.zeros((3, 2))], "multilabel"), "NaN"),
        (([], np.ones((4, 2)), [], "multilabel"), "at least one"),
    ],
)
def test_bad_inputs(args, match):
    with pytest.raises(CombineError, match=match):
        combine_scores(*args)


# End to end on the synthetic data: 2 scales, 1 epoch each.


@pytest.fixture(scope="module")
def member_runs(tiny_data_root, tmp_path_factory):
    runs = []
    for size in (48, 64):
        run = tmp_path_factory.mktemp(f"s{size}")
        train(tiny_config(tiny_data_root, image_size_px=size, epochs=1, kmax=0.2), run, progress=False)
        runs.append(run)
    return runs


@pytest.mark.slow
def test_two_scales_end_to_end_through_the_cli(member_runs, tmp_path):
    out = tmp_path / "metrics.json"
    code = main(["combine", "--quiet", "--runs", *map(str, member_runs), "--out", str(out), "--scores-out",
                 str(tmp_path / "scores.npz"), "--config-name", "test", "--dataset-id", "synthetic",
                 "--method", "wildcat", "--seed", "0", "--crf-workers", "2"])
    assert code == 0
    document = json.loads(out.read_text())
    # The CRF in 2 worker processes (above) or in this one: the same segmentation.
    assert combine(member_runs, tmp_path / "inline.json", progress=False)["metrics"] == document["metrics"]
    assert {k: document[k] for k in ("config_name", "dataset", "method", "seed")} == {
        "config_name": "test", "dataset": "synthetic", "method": "wildcat", "seed": 0}
    assert set(document["metrics"]) == {"map", "loc_map", "seg_miou_argmax", "seg_miou_crf"}
    for value in document["metrics"].values():
        assert 0 <= value <= 100
    assert document["protocol"]["seg_background"] in (0.3, 0.5)  # tiny_config's grid
    assert set(document["per_class"]["seg_miou_crf"]) == {"background", *document["per_class"]["map"]}
    assert document["settings"]["scales"] == [48, 64]
    assert document["settings"]["image_size_px"] == [48, 64]
    assert document["settings"]["order"] == "conv-pool" and document["settings"]["num_maps"] == 2
    assert document["protocol"]["loc_points_scale_px"] == 64
    assert document["num_test_images"] == 80
    saved = np.load(tmp_path / "scores.npz")
    assert saved["scores"].shape == (80, 4) and saved["test_scores"].shape == (2, 80, 4)
    # The per-scale test scores are the model's own (one forward pass over the test split).
    config = load_config(member_runs[1] / "config.yaml")
    dataset = get_dataset(config.dataset, config.data_root, "test")
    model = load_trained(member_runs[1], config, len(dataset.classes), "cpu")
    prediction = predict(model, dataset, config, torch.device("cpu"), progress=False)
    assert np.allclose(saved["test_scores"][1], prediction.scores, atol=1e-5)
    assert np.array_equal(saved["points"], prediction.points)


@pytest.mark.slow
def test_pool_conv_member_runs_end_to_end(tiny_data_root, member_runs, tmp_path):
    """The order variant trains, reloads as pool-conv and combines like any member."""
    from wildcat.engine.train import load_trained

    run = tmp_path / "poolconv"
    train(tiny_config(tiny_data_root, image_size_px=48, epochs=1, kmax=1, kmin=1, alpha=1.0, num_maps=1,
                      order="pool-conv"), run, progress=False)
    config = load_config(run / "config.yaml")
    model = load_trained(run, config, 4, "cpu")
    assert config.order == "pool-conv" and model.order == "pool-conv"
    out = tmp_path / "metrics.json"
    assert main(["combine", "--quiet", "--runs", str(run), str(member_runs[1]), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["settings"]["order"] == ["pool-conv", "conv-pool"]


def test_runs_of_different_datasets_are_refused(member_runs, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    text = (member_runs[0] / "config.yaml").read_text().replace("test_split: test", "test_split: train")
    (other / "config.yaml").write_text(text)
    code = main(["combine", "--runs", str(member_runs[0]), str(other), "--out", str(tmp_path / "m.json")])
    assert code == 2
    assert "member runs disagree on 'test_split'" in capsys.readouterr().err
