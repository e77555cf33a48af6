"""Tests for wildcat.eval.metrics: hand-worked examples, the VOC devkit and sklearn as references."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from wildcat.eval.metrics import (
    UndefinedMetricWarning,
    accuracy,
    average_precision,
    confusion_matrix,
    mean_average_precision,
    mean_class_accuracy,
    mean_iou,
    per_class_accuracy,
    point_hits_box,
    pointwise_localization_ap,
)


def devkit_ap(scores: np.ndarray, labels: np.ndarray, mode: str) -> float:
    """Reference: a line-by-line port of the VOC devkit's VOCevalcls + VOCap (MATLAB).

    Difficult items (label 0) stay in the ranking as neither TP nor FP, as in the devkit;
    MATLAB's ``max`` ignores the NaN precisions (0/0) they can create at the top of the list.
    11-point thresholds are exact ``k/10`` (see average_precision's Notes).
    """
    si = np.argsort(-scores, kind="stable")  # [so,si]=sort(-out): stable
    tp = np.cumsum(labels[si] > 0)
    fp = np.cumsum(labels[si] < 0)
    rec = tp / np.sum(labels > 0)
    with np.errstate(invalid="ignore"):
        prec = tp / (fp + tp)
    if mode == "voc07":
        ap = 0.0
        for k in range(11):
            p = prec[rec >= k / 10]
            p = p[~np.isnan(p)]
            ap += (p.max() if p.size else 0.0) / 11
        return ap
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], prec, [0.0]])
    for i in range(mpre.size - 2, -1, -1):
        mpre[i] = np.nanmax([mpre[i], mpre[i + 1]])
    i = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[i] - mrec[i - 1]) * mpre[i]))


def random_case(seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 80))
    scores = rng.random(n)
    if ties:
        scores = np.round(scores * 4) / 4  # 5 distinct values: many ties
    labels = rng.choice([-1, 0, 1], size=n, p=[0.5, 0.2, 0.3])
    labels[0] = 1  # at least one positive
    labels[1] = -1
    return scores, labels


class TestAveragePrecision:
    # Ranked P N N P (npos = 2):
    #   rank 1 P: tp 1 fp 0 -> prec 1,   rec 1/2
    #   rank 2 N: tp 1 fp 1 -> prec 1/2, rec 1/2
    #   rank 3 N: tp 1 fp 2 -> prec 1/3, rec 1/2
    #   rank 4 P: tp 2 fp 2 -> prec 1/2, rec 1
    # raw   = 1/2 * 1 + 1/2 * 1/2 = 0.75
    # voc12 = envelope 1 on (0, 1/2], 1/2 on (1/2, 1] -> 0.75
    # voc07 = t in {0, .1, .2, .3, .4, .5}: 1; t in {.6, .7, .8, .9, 1}: 1/2 -> (6 + 2.5) / 11
    SCORES_C = np.array([0.9, 0.8, 0.7, 0.6])
    LABELS_C = np.array([1, -1, -1, 1])

    # Ranked N P N P P (npos = 3):
    #   precisions 0, 1/2, 1/3, 1/2, 3/5 at recalls 0, 1/3, 1/3, 2/3, 1
    # raw   = 1/3 * (1/2 + 1/2 + 3/5) = 1.6 / 3 = 0.5333...
    # voc12 = envelope 3/5 everywhere -> 0.6
    # voc07 = 3/5 at every threshold -> 0.6
    SCORES_B = np.array([0.5, 0.4, 0.3, 0.2, 0.1])
    LABELS_B = np.array([-1, 1, -1, 1, 1])

    @pytest.mark.parametrize(("mode", "expected"), [("raw", 0.75), ("voc12", 0.75), ("voc07", 8.5 / 11)])
    def test_hand_worked_p_n_n_p(self, mode, expected):
        assert average_precision(self.SCORES_C, self.LABELS_C, mode) == pytest.approx(expected, abs=1e-12)

    @pytest.mark.parametrize(("mode", "expected"), [("raw", 1.6 / 3), ("voc12", 0.6), ("voc07", 0.6)])
    def test_hand_worked_n_p_n_p_p(self, mode, expected):
        assert average_precision(self.SCORES_B, self.LABELS_B, mode) == pytest.approx(expected, abs=1e-12)

    def test_voc07_differs_from_voc12(self):
        voc07 = average_precision(self.SCORES_C, self.LABELS_C, "voc07")
        voc12 = average_precision(self.SCORES_C, self.LABELS_C, "voc12")
        assert voc07 - voc12 == pytest.approx(8.5 / 11 - 0.75, abs=1e-12)

    def test_input_order_does_not_matter_without_ties(self):
        perm = np.array([3, 0, 2, 1])
        for mode in ("raw", "voc07", "voc12"):
            assert average_precision(self.SCORES_C[perm], self.LABELS_C[perm], mode) == pytest.approx(
                average_precision(self.SCORES_C, self.LABELS_C, mode), abs=1e-15
            )

    def test_perfect_and_worst_ranking(self):
        # Perfect: every mode gives 1. Worst (N N P): precision 1/3 at recall 1 -> 1/3 in every mode.
        for mode in ("raw", "voc07", "voc12"):
            assert average_precision([3.0, 2.0, 1.0], [1, 1, -1], mode) == 1.0
            assert average_precision([3.0, 2.0, 1.0], [-1, -1, 1], mode) == pytest.approx(1 / 3, abs=1e-12)

    def test_voc07_thresholds_are_exact_tenths(self):
        # 10 positives: P P P, then 10 N, then 7 P. After rank 3: recall exactly 3/10, precision 1.
        # Later positives: precision rises to 10/20 = 0.5 at recall 1 (the envelope beyond 0.3).
        # t in {0, .1, .2, .3}: 1 (recall 0.3 >= t = 0.3); t in {.4, ..., 1}: 0.5 -> 7.5 / 11.
        # With the floating grid 3 * 0.1 = 0.30000000000000004 it would be 7 / 11.
        labels = np.array([1] * 3 + [-1] * 10 + [1] * 7)
        scores = -np.arange(labels.size, dtype=float)
        assert average_precision(scores, labels, "voc07") == pytest.approx(7.5 / 11, abs=1e-12)

    def test_difficult_items_are_removed(self):
        # Difficult items at the top, in the middle and at the bottom change nothing.
        scores = np.array([1.0, 0.9, 0.8, 0.75, 0.7, 0.6, 0.1])
        labels = np.array([0, 1, -1, 0, -1, 1, 0])
        for mode, expected in (("raw", 0.75), ("voc12", 0.75), ("voc07", 8.5 / 11)):
            assert average_precision(scores, labels, mode) == pytest.approx(expected, abs=1e-12)

    def test_ties_raw_groups_them(self):
        # One threshold holding a positive and a negative: precision 1/2 at recall 1 -> 0.5,
        # whatever the input order (sklearn's threshold grouping).
        assert average_precision([0.5, 0.5], [1, -1], "raw") == 0.5
        assert average_precision([0.5, 0.5], [-1, 1], "raw") == 0.5
        assert average_precision_score([1, 0], [0.5, 0.5]) == 0.5

    def test_ties_voc_modes_keep_input_order(self):
        # Devkit: stable sort, no grouping. P first: precision 1 at recall 1 -> 1.
        # N first: precisions 0, 1/2 at recalls 0, 1 -> envelope 1/2 -> 0.5 (voc07: 11 * 1/2 / 11).
        for mode in ("voc07", "voc12"):
            assert average_precision([0.5, 0.5], [1, -1], mode) == 1.0
            assert average_precision([0.5, 0.5], [-1, 1], mode) == 0.5

    @pytest.mark.parametrize("seed", range(8))
    @pytest.mark.parametrize("ties", [False, True])
    def test_raw_equals_sklearn(self, seed, ties):
        scores, labels = random_case(seed, ties)
        keep = labels != 0
        expected = average_precision_score(labels[keep] == 1, scores[keep])
        assert average_precision(scores, labels, "raw") == pytest.approx(expected, abs=1e-9)

    @pytest.mark.parametrize("seed", range(8))
    @pytest.mark.parametrize("ties", [False, True])
    @pytest.mark.parametrize("mode", ["voc07", "voc12"])
    def test_voc_modes_equal_devkit_port(self, seed, ties, mode):
        scores, labels = random_case(seed, ties)
        expected = devkit_ap(scores, labels, mode)
        assert average_precision(scores, labels, mode) == pytest.approx(expected, abs=1e-12)

    @pytest.mark.parametrize("mode", ["voc07", "voc12", "raw"])
    def test_no_positive_is_nan(self, mode):
        assert np.isnan(average_precision([0.3, 0.2], [-1, -1], mode))
        assert np.isnan(average_precision([0.3, 0.2], [0, -1], mode))

    def test_zero_one_labels_warn(self):
        with pytest.warns(UserWarning, match="map 0 to -1"):
            average_precision([0.3, 0.2], [1, 0])

    @pytest.mark.parametrize(
        ("scores", "labels", "match"),
        [
            ([0.1, 0.2], [1, 2], "must be 1"),
            ([0.1, 0.2], [1], "same shape"),
            ([0.1, np.nan], [1, -1], "NaN"),
            ([[0.1, 0.2]], [[1, -1]], "1-D"),
        ],
    )
    def test_invalid_inputs(self, scores, labels, match):
        with pytest.raises(ValueError, match=match):
            average_precision(scores, labels)

    def test_bad_mode(self):
        with pytest.raises(ValueError, match="AP mode"):
            average_precision([0.1], [1], mode="voc10")


class TestMeanAveragePrecision:
    def test_mean_and_per_class(self):
        scores = np.stack([TestAveragePrecision.SCORES_C, [0.1, 0.2, 0.3, 0.4]], axis=1)
        labels = np.stack([TestAveragePrecision.LABELS_C, [-1, -1, 1, 1]], axis=1)
        # Class 0: 0.75 (raw); class 1: perfect -> 1. Mean 0.875.
        value, per_class = mean_average_precision(scores, labels, "raw")
        np.testing.assert_allclose(per_class, [0.75, 1.0])
        assert value == pytest.approx(0.875)

    def test_class_without_positive_is_skipped_with_warning(self):
        scores = np.array([[0.9, 0.5], [0.1, 0.4]])
        labels = np.array([[1, -1], [-1, 0]])
        with pytest.warns(UndefinedMetricWarning, match=r"class\(es\) \[1\]") as caught:
            value, per_class = mean_average_precision(scores, labels, "voc07")
        assert [(w.message.metric, w.message.classes) for w in caught] == [("average precision", (1,))]
        assert value == 1.0
        assert per_class[0] == 1.0 and np.isnan(per_class[1])

    def test_no_class_with_positive_is_nan(self):
        with pytest.warns(UndefinedMetricWarning):
            value, _ = mean_average_precision(np.zeros((2, 2)), -np.ones((2, 2), int))
        assert np.isnan(value)

    def test_float_targets_accepted(self):
        # Dataset targets are float tensors of 1 / 0 / -1 (docs/contracts.md).
        value, _ = mean_average_precision(np.array([[0.9], [0.1]]), np.array([[1.0], [-1.0]], np.float32))
        assert value == 1.0

    def test_shape_mismatch(self):
        with pytest.raises(ValueError, match=r"\(N, C\)"):
            mean_average_precision(np.zeros((3, 2)), np.ones((3, 3), int))


class TestAccuracy:
    SCORES = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]])
    LABELS = np.array([0, 1, 1, 2, 0])  # predictions 0, 1, 0, 2, 2

    def test_top1(self):
        assert accuracy(self.SCORES, self.LABELS) == pytest.approx(3 / 5)
        assert accuracy(np.array([0, 1, 0, 2, 2]), self.LABELS) == pytest.approx(3 / 5)

    def test_argmax_tie_takes_first_class(self):
        assert accuracy(np.array([[0.5, 0.5]]), np.array([0])) == 1.0

    def test_mean_class_accuracy(self):
        # class 0: 1 of 2; class 1: 1 of 2; class 2: 1 of 1 -> (0.5 + 0.5 + 1) / 3.
        np.testing.assert_allclose(per_class_accuracy(self.SCORES, self.LABELS), [0.5, 0.5, 1.0])
        assert mean_class_accuracy(self.SCORES, self.LABELS) == pytest.approx(2 / 3)

    def test_mean_class_accuracy_skips_empty_class(self):
        # class 0: 1 of 1; class 1: 0 of 1; class 2: no example -> NaN, skipped.
        per_class = per_class_accuracy(np.array([0, 0]), np.array([0, 1]), num_classes=3)
        np.testing.assert_array_equal(per_class[:2], [1.0, 0.0])
        assert np.isnan(per_class[2])
        with pytest.warns(UndefinedMetricWarning, match=r"\[2\]"):
            value = mean_class_accuracy(np.array([0, 0]), np.array([0, 1]), num_classes=3)
        assert value == pytest.approx(0.5)

    def test_invalid(self):
        with pytest.raises(ValueError, match="matching"):
            accuracy(self.SCORES, self.LABELS[:3])
        with pytest.raises(ValueError, match="empty"):
            accuracy(np.zeros(0, int), np.zeros(0, int))
        with pytest.raises(ValueError, match="num_classes"):
            mean_class_accuracy(np.array([0]), np.array([4]), num_classes=3)


def box_target(labels, boxes, difficult=None):
    labels = np.asarray(labels, dtype=np.int64)
    return {
        "labels": labels,
        "boxes": np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        "difficult": np.zeros(labels.size, bool) if difficult is None else np.asarray(difficult, bool),
    }


BOX = [10.0, 10.0, 20.0, 20.0]


class TestPointHitsBox:
    @pytest.mark.parametrize(
        ("point", "square", "disk"),
        [
            ((15, 15), True, True),  # inside
            ((38, 15), True, True),  # 18 px right of xmax: on the border
            ((38.01, 15), False, False),  # just past it
            ((-8, 15), True, True),  # 18 px left of xmin
            ((15, 38), True, True),  # 18 px below ymax
            ((38, 38), True, False),  # corner of the square: disk distance 18 * sqrt(2)
        ],
    )
    def test_border(self, point, square, disk):
        points, boxes = np.array([point], float), np.array([BOX])
        assert point_hits_box(points, boxes, 18.0, "square")[0] == square
        assert point_hits_box(points, boxes, 18.0, "disk")[0] == disk

    def test_disk_border_off_axis(self):
        # (29, 32) is (9, 12) px from the corner (20, 20): distance exactly 15.
        boxes = np.array([BOX, BOX])
        hits = point_hits_box(np.array([[29.0, 32.0], [29.0, 32.01]]), boxes, 15.0, "disk")
        np.testing.assert_array_equal(hits, [True, False])

    def test_bad_shape(self):
        with pytest.raises(ValueError, match="tolerance shape"):
            point_hits_box(np.zeros((1, 2)), np.array([BOX]), 18.0, "circle")


class TestPointwiseLocalizationAP:
    def test_hit_exactly_at_border_and_miss_just_past(self):
        boxes = [box_target([0], [BOX])]
        scores = np.array([[0.9]])
        hit, per_class = pointwise_localization_ap(scores, np.array([[[38.0, 15.0]]]), boxes)
        assert hit == 1.0 and per_class.tolist() == [1.0]
        miss, _ = pointwise_localization_ap(scores, np.array([[[38.5, 15.0]]]), boxes)
        assert miss == 0.0

    def test_disk_tolerance(self):
        boxes = [box_target([0], [BOX])]
        corner = np.array([[[38.0, 38.0]]])  # in the enlarged square, 25.5 px from the box
        assert pointwise_localization_ap(np.array([[1.0]]), corner, boxes)[0] == 1.0
        assert pointwise_localization_ap(np.array([[1.0]]), corner, boxes, tolerance_shape="disk")[0] == 0.0

    def test_absent_class_image_is_fp_at_its_score(self):
        # Image 0 has no box of class 0 and the top score: ranked FP, TP (npos = 1)
        # -> precision 1/2 at recall 1 -> AP 1/2. With a lower score it ranks last -> AP 1.
        boxes = [box_target([], []), box_target([0], [BOX])]
        points = np.array([[[15.0, 15.0]], [[15.0, 15.0]]])
        assert pointwise_localization_ap(np.array([[0.9], [0.8]]), points, boxes)[0] == pytest.approx(0.5)
        assert pointwise_localization_ap(np.array([[0.7], [0.8]]), points, boxes)[0] == 1.0

    def test_missed_point_is_fp_and_never_recalled(self):
        # Image 0: class present, point missed, score 0.9 (FP); image 1: hit, score 0.8 (TP);
        # image 2: no class, score 0.1 (FP). npos = 2 (both images with the class).
        #   ranks: FP (prec 0, rec 0), TP (prec 1/2, rec 1/2), FP (prec 1/3, rec 1/2)
        # raw   = 1/2 * 1/2 = 0.25
        # voc12 = envelope 1/2 on (0, 1/2], 0 on (1/2, 1] -> 0.25
        # voc07 = t in {0, ..., .5}: 1/2 (6 thresholds); t > 1/2: no recall -> 0 -> 3 / 11
        boxes = [box_target([0], [BOX]), box_target([0], [BOX]), box_target([], [])]
        points = np.array([[[100.0, 100.0]], [[12.0, 12.0]], [[0.0, 0.0]]])
        scores = np.array([[0.9], [0.8], [0.1]])
        for mode, expected in (("raw", 0.25), ("voc12", 0.25), ("voc07", 3 / 11)):
            value, per_class = pointwise_localization_ap(scores, points, boxes, mode=mode)
            assert value == pytest.approx(expected, abs=1e-12) and per_class[0] == pytest.approx(expected)

    def test_hit_on_any_box_of_the_class_only(self):
        # The point falls in a box of class 1, not in the box of class 0: a miss for class 0.
        boxes = [box_target([0, 1], [BOX, [100, 100, 120, 120]])]
        points = np.array([[[110.0, 110.0], [110.0, 110.0]]])
        _, per_class = pointwise_localization_ap(np.array([[0.9, 0.9]]), points, boxes)
        np.testing.assert_array_equal(per_class, [0.0, 1.0])

    def test_all_difficult_image_is_ignored_by_default(self):
        # Image 0: only a difficult box of class 0, top score, point missed.
        # Ignored -> only image 1 (hit) is ranked -> AP 1.
        # Not ignored -> ranks: FP (missed), TP -> npos 2 -> raw 1/2 * 1/2 = 0.25.
        boxes = [box_target([0], [BOX], [True]), box_target([0], [BOX])]
        points = np.array([[[100.0, 100.0]], [[15.0, 15.0]]])
        scores = np.array([[0.9], [0.5]])
        assert pointwise_localization_ap(scores, points, boxes, mode="raw")[0] == 1.0
        assert pointwise_localization_ap(scores, points, boxes, mode="raw", ignore_difficult=False)[0] == 0.25

    def test_class_without_positive_image_is_nan_and_skipped(self):
        boxes = [box_target([0], [BOX])]
        with pytest.warns(UndefinedMetricWarning):
            value, per_class = pointwise_localization_ap(
                np.array([[0.9, 0.8]]), np.full((1, 2, 2), 15.0), boxes
            )
        assert value == 1.0 and per_class[0] == 1.0 and np.isnan(per_class[1])

    def test_perfect_points_equal_classification_ap(self):
        # Every point hits: localization AP = classification AP (raw) with labels from the boxes.
        rng = np.random.default_rng(0)
        present = rng.random((30, 3)) < 0.4
        present[0] = True
        boxes = [box_target(np.flatnonzero(row), [BOX] * int(row.sum())) for row in present]
        scores = rng.random((30, 3))
        loc, _ = pointwise_localization_ap(scores, np.full((30, 3, 2), 15.0), boxes, mode="raw")
        cls, _ = mean_average_precision(scores, np.where(present, 1, -1), mode="raw")
        assert loc == pytest.approx(cls, abs=1e-12)

    def test_invalid(self):
        boxes = [box_target([0], [BOX])]
        with pytest.raises(ValueError, match=r"\(N, C, 2\)"):
            pointwise_localization_ap(np.array([[0.9]]), np.zeros((1, 2, 2)), boxes)
        with pytest.raises(ValueError, match="one dict per image"):
            pointwise_localization_ap(np.array([[0.9]]), np.zeros((1, 1, 2)), boxes * 2)
        with pytest.raises(ValueError, match="class indices"):
            pointwise_localization_ap(np.array([[0.9]]), np.zeros((1, 1, 2)), [box_target([3], [BOX])])
        with pytest.raises(ValueError, match="xmin <= xmax"):
            flipped = [box_target([0], [[20, 10, 10, 20]])]
            pointwise_localization_ap(np.array([[0.9]]), np.zeros((1, 1, 2)), flipped)


class TestSegmentation:
    def test_confusion_matrix_with_ignore(self):
        target = np.array([[0, 1], [255, 2]])
        pred = np.array([[0, 2], [1, 2]])
        expected = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 1]])
        cm = confusion_matrix(pred, target, 3)
        np.testing.assert_array_equal(cm, expected)
        assert cm.dtype == np.int64

    def test_confusion_prediction_on_ignored_pixel_is_not_checked(self):
        cm = confusion_matrix(np.array([0, 255]), np.array([0, 255]), 2)
        np.testing.assert_array_equal(cm, [[1, 0], [0, 0]])

    def test_confusion_invalid(self):
        with pytest.raises(ValueError, match="target holds"):
            confusion_matrix(np.array([0]), np.array([3]), 3)
        with pytest.raises(ValueError, match="pred holds"):
            confusion_matrix(np.array([5]), np.array([0]), 3)
        with pytest.raises(ValueError, match="same shape"):
            confusion_matrix(np.array([0, 1]), np.array([0]), 3)

    def test_mean_iou_hand_made(self):
        # rows = gt, cols = pred
        # class 0: TP 3, FN 1 (row), FP 1 (column) -> 3 / 5
        # class 1: TP 2, FN 0, FP 1 -> 2 / 3
        # class 2: absent from gt and pred -> NaN, skipped
        # class 3: 1 gt pixel, never predicted -> TP 0 -> IoU 0, counts in the mean
        confusion = np.array([[3, 1, 0, 0], [0, 2, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]])
        value, per_class = mean_iou(confusion)
        np.testing.assert_allclose(per_class[[0, 1, 3]], [3 / 5, 2 / 3, 0.0])
        assert np.isnan(per_class[2])
        assert value == pytest.approx((3 / 5 + 2 / 3 + 0.0) / 3)

    def test_mean_iou_round_trip(self):
        target = np.array([[0, 0, 1], [1, 1, 255]])
        pred = np.array([[0, 1, 1], [1, 1, 0]])
        # class 0: TP 1, FN 1 -> 1/2; class 1: TP 3, FP 1 -> 3/4.
        value, per_class = mean_iou(confusion_matrix(pred, target, 2))
        np.testing.assert_allclose(per_class, [0.5, 0.75])
        assert value == pytest.approx(0.625)

    def test_mean_iou_invalid(self):
        with pytest.raises(ValueError, match="square"):
            mean_iou(np.zeros((2, 3)))


def test_no_stray_warnings_on_clean_input():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean_average_precision(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([[1, -1], [-1, 1]]))


def test_the_package_reexports_every_family():
    """``from wildcat.eval.metrics import X`` and ``metrics.X`` reach the function of its family module."""
    from wildcat.eval import metrics
    from wildcat.eval.metrics import classification, localization, ranking, segmentation

    families = (ranking, classification, localization, segmentation)
    assert sorted(metrics.__all__) == sorted(["UndefinedMetricWarning", *(n for m in families for n in m.__all__)])
    for module in families:
        for name in module.__all__:
            assert getattr(metrics, name) is getattr(module, name)
