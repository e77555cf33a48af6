"""Single-label classification accuracy (15 Scene and MIT67, paper Table 3): top-1 accuracy and
the mean over classes of the per-class accuracy."""

from __future__ import annotations

import numpy as np

from wildcat.eval.metrics._checks import _as_float_array, _as_int_array, _nanmean_with_warning

__all__ = ["accuracy", "per_class_accuracy", "mean_class_accuracy"]


def _predictions(scores_or_pred: np.ndarray) -> np.ndarray:
    arr = np.asarray(scores_or_pred)
    if arr.ndim == 2:
        return np.argmax(_as_float_array(arr, "scores", 2), axis=1)
    if arr.ndim == 1:
        return _as_int_array(arr, "predictions")
    raise ValueError(f"expected (N, C) scores or (N,) predicted class indices, got shape {arr.shape}")


def _check_single_label(pred: np.ndarray, labels: object) -> np.ndarray:
    labels = _as_int_array(labels, "labels")
    if labels.ndim != 1 or labels.shape != pred.shape:
        raise ValueError(
            f"labels must be (N,) class indices matching {pred.shape[0]} predictions, got {labels.shape}"
        )
    if labels.size == 0:
        raise ValueError("accuracy of an empty set is undefined: got 0 examples")
    if labels.min() < 0:
        raise ValueError(f"labels must be class indices >= 0, found {labels.min()}")
    return labels


def accuracy(scores_or_pred: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy (multi-class accuracy of 15 Scene and MIT67, WELDON supplementary).

    Args:
        scores_or_pred: ``(N, C)`` scores (prediction = ``argmax``, first index on ties) or
            ``(N,)`` predicted class indices.
        labels: ``(N,)`` true class indices.

    Returns:
        The fraction of correct predictions, in ``[0, 1]``.
    """
    pred = _predictions(scores_or_pred)
    labels = _check_single_label(pred, labels)
    return float(np.mean(pred == labels))


def per_class_accuracy(
    scores_or_pred: np.ndarray, labels: np.ndarray, num_classes: int | None = None
) -> np.ndarray:
    """Per-class recall: the fraction of the examples of each class predicted as that class.

    Args:
        scores_or_pred: ``(N, C)`` scores or ``(N,)`` predicted class indices.
        labels: ``(N,)`` true class indices.
        num_classes: ``C``; default ``scores.shape[1]`` for scores, else ``max(labels, pred) + 1``.

    Returns:
        ``(C,)`` float64, NaN for a class with no example.
    """
    pred = _predictions(scores_or_pred)
    labels = _check_single_label(pred, labels)
    if num_classes is None:
        arr = np.asarray(scores_or_pred)
        num_classes = arr.shape[1] if arr.ndim == 2 else int(max(labels.max(), pred.max())) + 1
    if labels.max() >= num_classes:
        raise ValueError(f"labels hold class {labels.max()} but num_classes={num_classes}")
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    correct = np.bincount(labels[pred == labels], minlength=num_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, correct / counts, np.nan)


def mean_class_accuracy(
    scores_or_pred: np.ndarray, labels: np.ndarray, num_classes: int | None = None
) -> float:
    """Mean over classes of :func:`per_class_accuracy` (balanced accuracy).

    Args:
        scores_or_pred: ``(N, C)`` scores or ``(N,)`` predicted class indices.
        labels: ``(N,)`` true class indices.
        num_classes: see :func:`per_class_accuracy`.

    Returns:
        The mean over the classes that have at least one example; a class without example is
        skipped with an :class:`UndefinedMetricWarning`. A float like :func:`accuracy`; call
        :func:`per_class_accuracy` for the per-class values.
    """
    per_class = per_class_accuracy(scores_or_pred, labels, num_classes)
    return _nanmean_with_warning(per_class, "class accuracy")
