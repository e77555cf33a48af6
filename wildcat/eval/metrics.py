"""Evaluation metrics of the WILDCAT paper (Durand et al., CVPR 2017), on numpy arrays.

Pure functions in scikit-learn's style: inputs are validated, edge cases are documented, values
are fractions in ``[0, 1]`` (``wildcat evaluate`` writes them as percentages).

* Classification: :func:`average_precision`, :func:`mean_average_precision`
  (PASCAL VOC devkit AP, 11-point or all-point interpolated, or non-interpolated),
  :func:`accuracy`, :func:`mean_class_accuracy`, :func:`per_class_accuracy` (single-label sets:
  15 Scene, MIT67).
* Pointwise localization (Table 8): :func:`pointwise_localization_ap`, the point-based metric of
  Oquab et al. (CVPR 2015), and :func:`pointing_game_accuracy` (Zhang et al., ECCV 2016, as
  TorchRay implements it), an extra metric for comparison with later papers.
* Segmentation (Table 9): :func:`confusion_matrix`, :func:`mean_iou`.

Label conventions follow ``docs/contracts.md``: multi-label targets are ``1`` (positive),
``0`` (difficult: ignored) and ``-1`` (negative). Protocol facts and their sources are in
``docs/protocols.md``; the ones marked "unconfirmed" there are marked here too.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

__all__ = [
    "APMode",
    "UndefinedMetricWarning",
    "average_precision",
    "mean_average_precision",
    "accuracy",
    "per_class_accuracy",
    "mean_class_accuracy",
    "point_hits_box",
    "pointwise_localization_ap",
    "pointing_game_accuracy",
    "confusion_matrix",
    "mean_iou",
]

#: ``"voc07"``: 11-point interpolated AP (VOC2007 devkit); ``"voc12"``: all-point interpolated
#: AP (VOC2010+ devkit); ``"raw"``: non-interpolated AP (``sklearn.metrics.average_precision_score``).
APMode = Literal["voc07", "voc12", "raw"]
_AP_MODES = ("voc07", "voc12", "raw")
_TOLERANCE_SHAPES = ("square", "disk")


class UndefinedMetricWarning(RuntimeWarning):
    """A per-class value is undefined (NaN), e.g. a class without positives, and was skipped."""


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _as_float_array(x: object, name: str, ndim: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {arr.shape}")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or infinite values: replace them before evaluating")
    return arr


def _as_int_array(x: object, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        integral_floats = np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr))
        if integral_floats and np.all(arr == np.round(arr)):
            return arr.astype(np.int64)
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _check_ap_mode(mode: str) -> None:
    if mode not in _AP_MODES:
        raise ValueError(f"mode={mode!r} is not an AP mode: use one of {_AP_MODES}")


def _check_multilabel_targets(labels: np.ndarray, name: str = "labels") -> None:
    bad = ~np.isin(labels, (-1, 0, 1))
    if bad.any():
        raise ValueError(
            f"{name} must be 1 (positive), 0 (difficult, ignored) or -1 (negative); "
            f"found {np.unique(labels[bad])[:5].tolist()}"
        )


def _nanmean_with_warning(values: np.ndarray, what: str) -> float:
    """Mean over the non-NaN entries of ``values``; warn once about the skipped ones."""
    undefined = np.flatnonzero(np.isnan(values))
    if undefined.size:
        warnings.warn(
            f"{what} is undefined for class(es) {undefined.tolist()} (e.g. no positive example); "
            f"they are skipped in the mean over {values.size - undefined.size} class(es)",
            UndefinedMetricWarning,
            stacklevel=3,
        )
    if undefined.size == values.size:
        return float("nan")
    return float(np.nanmean(values))


# --------------------------------------------------------------------------------------------
# Average precision
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Single-label accuracy
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Pointwise localization
# --------------------------------------------------------------------------------------------


def point_hits_box(
    points: np.ndarray,
    boxes: np.ndarray,
    tolerance_px: float,
    shape: Literal["square", "disk"] = "square",
    inclusive: bool = True,
) -> np.ndarray:
    """Whether each point lies within ``tolerance_px`` of its box.

    Args:
        points: ``(M, 2)`` points ``(x, y)``.
        boxes: ``(M, 4)`` boxes ``(xmin, ymin, xmax, ymax)``, in the same coordinates as the points.
        tolerance_px: ``>= 0``.
        shape: ``"square"``: the box enlarged by ``tolerance_px`` on each side (Chebyshev
            distance to the box); ``"disk"``: Euclidean distance to the box.
        inclusive: if True a point exactly at distance ``tolerance_px`` is a hit (``<=``),
            otherwise a miss (``<``, as TorchRay's pointing game).

    Returns:
        ``(M,)`` bool.
    """
    if shape not in _TOLERANCE_SHAPES:
        raise ValueError(f"tolerance shape {shape!r} is not one of {_TOLERANCE_SHAPES}")
    if not isinstance(tolerance_px, numbers.Real) or not tolerance_px >= 0:
        raise ValueError(f"tolerance_px={tolerance_px!r} must be a number >= 0")
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x, y = points[:, 0], points[:, 1]
    dx = np.maximum.reduce([boxes[:, 0] - x, np.zeros_like(x), x - boxes[:, 2]])
    dy = np.maximum.reduce([boxes[:, 1] - y, np.zeros_like(y), y - boxes[:, 3]])
    distance = np.maximum(dx, dy) if shape == "square" else np.hypot(dx, dy)
    return distance <= tolerance_px if inclusive else distance < tolerance_px


def _stack_boxes(
    boxes: Sequence[Mapping[str, np.ndarray]], num_images: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate per-image box dicts (``docs/contracts.md``'s ``boxes_for``).

    Returns:
        ``(image_index (M,), labels (M,), xyxy (M, 4), difficult (M,))``. A missing
        ``difficult`` key means no difficult box.
    """
    if len(boxes) != num_images:
        raise ValueError(f"boxes must hold one dict per image: got {len(boxes)} for {num_images} images")
    image_index, labels, xyxy, difficult = [], [], [], []
    for i, target in enumerate(boxes):
        if "labels" not in target or "boxes" not in target:
            raise ValueError(
                f"boxes[{i}] must be a dict with 'labels' (K,) and 'boxes' (K, 4); got keys {list(target)}"
            )
        lab = _as_int_array(target["labels"], f"boxes[{i}]['labels']").reshape(-1)
        box = np.asarray(target["boxes"], dtype=np.float64)
        if box.size == 0:
            box = box.reshape(0, 4)
        if box.ndim != 2 or box.shape != (lab.size, 4):
            raise ValueError(f"boxes[{i}]['boxes'] must be ({lab.size}, 4), got {box.shape}")
        diff = np.asarray(target.get("difficult", np.zeros(lab.size, bool)), dtype=bool).reshape(-1)
        if diff.size != lab.size:
            raise ValueError(f"boxes[{i}]['difficult'] must be ({lab.size},), got {diff.shape}")
        if lab.size and (lab.min() < 0 or lab.max() >= num_classes):
            raise ValueError(
                f"boxes[{i}]['labels'] must be class indices in [0, {num_classes}), got {lab.tolist()}"
            )
        if np.any(box[:, 2] < box[:, 0]) or np.any(box[:, 3] < box[:, 1]) or not np.all(np.isfinite(box)):
            raise ValueError(
                f"boxes[{i}]['boxes'] must be finite (xmin, ymin, xmax, ymax) with xmin <= xmax, "
                f"ymin <= ymax; got {box.tolist()}"
            )
        image_index.append(np.full(lab.size, i, dtype=np.int64))
        labels.append(lab)
        xyxy.append(box)
        difficult.append(diff)
    if not image_index:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0, bool)
    return (
        np.concatenate(image_index),
        np.concatenate(labels),
        np.concatenate(xyxy),
        np.concatenate(difficult),
    )


def _localization_outcomes(
    points: np.ndarray,
    boxes: Sequence[Mapping[str, np.ndarray]],
    tolerance_px: float,
    tolerance_shape: str,
    ignore_difficult: bool,
    inclusive: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (image, class): is the class present, is its point a hit, is the pair ignored.

    Returns:
        ``(present, hit, ignored)``, three ``(N, C)`` bool arrays. ``hit`` tests the point
        against every box of the class (difficult ones too).
    """
    num_images, num_classes = points.shape[:2]
    image_index, labels, xyxy, difficult = _stack_boxes(boxes, num_images, num_classes)
    box_hit = point_hits_box(points[image_index, labels], xyxy, tolerance_px, tolerance_shape, inclusive)
    hit = np.zeros((num_images, num_classes), dtype=bool)
    hit[image_index[box_hit], labels[box_hit]] = True
    any_box = np.zeros_like(hit)
    any_box[image_index, labels] = True
    easy_box = np.zeros_like(hit)
    easy_box[image_index[~difficult], labels[~difficult]] = True
    if ignore_difficult:
        return easy_box, hit, any_box & ~easy_box
    return any_box, hit, np.zeros_like(hit)


def _check_points(
    points: object, num_images: int | None = None, num_classes: int | None = None
) -> np.ndarray:
    points = _as_float_array(points, "points", 3)
    if points.shape[2] != 2:
        raise ValueError(f"points must be (N, C, 2) (x, y) locations, got shape {points.shape}")
    if num_images is not None and points.shape[:2] != (num_images, num_classes):
        raise ValueError(
            f"points {points.shape} must be (N, C, 2) with (N, C) = {(num_images, num_classes)} as scores"
        )
    return points


def pointwise_localization_ap(
    scores: np.ndarray,
    points: np.ndarray,
    boxes: Sequence[Mapping[str, np.ndarray]],
    tolerance_px: float = 18.0,
    *,
    tolerance_shape: Literal["square", "disk"] = "square",
    ignore_difficult: bool = True,
    mode: APMode = "voc12",
) -> tuple[float, np.ndarray]:
    """Point-based localization mAP of Oquab et al. (CVPR 2015), as WILDCAT Table 8 uses it.

    Per class ``c``, every image is ranked by its class score ``scores[:, c]``. An image is a
    true positive if it contains ``c`` and its point ``points[i, c]`` (the location of the
    maximum of the class map, in original-image pixels) falls within ``tolerance_px`` of a
    ground-truth box of class ``c``; every other image is a false positive at its score (an
    image without ``c``, or with ``c`` but a missed point, whose object is then never
    recalled). Recall is over the images that contain ``c``. AP per class, then the mean.

    Sources (docs/protocols.md): the WILDCAT paper (Table 8 and its text) confirms
    the max-region point, the "point-based object localization metric introduced by" Oquab et
    al., and ranking by class score. Unconfirmed (no copy of Oquab's text found): the 18 px
    tolerance, the TP/FP rule and the recall denominator above. Open choices are parameters.

    Args:
        scores: ``(N, C)`` class scores.
        points: ``(N, C, 2)`` ``(x, y)`` point per image and class, in the coordinate
            convention of ``boxes`` (VOC boxes are 1-based: add 1 to 0-based pixel indices).
        boxes: ``N`` dicts with ``labels (K,)`` class indices, ``boxes (K, 4)``
            ``(xmin, ymin, xmax, ymax)`` and optionally ``difficult (K,)`` bool
            (``docs/contracts.md``'s ``boxes_for``).
        tolerance_px: the margin around each box, in original-image pixels (unconfirmed: 18).
        tolerance_shape: ``"square"`` (default): the box enlarged by ``tolerance_px`` on each
            side, border included; ``"disk"``: Euclidean distance to the box ``<= tolerance_px``.
        ignore_difficult: if True (default), an image whose boxes of class ``c`` are all
            difficult is removed from class ``c``'s ranking, as the VOC classification devkit
            does with difficult images; if False, difficult boxes count as ordinary boxes.
            Either way, a point inside a difficult box of ``c`` is a hit. COCO crowd regions:
            the dataset decides (marking them difficult ignores crowd-only images).
        mode: the AP interpolation (see :func:`average_precision`). Default ``"voc12"``:
            the metric reuses the classification ranking, and on VOC 2012 (Table 8) the
            classification devkit's AP is all-point interpolated. Pass the same mode as the
            classification mAP of the dataset (e.g. ``"raw"`` for COCO) to keep the two
            comparable. Unconfirmed which one Oquab et al. used.

    Returns:
        ``(loc_mAP, per_class_ap)``: the mean over classes with at least one positive image, and
        ``(C,)`` APs (NaN for a class with no positive image, skipped in the mean with an
        :class:`UndefinedMetricWarning`).

    Notes:
        Ties follow :func:`average_precision`: grouped in ``"raw"``, input order otherwise.
    """
    _check_ap_mode(mode)
    scores = _as_float_array(scores, "scores", 2)
    points = _check_points(points, *scores.shape)
    present, hit, ignored = _localization_outcomes(
        points, boxes, tolerance_px, tolerance_shape, ignore_difficult, inclusive=True
    )
    per_class = np.full(scores.shape[1], np.nan)
    for c in range(scores.shape[1]):
        keep = ~ignored[:, c]
        num_positives = int(present[keep, c].sum())
        if num_positives == 0:
            continue
        is_tp = present[keep, c] & hit[keep, c]
        tp_cum, fp_cum = _ranked_counts(scores[keep, c], is_tp, group_ties=mode == "raw")
        per_class[c] = _ap_from_counts(tp_cum, fp_cum, num_positives, mode)
    return _nanmean_with_warning(per_class, "localization AP"), per_class


def pointing_game_accuracy(
    points: np.ndarray,
    boxes: Sequence[Mapping[str, np.ndarray]],
    tolerance_px: float = 15.0,
    *,
    average: Literal["class", "pair"] = "class",
) -> tuple[float, np.ndarray]:
    """Pointing game (Zhang et al., ECCV 2016), as TorchRay's ``PointingGame`` scores it.

    For every (image, class) pair where the class is present, the point is a hit if it lies at
    Euclidean distance strictly below ``tolerance_px`` from a box of the class (TorchRay:
    ``(v**2 + u**2) < tolerance**2`` against the box mask, boxes of the class including
    difficult ones). Classes whose boxes in the image are all difficult are skipped
    (TorchRay's ``PointingGameBenchmark``). Unlike :func:`pointwise_localization_ap`, scores
    play no part: only images that contain the class are asked.

    Args:
        points: ``(N, C, 2)`` ``(x, y)`` points, in the coordinates of ``boxes``.
        boxes: ``N`` dicts as in :func:`pointwise_localization_ap`.
        tolerance_px: the disk radius (TorchRay: 15).
        average: ``"class"`` (default, TorchRay's reported number): the mean over classes of the
            per-class accuracy; ``"pair"``: hits over all evaluated pairs.

    Returns:
        ``(accuracy, per_class_accuracy)``; ``per_class_accuracy`` is ``(C,)``, NaN for a class
        never present (skipped with an :class:`UndefinedMetricWarning`; TorchRay counts it as 0,
        which never happens on VOC07 test or COCO val2014).
    """
    if average not in ("class", "pair"):
        raise ValueError(f"average={average!r} must be 'class' or 'pair'")
    points = _check_points(points)
    present, hit, _ = _localization_outcomes(points, boxes, tolerance_px, "disk", True, inclusive=False)
    evaluated = present.sum(axis=0)
    hits = (present & hit).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(evaluated > 0, hits / np.maximum(evaluated, 1), np.nan)
    if average == "pair":
        total = int(evaluated.sum())
        return (float(hits.sum() / total) if total else float("nan")), per_class
    return _nanmean_with_warning(per_class, "pointing game accuracy"), per_class


# --------------------------------------------------------------------------------------------
# Segmentation
# --------------------------------------------------------------------------------------------


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
