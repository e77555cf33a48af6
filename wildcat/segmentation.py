"""Weakly supervised segmentation from WILDCAT class maps (paper Section 4.3, Table 9).

The class maps of the classes the image is predicted to contain are upsampled to the image
size and each is divided by its maximum, so that a constant ``background`` in [0, 1] reads as
"a pixel belongs to class c where its map reaches at least ``background`` times its peak".
Pixel labels are the argmax over {background} and those normalized maps; the same values,
scaled by ``unary_scale`` and passed through a softmax, are the unary probabilities of the
dense CRF (:mod:`wildcat.crf`). ``background`` is tuned on a training split, never on the test
split (see :func:`wildcat.evaluate.tune_background`).
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


def segmentation_logits(
    class_maps: Tensor, scores: Tensor, image_size: tuple[int, int], background: float, score_threshold: float = 0.0
) -> Tensor:
    """Per-pixel values of background and classes.

    Args:
        class_maps: ``(C, h, w)`` maps of one image (after class-wise pooling).
        scores: ``(C,)`` class scores of the image.
        image_size: ``(H, W)`` of the original image.
        background: the background value, in units of each class map's peak.
        score_threshold: classes scored above it are candidates.

    Returns:
        ``(C + 1, H, W)`` float32: channel 0 is the background, channel ``c + 1`` class ``c``
        (``-inf`` for classes judged absent).
    """
    maps = F.interpolate(class_maps[None].float(), size=image_size, mode="bilinear", align_corners=False)[0]
    peaks = maps.flatten(1).amax(dim=1).clamp(min=1e-6)
    normalized = maps / peaks[:, None, None]
    logits = torch.full((maps.shape[0] + 1, *image_size), float("-inf"))
    logits[0] = background
    present = present_classes(scores.float(), score_threshold)
    logits[1:][present] = normalized[present]
    return logits


def argmax_labels(logits: Tensor) -> np.ndarray:
    """``(K, H, W) -> (H, W)`` int64 labels (0 = background, c + 1 = class c)."""
    return logits.argmax(dim=0).numpy().astype(np.int64)


def unary_probabilities(logits: Tensor, unary_scale: float) -> np.ndarray:
    """``(K, H, W)`` float32 probabilities ``softmax(unary_scale * logits)`` for the dense CRF."""
    return torch.softmax(logits * unary_scale, dim=0).numpy().astype(np.float32)
