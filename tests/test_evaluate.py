"""Tests for the evaluation pass (wildcat.eval.evaluate)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from wildcat.engine.train import train
from wildcat.eval.evaluate import (
    classification_metrics,
    evaluate,
    localization_metrics,
    merge_metrics,
    peak_points,
    undefined_metrics_reported,
)

from helpers import tiny_config


def test_peak_points_map_region_centres_to_original_pixels():
    maps = torch.zeros(1, 2, 4, 5)
    maps[0, 0, 1, 3] = 1.0  # row 1, column 3
    maps[0, 1, 3, 0] = 1.0  # row 3, column 0
    points = peak_points(maps, torch.tensor([[500, 400]]))  # a 500 x 400 (W x H) image
    # x = (3 + 0.5) * 500 / 5 = 350, y = (1 + 0.5) * 400 / 4 = 150; x = 0.5 * 100 = 50, y = 3.5 * 100 = 350
    assert np.allclose(points[0], [[350.0, 150.0], [50.0, 350.0]])


@pytest.fixture(scope="module")
def trained_run(tiny_data_root, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    train(tiny_config(tiny_data_root, epochs=2), run, progress=False)
    return run


def test_metrics_json_has_every_metric(trained_run, tmp_path):
    identity = {"config_name": "test", "dataset": "synthetic", "method": "wildcat", "seed": 0}
    out = tmp_path / "metrics.json"
    result = evaluate(trained_run, out, identity=identity, progress=False)
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(json.dumps(result))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["maps.npz", "metrics.json"]  # the outputs the workflow declares
    assert {k: result[k] for k in identity} == identity
    assert set(result["metrics"]) == {"map", "loc_map", "seg_miou_argmax", "seg_miou_crf"}
    for value in result["metrics"].values():
        assert 0 <= value <= 100
    classes = list(result["per_class"]["map"])
    assert len(classes) == 4
    assert list(result["per_class"]["seg_miou_argmax"]) == ["background", *classes]
    assert result["protocol"]["seg_background"] in (0.3, 0.5)
    assert result["settings"]["num_maps"] == 2
    assert result["num_test_images"] == 80


def test_crf_worker_processes_give_the_same_metrics(trained_run, tmp_path):
    """The dense CRF in 2 worker processes, a few images ahead, counts the same pixels as in
    this process: the two metrics.json files are identical but for the provenance."""
    documents = []
    for workers in (0, 2):
        out = tmp_path / f"w{workers}" / "metrics.json"
        evaluate(trained_run, out, progress=False, crf_workers=workers)
        documents.append(json.loads(out.read_text(encoding="utf-8")))
    provenances = [document.pop("provenance") for document in documents]  # wall times differ
    assert documents[0] == documents[1]
    assert provenances[0]["config"] == provenances[1]["config"]
    assert documents[0]["metrics"]["seg_miou_crf"] is not None


class ThreeImages:
    """A stand-in test split: 3 images, the first two show alfa (a box each), none bravo or charlie."""

    classes = ["alfa", "bravo", "charlie"]
    task = "multilabel"
    targets = np.array([[1, -1, -1], [1, -1, -1], [-1, -1, -1]])

    def __len__(self) -> int:
        return len(self.targets)

    def boxes_for(self, index: int) -> dict[str, np.ndarray]:
        boxes = np.array([[0.0, 0.0, 10.0, 10.0]] if index < 2 else np.zeros((0, 4)))
        return {"labels": np.zeros(len(boxes), np.int64), "boxes": boxes}


def test_classes_left_out_of_the_means_are_named_in_one_warning_line(tmp_path, capsys, recwarn):
    """Two classes without a positive test image: AP and localization AP both leave them out of
    their means, and the evaluation names them once, in one stderr line, instead of one
    UndefinedMetricWarning per metric; other warnings pass on."""
    dataset = ThreeImages()
    scores = np.array([[0.9, 0.5, 0.1], [0.8, 0.4, 0.2], [0.1, 0.3, 0.3]])
    points = np.full((3, 3, 2), 5.0)
    config = tiny_config(tmp_path)
    with undefined_metrics_reported(dataset, "evaluate"):
        result = classification_metrics(scores, dataset, config)
        merge_metrics(result, localization_metrics(scores, points, dataset, config))
        warnings.warn("an unrelated warning", UserWarning, stacklevel=1)
    assert capsys.readouterr().err.splitlines() == [
        "wildcat evaluate: warning: 2 classes have no positive test image (average precision and localization AP "
        "undefined, left out of the mean): bravo, charlie"]
    assert [str(w.message) for w in recwarn] == ["an unrelated warning"]
    assert result["per_class"]["map"] == result["per_class"]["loc_map"] == {"alfa": 100.0, "bravo": None, "charlie": None}
