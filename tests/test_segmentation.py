"""Tests for wildcat.eval.segmentation (class maps -> pixel labels and CRF unaries)."""

from __future__ import annotations

import numpy as np
import torch

from wildcat.eval.crf import CRFParams, crf_refine
from wildcat.eval.segmentation import argmax_labels, class_logits, crf_unaries, present_classes, unary_probabilities


def test_present_classes_keeps_the_top_class():
    assert present_classes(torch.tensor([-1.0, 0.5, 2.0])).tolist() == [False, True, True]
    assert present_classes(torch.tensor([-3.0, -1.0, -2.0])).tolist() == [False, True, False]


def test_logits_normalize_each_map_by_its_peak():
    maps = torch.zeros(2, 2, 2)
    maps[0] = torch.tensor([[4.0, 2.0], [1.0, 0.0]])  # peak 4
    maps[1] = torch.tensor([[0.0, 0.0], [0.0, 10.0]])  # absent class
    logits = class_logits(maps, torch.tensor([1.0, -1.0]), (2, 2))
    assert logits.shape == (2, 2, 2)
    assert np.allclose(logits[0], [[1.0, 0.5], [0.25, 0.0]])
    assert np.isinf(logits[1]).all()
    # class 0 where its map exceeds 40% of its peak; background elsewhere (class 1 is absent).
    assert argmax_labels(logits, background=0.4).tolist() == [[1, 1], [0, 0]]
    # at exactly the background value the background wins
    assert argmax_labels(logits, background=0.5).tolist() == [[1, 0], [0, 0]]


def test_highest_present_class_wins():
    maps = torch.tensor([[[1.0, 0.2]], [[0.5, 1.0]]])  # (2, 1, 2)
    logits = class_logits(maps, torch.tensor([1.0, 1.0]), (1, 2))
    assert argmax_labels(logits, background=0.1).tolist() == [[1, 2]]


def test_multiscale_logits_average_the_peak_normalized_maps_of_each_scale():
    """A 2-scale model: a (1, 1, 2) map [1, 3] (peak 3) and a (1, 1, 1) map [2] (upsampled to
    [2, 2], peak 2): mean of [1/3, 1] and [1, 1] = [2/3, 1]."""
    fine, coarse = torch.tensor([[[1.0, 3.0]]]), torch.tensor([[[2.0]]])
    logits = class_logits([fine, coarse], torch.tensor([1.0]), (1, 2))
    assert np.allclose(logits, [[[2 / 3, 1.0]]])
    # One scale given as a list is the single-scale case.
    assert np.array_equal(class_logits([fine], torch.tensor([1.0]), (1, 2)), class_logits(fine, torch.tensor([1.0]), (1, 2)))
    # The (combined) scores decide which classes are present, whatever the maps.
    two_classes = [torch.cat([fine, fine]), torch.cat([coarse, coarse])]
    logits = class_logits(two_classes, torch.tensor([-1.0, 2.0]), (1, 2))
    assert np.isinf(logits[0]).all() and np.allclose(logits[1], [[2 / 3, 1.0]])


def test_logits_are_upsampled_to_the_image_size():
    logits = class_logits(torch.randn(3, 4, 5), torch.tensor([1.0, 1.0, 1.0]), (40, 50))
    assert logits.shape == (3, 40, 50)
    assert argmax_labels(logits, 0.5).shape == (40, 50)


def test_unary_probabilities_sum_to_one_and_follow_the_argmax():
    logits = class_logits(torch.randn(3, 6, 6), torch.tensor([1.0, -1.0, 1.0]), (6, 6))
    probs = unary_probabilities(logits, background=0.3, unary_scale=5.0)
    assert probs.shape == (4, 6, 6)
    assert probs.dtype == np.float32
    assert np.allclose(probs.sum(axis=0), 1.0, atol=1e-5)
    assert (probs[2] == 0).all()  # an absent class has probability 0
    assert (probs.argmax(axis=0) == argmax_labels(logits, 0.3)).all()


def test_crf_over_present_labels_equals_the_crf_over_all_labels():
    """The CRF runs over background + present classes only: the same labels, in the dataset's
    numbering, as the CRF over all C + 1 labels (absent ones at probability 0)."""
    rng = np.random.default_rng(0)
    image = np.zeros((48, 64, 3), np.uint8)
    image[:, 20:40] = (200, 40, 40)   # class 1's object
    image[10:30, 44:60] = (40, 40, 200)  # class 3's object
    truth = np.zeros((48, 64), np.int64)
    truth[:, 20:40], truth[10:30, 44:60] = 2, 4
    maps = torch.zeros(5, 48, 64)
    maps[1] = torch.from_numpy((truth == 2) + 0.4 * rng.random((48, 64)))  # noisy, edges off by the noise
    maps[3] = torch.from_numpy((truth == 4) + 0.4 * rng.random((48, 64)))
    logits = class_logits(maps, torch.tensor([-2.0, 3.0, -1.0, 2.0, -3.0]), (48, 64))
    params = CRFParams(iterations=5)
    probs, label_ids = crf_unaries(logits, 0.5, 5.0)
    assert probs.shape == (3, 48, 64) and list(label_ids) == [0, 2, 4]
    labels = crf_refine(image, probs, params, labels=label_ids)
    everything = crf_refine(image, unary_probabilities(logits, 0.5, 5.0), params)
    np.testing.assert_array_equal(labels, everything)
    assert set(np.unique(labels)) == {0, 2, 4}
    assert (labels == truth).mean() > 0.95
