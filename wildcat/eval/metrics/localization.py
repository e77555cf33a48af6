"""Pointwise localization (paper Table 8): the point-based metric of Oquab et al. (CVPR 2015),
the location of each class map's maximum scored against the ground-truth boxes."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import Literal

import numpy as np

from wildcat.eval.metrics._checks import _as_float_array, _as_int_array, _nanmean_with_warning
from wildcat.eval.metrics.ranking import APMode, _ap_from_counts, _check_ap_mode, _ranked_counts

__all__ = ["point_hits_box", "pointwise_localization_ap"]

_TOLERANCE_SHAPES = ("square", "disk")

def point_hits_box(
    points: np.ndarray,
    boxes: np.ndarray,
    tolerance_px: float,
    shape: Literal["square", "disk"] = "square",
) -> np.ndarray:
    """Whether each point lies within ``tolerance_px`` of its box, border included.

    Args:
        points: ``(M, 2)`` points ``(x, y)``.
        boxes: ``(M, 4)`` boxes ``(xmin, ymin, xmax, ymax)``, in the same coordinates as the points.
        tolerance_px: ``>= 0``.
        shape: ``"square"``: the box enlarged by ``tolerance_px`` on each side (Chebyshev
            distance to the box); ``"disk"``: Euclidean distance to the box.

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
    return distance <= tolerance_px


def _stack_boxes(
    boxes: Iterable[Mapping[str, np.ndarray]], num_images: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate per-image box dicts (``docs/contracts.md``'s ``boxes_for``), read one at a time:
    of a generator's dicts, only their arrays are kept until they are concatenated.

    Returns:
        ``(image_index (M,), labels (M,), xyxy (M, 4), difficult (M,))``. A missing
        ``difficult`` key means no difficult box.
    """
    counts, labels, xyxy, difficult = [], [], [], []
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
        counts.append(lab.size)
        labels.append(lab)
        xyxy.append(box)
        difficult.append(diff)
    if len(counts) != num_images:
        raise ValueError(f"boxes must hold one dict per image: got {len(counts)} for {num_images} images")
    if not counts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0, bool)
    return (
        np.repeat(np.arange(num_images, dtype=np.int64), counts),
        np.concatenate(labels),
        np.concatenate(xyxy),
        np.concatenate(difficult),
    )


def _localization_outcomes(
    points: np.ndarray,
    boxes: Iterable[Mapping[str, np.ndarray]],
    tolerance_px: float,
    tolerance_shape: str,
    ignore_difficult: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (image, class): is the class present, is its point a hit, is the pair ignored.

    Returns:
        ``(present, hit, ignored)``, three ``(N, C)`` bool arrays. ``hit`` tests the point
        against every box of the class (difficult ones too).
    """
    num_images, num_classes = points.shape[:2]
    image_index, labels, xyxy, difficult = _stack_boxes(boxes, num_images, num_classes)
    box_hit = point_hits_box(points[image_index, labels], xyxy, tolerance_px, tolerance_shape)
    hit = np.zeros((num_images, num_classes), dtype=bool)
    hit[image_index[box_hit], labels[box_hit]] = True
    any_box = np.zeros_like(hit)
    any_box[image_index, labels] = True
    easy_box = np.zeros_like(hit)
    easy_box[image_index[~difficult], labels[~difficult]] = True
    if ignore_difficult:
        return easy_box, hit, any_box & ~easy_box
    return any_box, hit, np.zeros_like(hit)


def _check_points(points: object, num_images: int, num_classes: int) -> np.ndarray:
    """``points`` as a finite ``(num_images, num_classes, 2)`` float64 array (ValueError otherwise)."""
    points = _as_float_array(points, "points", 3)
    if points.shape[2] != 2:
        raise ValueError(f"points must be (N, C, 2) (x, y) locations, got shape {points.shape}")
    if points.shape[:2] != (num_images, num_classes):
        raise ValueError(
            f"points {points.shape} must be (N, C, 2) with (N, C) = {(num_images, num_classes)} as scores"
        )
    return points


def pointwise_localization_ap(
    scores: np.ndarray,
    points: np.ndarray,
    boxes: Iterable[Mapping[str, np.ndarray]],
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
            (``docs/contracts.md``'s ``boxes_for``), in image order: a list, or a generator that
            reads them one image at a time (no list of ``N`` dicts is then held).
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
    present, hit, ignored = _localization_outcomes(points, boxes, tolerance_px, tolerance_shape, ignore_difficult)
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
