"""Segmentation (paper Table 9): the pixel confusion matrix and the mean IoU of the VOC devkit."""

from __future__ import annotations

import numbers

import numpy as np

from wildcat.eval.metrics._checks import _as_int_array

__all__ = ["confusion_matrix", "mean_iou"]


def confusion_matrix(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int = 255
) -> np.ndarray:
    """Pixel confusion matrix for semantic segmentation (VOC: 21 classes, 255 = void).

    Args:
        pred: predicted labels, any shape (e.g. ``(H, W)``), values in ``[0, K)``.
        target: ground-truth labels, same shape, values in ``[0, K)`` or ``ignore_index``.
        num_classes: ``K``.
        ignore_index: target value whose pixels are left out (their prediction is not checked).

    Returns:
        ``(K, K)`` int64: ``[i, j]`` counts pixels of true class ``i`` predicted as ``j``
        (rows = ground truth, columns = prediction). Sum confusions over images, then call
        :func:`mean_iou`.
    """
    if not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise ValueError(f"num_classes must be an int >= 1, got {num_classes!r}")
    pred = _as_int_array(pred, "pred")
    target = _as_int_array(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred {pred.shape} and target {target.shape} must have the same shape")
    valid = target != ignore_index
    t, p = target[valid], pred[valid]
    bad_t = np.unique(t[(t < 0) | (t >= num_classes)])
    if bad_t.size:
        raise ValueError(
            f"target holds labels {bad_t[:5].tolist()} outside [0, {num_classes}) "
            f"and != ignore_index={ignore_index}"
        )
    bad_p = np.unique(p[(p < 0) | (p >= num_classes)])
    if bad_p.size:
        raise ValueError(
            f"pred holds labels {bad_p[:5].tolist()} outside [0, {num_classes}) on non-ignored pixels"
        )
    counts = np.bincount(num_classes * t + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def mean_iou(confusion: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean intersection over union from a confusion matrix (VOC segmentation, Table 9).

    ``IoU_c = TP / (TP + FP + FN)`` with ``TP = M[c, c]``, ``FN = row sum - TP``,
    ``FP = column sum - TP`` (the VOC devkit's ``VOCevalseg`` accuracy).

    Args:
        confusion: ``(K, K)`` counts, rows = ground truth, columns = prediction.

    Returns:
        ``(mIoU, per_class_iou)``: ``per_class_iou`` is ``(K,)``; a class absent from both the
        ground truth and the predictions has NaN IoU and is skipped in the mean, silently (it
        happens on small subsets). NaN if every class is absent. A class in the ground truth
        that is never predicted, or predicted but absent, has IoU 0 and counts.
    """
    confusion = np.asarray(confusion)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"confusion must be a square (K, K) matrix, got shape {confusion.shape}")
    if np.any(confusion < 0):
        raise ValueError("confusion must hold counts >= 0")
    confusion = confusion.astype(np.float64)
    tp = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(union > 0, tp / union, np.nan)
    if np.all(np.isnan(per_class)):
        return float("nan"), per_class
    return float(np.nanmean(per_class)), per_class
