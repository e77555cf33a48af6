"""Evaluation metrics of the WILDCAT paper (Durand et al., CVPR 2017), on numpy arrays.

Pure functions in scikit-learn's style: inputs are validated, edge cases are documented, values
are fractions in ``[0, 1]``; :mod:`wildcat.eval.evaluate` multiplies them by 100 (rounded to
4 decimals) when it writes ``metrics.json``, and the report reads those percentages as they are.
One module per metric family, every public name importable from here:

* :mod:`~wildcat.eval.metrics.ranking`, classification of multi-label sets (Tables 2 and 4):
  :func:`average_precision`, :func:`mean_average_precision` (PASCAL VOC devkit AP, 11-point or
  all-point interpolated, or non-interpolated: :data:`APMode`);
* :mod:`~wildcat.eval.metrics.classification`, single-label sets (15 Scene, MIT67: Table 3):
  :func:`accuracy`, :func:`per_class_accuracy`, :func:`mean_class_accuracy`;
* :mod:`~wildcat.eval.metrics.localization`, pointwise localization (Table 8):
  :func:`pointwise_localization_ap`, the point-based metric of Oquab et al. (CVPR 2015), and
  :func:`point_hits_box`;
* :mod:`~wildcat.eval.metrics.segmentation` (Table 9): :func:`confusion_matrix`, :func:`mean_iou`.

A mean over classes skips the classes whose value is undefined (NaN) with an
:class:`UndefinedMetricWarning` that names them. Label conventions follow ``docs/contracts.md``:
multi-label targets are ``1`` (positive), ``0`` (difficult: ignored) and ``-1`` (negative).
Protocol facts and their sources are in ``docs/protocols.md``; the ones marked "unconfirmed"
there are marked here too.
"""

from __future__ import annotations

from wildcat.eval.metrics._checks import UndefinedMetricWarning
from wildcat.eval.metrics.classification import accuracy, mean_class_accuracy, per_class_accuracy
from wildcat.eval.metrics.localization import point_hits_box, pointwise_localization_ap
from wildcat.eval.metrics.ranking import APMode, average_precision, mean_average_precision
from wildcat.eval.metrics.segmentation import confusion_matrix, mean_iou

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
    "confusion_matrix",
    "mean_iou",
]
