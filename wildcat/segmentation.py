"""Weakly supervised segmentation from WILDCAT class maps (paper Section 4.3, Table 9).

The class maps of the classes the image is predicted to contain are upsampled to the image
size and each is divided by its maximum, so that a constant ``background`` in [0, 1] reads as
"a pixel belongs to class c where its map reaches at least ``background`` times its peak".
Pixel labels are the argmax over {background} and those normalized maps; the same values,
with the background, scaled by ``unary_scale`` and passed through a softmax, are the unary
probabilities of the dense CRF (:mod:`wildcat.crf`). ``background`` is tuned on a training
split, never on the test split (see :func:`wildcat.evaluate.tune_background`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def present_classes(scores: Tensor, score_threshold: float = 0.0) -> Tensor:
    """``(C,)`` bool: classes scored above ``score_threshold`` (logit 0 = probability 0.5),
    and always the top-scoring class (every segmentation image shows at least one object)."""
    present = scores > score_threshold
    present[scores.argmax()] = True
    return present


def class_logits(class_maps: Tensor, scores: Tensor, image_size: tuple[int, int], score_threshold: float = 0.0) -> np.ndarray:
    """Per-pixel values of the classes, in units of each class map's peak.

    Args:
        class_maps: ``(C, h, w)`` maps of one image (after class-wise pooling).
        scores: ``(C,)`` class scores of the image.
        image_size: ``(H, W)`` of the original image.
        score_threshold: classes scored above it are candidates.

    Returns:
        ``(C, H, W)`` float32: the upsampled map of each present class divided by its peak,
        ``-inf`` for classes judged absent.
    """
    maps = F.interpolate(class_maps[None].float(), size=image_size, mode="bilinear", align_corners=False)[0]
    peaks = maps.flatten(1).amax(dim=1).clamp(min=1e-6)
    logits = torch.full_like(maps, float("-inf"))
    present = present_classes(scores.float(), score_threshold)
    logits[present] = maps[present] / peaks[present, None, None]
    return logits.numpy()


def argmax_labels(logits: np.ndarray, background: float) -> np.ndarray:
    """``(C, H, W)`` class logits -> ``(H, W)`` int64 labels: 0 (background) where no class
    exceeds ``background``, else ``c + 1`` for the highest class ``c``."""
    best = logits.argmax(axis=0)
    peak = np.take_along_axis(logits, best[None], axis=0)[0]
    return np.where(peak > background, best + 1, 0)


def unary_probabilities(logits: np.ndarray, background: float, unary_scale: float) -> np.ndarray:
    """``(C + 1, H, W)`` float32 probabilities ``softmax(unary_scale * [background, logits])``
    (channel 0: background) for the dense CRF."""
    stacked = np.concatenate([np.full((1, *logits.shape[1:]), background, np.float32), logits]) * unary_scale
    stacked -= stacked.max(axis=0, keepdims=True)
    exp = np.exp(stacked)
    return (exp / exp.sum(axis=0, keepdims=True)).astype(np.float32)
