"""Input checks and the NaN-skipping class mean shared by the metric families of :mod:`wildcat.eval.metrics`."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np


class UndefinedMetricWarning(RuntimeWarning):
    """A per-class value is undefined (NaN), e.g. a class without positives, and was skipped.

    Attributes:
        metric: what is undefined, e.g. ``"average precision"``.
        classes: the indices of the classes left out of the mean.
    """

    def __init__(self, message: str, metric: str = "", classes: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.metric = metric
        self.classes = tuple(classes)


def _as_float_array(x: object, name: str, ndim: int) -> np.ndarray:
    """``x`` as a finite float64 array of ``ndim`` dimensions (ValueError otherwise)."""
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
    """``x`` as an int64 array; integral floats (dataset targets are float tensors) are accepted."""
    arr = np.asarray(x)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        integral_floats = np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr))
        if integral_floats and np.all(arr == np.round(arr)):
            return arr.astype(np.int64)
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _check_multilabel_targets(labels: np.ndarray, name: str = "labels") -> None:
    """Multi-label targets must be ``1``, ``0`` or ``-1`` (``docs/contracts.md``)."""
    bad = ~np.isin(labels, (-1, 0, 1))
    if bad.any():
        raise ValueError(
            f"{name} must be 1 (positive), 0 (difficult, ignored) or -1 (negative); "
            f"found {np.unique(labels[bad])[:5].tolist()}"
        )


def _nanmean_with_warning(values: np.ndarray, what: str) -> float:
    """Mean over the non-NaN entries of ``values``; one :class:`UndefinedMetricWarning` names the
    skipped ones (``what`` is its ``metric``). NaN if every entry is NaN."""
    undefined = np.flatnonzero(np.isnan(values))
    if undefined.size:
        message = (f"{what} is undefined for class(es) {undefined.tolist()} (e.g. no positive example); "
                   f"they are skipped in the mean over {values.size - undefined.size} class(es)")
        warnings.warn(UndefinedMetricWarning(message, what, undefined.tolist()), stacklevel=3)
    if undefined.size == values.size:
        return float("nan")
    return float(np.nanmean(values))
