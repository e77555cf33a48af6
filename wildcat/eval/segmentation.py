"""Weakly supervised segmentation from WILDCAT class maps (paper Section 4.3, Table 9).

The class maps of the classes the image is predicted to contain are upsampled to the image
size and each is divided by its maximum, so that a constant ``background`` in [0, 1] reads as
"a pixel belongs to class c where its map reaches at least ``background`` times its peak".
Pixel labels are the argmax over {background} and those normalized maps; the same values,
with the background, scaled by ``unary_scale`` and passed through a softmax, are the unary
probabilities of the dense CRF (:mod:`wildcat.eval.crf`), run over the same labels as the argmax:
background and the present classes. ``background`` is tuned on a training split, never on the
test split (see :func:`wildcat.eval.evaluate.tune_background`).

A multi-scale WILDCAT (Section 4.1) segments with the mean of its scale models' peak-normalized
maps and its combined scores (the paper does not say how its multi-scale Table 9 maps were
merged: this averaging is our choice, documented in docs/protocols.md).
"""

from __future__ import annotations

from collections.abc import Sequence

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


def class_logits(
    class_maps: Tensor | Sequence[Tensor], scores: Tensor, image_size: tuple[int, int], score_threshold: float = 0.0
) -> np.ndarray:
    """Per-pixel values of the classes, in units of each class map's peak.

    Args:
        class_maps: ``(C, h, w)`` maps of one image (after class-wise pooling), or the maps of
            several scale models of a multi-scale WILDCAT (``(C, h_s, w_s)`` each): every map is
            upsampled and divided by its own peak, then the scales are averaged.
        scores: ``(C,)`` class scores of the image (for a multi-scale model, the combined ones).
        image_size: ``(H, W)`` of the original image.
        score_threshold: classes scored above it are candidates.

    Returns:
        ``(C, H, W)`` float32: the mean over scales of the upsampled map of each present class
        divided by its peak, ``-inf`` for classes judged absent.
    """
    per_scale = [class_maps] if isinstance(class_maps, Tensor) else list(class_maps)
    if not per_scale:
        raise ValueError("class_logits needs the class maps of at least one scale")
    normalized = []
    for maps in per_scale:
        maps = F.interpolate(maps[None].float(), size=image_size, mode="bilinear", align_corners=False)[0]
        peaks = maps.flatten(1).amax(dim=1).clamp(min=1e-6)
        normalized.append(maps / peaks[:, None, None])
    mean = torch.stack(normalized).mean(dim=0)
    logits = torch.full_like(mean, float("-inf"))
    present = present_classes(scores.float(), score_threshold)
    logits[present] = mean[present]
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


def crf_unaries(logits: np.ndarray, background: float, unary_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The dense CRF's input over the labels the argmax can give: background and the classes
    judged present (finite ``logits``): ``(probs (P + 1, H, W), labels (P + 1,))``, the labels
    in the dataset's numbering (0: background, ``c + 1``: class ``c``), for
    ``wildcat.eval.crf.crf_refine(rgb, probs, params, labels=labels)``.

    The absent classes have probability 0 in :func:`unary_probabilities`; a mean-field CRF with
    the Potts model never gives such a label to a pixel (its unary and pairwise costs are both
    the highest), so leaving them out changes the labels only through pydensecrf's clipping of
    zero probabilities to 1e-5, and the CRF runs faster with fewer labels (``benchmarks/engine.py``
    prints both).

    Args:
        logits: ``(C, H, W)`` from :func:`class_logits` (``-inf`` for absent classes).
        background, unary_scale: as in :func:`unary_probabilities`.
    """
    present = np.flatnonzero(np.isfinite(logits).any(axis=(1, 2)))
    return unary_probabilities(logits[present], background, unary_scale), np.concatenate([[0], present + 1])
