"""Tests for the evaluation pass (wildcat.eval.evaluate)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from wildcat.eval.evaluate import evaluate, peak_points
from wildcat.engine.train import train

from conftest import tiny_config


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
    result = evaluate(trained_run, out, identity=identity, overlays_dir=tmp_path / "overlays", num_overlays=2, progress=False)
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
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
    overlays = sorted((tmp_path / "overlays").glob("*.png"))
    assert len(overlays) == 2


def test_crf_worker_processes_give_the_same_metrics(trained_run, tmp_path):
    """The dense CRF in 2 worker processes, a few images ahead, counts the same pixels as in
    this process: metrics.json and the overlays are identical."""
    documents = []
    for workers in (0, 2):
        out = tmp_path / f"w{workers}"
        documents.append(evaluate(trained_run, out / "metrics.json", overlays_dir=out / "overlays", num_overlays=2,
                                  progress=False, crf_workers=workers))
    provenances = [document.pop("provenance") for document in documents]  # wall times differ
    assert documents[0] == documents[1]
    assert provenances[0]["config"] == provenances[1]["config"]
    assert documents[0]["metrics"]["seg_miou_crf"] is not None
    for first in sorted((tmp_path / "w0" / "overlays").glob("*.png")):
        assert first.read_bytes() == (tmp_path / "w2" / "overlays" / first.name).read_bytes()
