"""Average precision of a ranking: the multi-label classification mAP of paper Tables 2 and 4
(Table 8's pointwise localization reuses it), as the PASCAL VOC devkits compute it: 11-point
(VOC2007) or all-point (VOC2010+) interpolated, or non-interpolated
(``sklearn.metrics.average_precision_score``)."""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np

from wildcat.eval.metrics._checks import (
    _as_float_array,
    _as_int_array,
    _check_multilabel_targets,
    _nanmean_with_warning,
)

__all__ = ["APMode", "average_precision", "mean_average_precision"]

#: ``"voc07"``: 11-point interpolated AP (VOC2007 devkit); ``"voc12"``: all-point interpolated
#: AP (VOC2010+ devkit); ``"raw"``: non-interpolated AP (``sklearn.metrics.average_precision_score``).
APMode = Literal["voc07", "voc12", "raw"]
_AP_MODES = ("voc07", "voc12", "raw")


def _check_ap_mode(mode: str) -> None:
    """``mode`` must be one of :data:`APMode`."""
    if mode not in _AP_MODES:
        raise ValueError(f"mode={mode!r} is not an AP mode: use one of {_AP_MODES}")


def _ranked_counts(scores: np.ndarray, is_tp: np.ndarray, group_ties: bool) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative TP and FP counts down the ranking by decreasing score.

    Args:
        scores: ``(N,)`` scores.
        is_tp: ``(N,)`` bool, True for a true positive, False for a false positive.
        group_ties: if True, one entry per distinct score (the counts after the whole tie group,
            as sklearn's ``_binary_clf_curve``); if False, one entry per item, ties kept in input
            order by a stable sort (as the VOC devkit's ``[so,si]=sort(-out)``).

    Returns:
        ``(tp_cum, fp_cum)``, two int arrays of the same length (>= 1 when ``N >= 1``).
    """
    order = np.argsort(-scores, kind="stable")
    tp = is_tp[order]
    tp_cum = np.cumsum(tp, dtype=np.int64)
    fp_cum = np.cumsum(~tp, dtype=np.int64)
    if group_ties:
        sorted_scores = scores[order]
        last_of_group = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1]
        tp_cum, fp_cum = tp_cum[last_of_group], fp_cum[last_of_group]
    return tp_cum, fp_cum


def _ap_from_counts(tp_cum: np.ndarray, fp_cum: np.ndarray, num_positives: int, mode: str) -> float:
    """AP of a ranked list from its cumulative counts (``num_positives`` >= 1).

    ``num_positives`` can exceed ``tp_cum[-1]`` (positives never retrieved, as in pointwise
    localization): recall then never reaches 1.
    """
    recall = tp_cum / num_positives
    precision = tp_cum / (tp_cum + fp_cum)  # every entry covers >= 1 item: no 0 / 0
    if mode == "raw":
        # sum_k (R_k - R_{k-1}) P_k, R_0 = 0: sklearn's average_precision_score.
        return float(np.sum(np.diff(recall, prepend=0.0) * precision))
    if mode == "voc12":
        # VOC2010+ devkit VOCap: area under the monotone (right-to-left max) precision envelope.
        mrec = np.r_[0.0, recall, 1.0]
        mpre = np.r_[0.0, precision, 0.0]
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
        return float(np.sum((mrec[steps] - mrec[steps - 1]) * mpre[steps]))
    # voc07: VOC2007 devkit, mean over t in {0, 0.1, ..., 1} of max(prec(rec >= t)), 0 if none.
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    thresholds = np.arange(11) / 10.0  # exactly k/10 (see average_precision's Notes)
    first = np.searchsorted(recall, thresholds, side="left")  # recall is non-decreasing
    padded = np.r_[envelope, 0.0]
    return float(np.mean(padded[first]))


def average_precision(scores: np.ndarray, labels: np.ndarray, mode: APMode = "voc07") -> float:
    """Average precision of one class (PASCAL VOC devkit ``VOCevalcls``).

    Items are ranked by decreasing score; items labelled ``0`` (difficult) are removed before
    ranking, which is what the devkit's ``tp=gt(si)>0; fp=gt(si)<0`` amounts to.

    Args:
        scores: ``(N,)`` real scores, higher = more confident.
        labels: ``(N,)`` ints: ``1`` positive, ``-1`` negative, ``0`` difficult (ignored).
        mode: ``"voc07"`` 11-point interpolated AP, the VOC2007 devkit's
            ``mean_{t in 0:0.1:1} max(prec(rec >= t))`` (0 for a ``t`` above the last recall);
            ``"voc12"`` all-point interpolated AP, the VOC2010-2012 devkit's ``VOCap`` (area
            under the precision envelope ``p(r) = max_{r' >= r} prec(r')``);
            ``"raw"`` non-interpolated AP ``sum_k (R_k - R_{k-1}) P_k``, equal to
            ``sklearn.metrics.average_precision_score`` on the non-ignored items.

    Returns:
        AP in ``[0, 1]``; NaN when no item is a positive (AP is undefined; the mean functions
        skip such classes with an :class:`UndefinedMetricWarning`).

    Raises:
        ValueError: shapes differ, non-finite scores, labels outside ``{-1, 0, 1}``, bad mode.

    Notes:
        Ties. ``"raw"`` groups tied scores into one threshold, as sklearn does, so it does not
        depend on the input order. ``"voc07"`` and ``"voc12"`` follow the devkits, which sort
        with MATLAB's stable ``sort(-out)`` and do not group ties: tied items keep their input
        order, so a tie between a positive and a negative can change the AP depending on
        which comes first. With continuous network scores ties are rare.

        11-point thresholds are exactly ``k/10``. The devkit's floating-point ``0:0.1:1``
        (and ``np.arange(0, 1.1, 0.1)`` in py-faster-rcnn's ``voc_eval.py``) has some
        thresholds one ulp above ``k/10`` (``3 * 0.1 = 0.30000000000000004``), so a recall of
        exactly ``3/10`` can be compared differently there; this implementation uses the
        definition of Everingham et al. (IJCV 2010): 11 equally spaced recall levels.

        A warning is raised when ``labels`` contain ``0`` but no ``-1``: that usually means
        sklearn-style ``{0, 1}`` labels, whose zeros this function would ignore.

        WILDCAT's PyTorch release (``wildcat.pytorch``, ``util.AveragePrecisionMeter``) computes
        the non-interpolated AP, i.e. ``"raw"`` without tie grouping.
    """
    _check_ap_mode(mode)
    scores = _as_float_array(scores, "scores", 1)
    labels = _as_int_array(labels, "labels")
    if labels.shape != scores.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} must have the same shape")
    _check_multilabel_targets(labels)
    if np.any(labels == 0) and not np.any(labels == -1):
        warnings.warn(
            "labels contain 0 (difficult, ignored) but no -1 (negative): if these are {0, 1} "
            "labels, map 0 to -1 first",
            UserWarning,
            stacklevel=2,
        )
    keep = labels != 0
    scores, positive = scores[keep], labels[keep] == 1
    num_positives = int(positive.sum())
    if num_positives == 0:
        return float("nan")
    tp_cum, fp_cum = _ranked_counts(scores, positive, group_ties=mode == "raw")
    return _ap_from_counts(tp_cum, fp_cum, num_positives, mode)


def mean_average_precision(
    scores: np.ndarray, labels: np.ndarray, mode: APMode = "voc07"
) -> tuple[float, np.ndarray]:
    """Mean over classes of :func:`average_precision` (multi-label classification mAP).

    Args:
        scores: ``(N, C)`` class scores.
        labels: ``(N, C)`` targets in ``{1, 0, -1}`` (``0`` = difficult, ignored for that class).
        mode: see :func:`average_precision`.

    Returns:
        ``(mAP, per_class_ap)``: the mean over the classes that have at least one positive, and
        the ``(C,)`` per-class APs (NaN for a class without positives; an
        :class:`UndefinedMetricWarning` names the skipped classes). NaN if no class has one.
    """
    _check_ap_mode(mode)
    scores = _as_float_array(scores, "scores", 2)
    labels = _as_int_array(labels, "labels")
    if labels.shape != scores.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} must have the same (N, C) shape")
    per_class = np.array(
        [average_precision(scores[:, c], labels[:, c], mode) for c in range(scores.shape[1])],
        dtype=np.float64,
    )
    return _nanmean_with_warning(per_class, "average precision"), per_class
