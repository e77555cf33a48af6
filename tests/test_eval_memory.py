"""Evaluation memory at real scale (issue 18): what keeps it bounded (the parsed annotations a VOC
dataset keeps, boxes read one image at a time by the localization metric) and the deterministic
parts of benchmarks/eval_memory.py (the target rule, the bytes of the metric arrays, the run
folders it evaluates). The memory itself is measured by running the benchmark."""

from __future__ import annotations

import importlib.util
import weakref

import numpy as np
import pytest

from wildcat.data import get_dataset, voc
from wildcat.engine.config import load_config, make_config, save_config
from wildcat.eval.metrics import pointwise_localization_ap

from helpers import ROOT

MiB = 2**20


def _benchmark():
    spec = importlib.util.spec_from_file_location("eval_memory_benchmark", ROOT / "benchmarks" / "eval_memory.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_metric_array_bytes_are_float32_scores_and_float64_points():
    # 2,000 images x 12 classes: scores 2000 * 12 * 4 = 96,000 B, points 2000 * 12 * 2 * 8 = 384,000 B.
    assert _benchmark().metric_array_bytes(2000, 12) == 480_000


def test_target_is_1_2_times_the_small_peak_plus_the_extra_arrays():
    within_target = _benchmark().within_target
    assert within_target(500 * MiB, 600 * MiB, 0)  # exactly 1.2 x
    assert not within_target(500 * MiB, 600 * MiB + 1, 0)
    assert within_target(500 * MiB, 600 * MiB + 1, 1)  # the extra arrays' bytes move the limit
    assert not within_target(500 * MiB, 700 * MiB, 99 * MiB)
    assert within_target(500 * MiB, 400 * MiB, 0)  # less memory at the larger size is fine


def test_training_settings_are_the_default_wildcat_method_for_one_epoch(tmp_path):
    settings = _benchmark().experiment_settings(tmp_path / "data", 48)
    config = make_config(settings)
    assert (config.dataset, config.backbone, config.num_maps, config.alpha) == ("synthetic", "cnn6", 4, 0.7)
    assert (config.data_root, config.image_size_px, config.epochs) == (str(tmp_path / "data"), 48, 1)


def test_copied_run_reads_its_own_tree_with_the_same_weights(tmp_path):
    bench = _benchmark()
    trained, copy = tmp_path / "trained", tmp_path / "copy"
    trained.mkdir()
    original = make_config(bench.experiment_settings(tmp_path / "data_small", 96))
    save_config(original, trained / "config.yaml")
    (trained / "model.pt").write_bytes(b"weights")
    bench.copy_run(trained, copy, tmp_path / "data_large")
    copied = load_config(copy / "config.yaml")
    assert copied.data_root == str(tmp_path / "data_large")
    assert {**copied.to_dict(), "data_root": None} == {**original.to_dict(), "data_root": None}
    assert (copy / "model.pt").read_bytes() == b"weights"
    assert load_config(trained / "config.yaml").data_root == str(tmp_path / "data_small")  # the original is unchanged


class _Target(dict):
    """A ``boxes_for`` dict that a weak reference can watch."""


def test_localization_ap_reads_a_generator_of_boxes_one_image_at_a_time():
    # Image 0: class present, point missed, score 0.9 (FP); image 1: hit, 0.8 (TP); image 2: no
    # class, 0.1 (FP); 2 positives -> raw AP = 1/2 * 1/2 = 0.25 (tests/test_metrics.py).
    box = np.array([[10.0, 10.0, 20.0, 20.0]])
    labels = [[0], [0], []]
    points = np.array([[[100.0, 100.0]], [[12.0, 12.0]], [[0.0, 0.0]]])
    scores = np.array([[0.9], [0.8], [0.1]])
    refs, alive_at_each_read = [], []

    def boxes(count):
        for k in range(count):
            alive_at_each_read.append(sum(ref() is not None for ref in refs))
            target = _Target(labels=np.asarray(labels[k], np.int64), boxes=box[: len(labels[k])])
            refs.append(weakref.ref(target))
            yield target

    value, per_class = pointwise_localization_ap(scores, points, boxes(3), mode="raw")
    assert value == 0.25 and per_class.tolist() == [0.25]
    assert max(alive_at_each_read) <= 1  # only the dict read last: never a list of them
    with pytest.raises(ValueError, match="one dict per image: got 2 for 3 images"):
        pointwise_localization_ap(scores, points, boxes(2), mode="raw")


def test_a_pass_over_a_split_keeps_only_the_last_parsed_annotations(tiny_data_root):
    test = get_dataset("synthetic", tiny_data_root, "test")
    assert len(test) > voc._ANNOTATIONS_KEPT
    first = test.boxes_for(0)
    for index in range(len(test)):
        test.boxes_for(index)
    assert len(test._annotations) == voc._ANNOTATIONS_KEPT
    last = len(test) - 1
    assert test.annotation(last) is test.annotation(last)  # one image's methods parse its file once
    again = test.boxes_for(0)  # parsed again after it was dropped: the same objects
    for key in ("labels", "boxes", "difficult"):
        np.testing.assert_array_equal(again[key], first[key])
