"""Tests for wildcat.eval.crf: dense-CRF refinement (Krähenbühl & Koltun, NIPS 2011) via pydensecrf."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, shift

from wildcat.eval.crf import CRFParams, crf_marginals, crf_refine
from wildcat.eval.metrics import confusion_matrix, mean_iou

H, W = 64, 64


def two_region_scene(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A red disk on a blue background (sharp edge, mild pixel noise), its mask, and a coarse
    probability map: the mask shifted by (3, -4) px, blurred (sigma 5 px) and noisy, as an
    upsampled low-resolution class map would be."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:H, :W]
    mask = ((xx - 32) ** 2 + (yy - 30) ** 2 < 16**2).astype(np.int64)
    colours = np.where(mask[..., None] == 1, [200, 60, 50], [40, 90, 190]).astype(np.float64)
    image = np.clip(colours + rng.normal(0, 8, colours.shape), 0, 255).astype(np.uint8)
    fg = gaussian_filter(shift(mask.astype(np.float64), (3, -4), order=0), 5)
    fg = np.clip(0.15 + 0.7 * fg + rng.normal(0, 0.15, fg.shape), 0.02, 0.98)
    return image, np.stack([1 - fg, fg]), mask


def iou(pred: np.ndarray, mask: np.ndarray) -> float:
    return mean_iou(confusion_matrix(pred, mask, 2))[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_crf_improves_iou_on_a_sharp_edge(seed):
    image, probs, mask = two_region_scene(seed)
    before = iou(probs.argmax(axis=0), mask)
    after = iou(crf_refine(image, probs), mask)
    # The blurred, shifted map gives ~0.73 mIoU; the CRF snaps it to the colour edge (~1.0).
    assert before < 0.8
    assert after > 0.95
    assert after > before + 0.15


def test_output_shape_and_dtype():
    image, probs, _ = two_region_scene(0)
    labels = crf_refine(image[:40, :50], probs[:, :40, :50])
    assert labels.shape == (40, 50)
    assert labels.dtype == np.int64
    assert set(np.unique(labels)) <= {0, 1}


def test_marginals_are_probabilities():
    image, probs, _ = two_region_scene(0)
    q = crf_marginals(image, probs, CRFParams(iterations=3))
    assert q.shape == (2, H, W) and q.dtype == np.float32
    np.testing.assert_allclose(q.sum(axis=0), 1.0, atol=1e-4)


def test_uniform_image_with_confident_probs_is_unchanged():
    image = np.full((32, 40, 3), 120, np.uint8)
    probs = np.full((3, 32, 40), 0.05)
    probs[2] = 0.9
    np.testing.assert_array_equal(crf_refine(image, probs), np.full((32, 40), 2))
    # Two confident halves of the same colour: the symmetric split stays where it is.
    halves = np.zeros((32, 40), np.int64)
    halves[:, 20:] = 1
    probs = np.full((3, 32, 40), 0.05)
    probs[0][halves == 0] = 0.9
    probs[1][halves == 1] = 0.9
    np.testing.assert_array_equal(crf_refine(image, probs), halves)


def test_non_contiguous_inputs_are_accepted():
    image, probs, _ = two_region_scene(1)
    image_f = np.asfortranarray(image)
    probs_t = np.ascontiguousarray(probs.transpose(0, 2, 1)).transpose(0, 2, 1)  # strided view
    assert not image_f.flags.c_contiguous and not probs_t.flags.c_contiguous
    np.testing.assert_array_equal(crf_refine(image_f, probs_t), crf_refine(image, probs))


def test_read_only_inputs_are_accepted():
    # np.asarray(PIL.Image) is read-only; pydensecrf's memoryviews need writable buffers.
    image, probs, _ = two_region_scene(2)
    expected = crf_refine(image, probs)
    image.setflags(write=False)
    probs.setflags(write=False)
    np.testing.assert_array_equal(crf_refine(image, probs), expected)


@pytest.mark.parametrize(
    ("image", "probs", "match"),
    [
        (np.zeros((8, 8), np.uint8), np.full((2, 8, 8), 0.5), r"\(H, W, 3\)"),
        (np.zeros((8, 8, 4), np.uint8), np.full((2, 8, 8), 0.5), r"\(H, W, 3\)"),
        (np.zeros((8, 8, 3), np.float32), np.full((2, 8, 8), 0.5), "uint8"),
        (np.zeros((8, 8, 3), np.uint8), np.full((8, 8), 0.5), r"\(K, H, W\)"),
        (np.zeros((8, 8, 3), np.uint8), np.full((2, 8, 9), 0.5), "upsample"),
        (np.zeros((8, 8, 3), np.uint8), np.full((2, 8, 8), 0.7), "sum to 1"),
        (np.zeros((8, 8, 3), np.uint8), np.full((2, 8, 8), np.nan), "finite"),
        (np.zeros((8, 8, 3), np.uint8), np.ones((2, 8, 8), np.int64), "floating"),
    ],
)
def test_invalid_inputs(image, probs, match):
    with pytest.raises(ValueError, match=match):
        crf_refine(image, probs)


def test_params_defaults_and_validation():
    params = CRFParams()
    assert dataclasses.astuple(params) == (10, 3.0, 3.0, 80.0, 13.0, 10.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.iterations = 5  # type: ignore[misc]
    with pytest.raises(ValueError, match="iterations"):
        CRFParams(iterations=0)
    with pytest.raises(ValueError, match="bilateral_srgb"):
        CRFParams(bilateral_srgb=0)
    with pytest.raises(ValueError, match="gaussian_compat"):
        CRFParams(gaussian_compat=-1)


def test_labels_name_the_channels():
    """``labels`` maps channel k of a CRF over a subset of the classes to the class's own id."""
    image, probs, _ = two_region_scene(3)
    channels = crf_refine(image, probs)
    assert set(np.unique(channels)) == {0, 1}
    np.testing.assert_array_equal(crf_refine(image, probs, labels=np.array([0, 7])), np.array([0, 7])[channels])
    with pytest.raises(ValueError, match="one label per channel"):
        crf_refine(image, probs, labels=np.array([0, 1, 2]))
