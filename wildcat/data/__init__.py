"""Datasets of the WILDCAT paper behind one function, :func:`get_dataset`.

Every dataset returned here follows docs/contracts.md: ``classes``, ``task``, ``targets``,
``load_image`` (PIL), ``load_image_tensor`` (uint8 tensor), ``image_id``, ``boxes_for`` / ``has_boxes``, ``mask_for`` / ``has_masks``.
The loaders are imported lazily, so ``import wildcat.data`` stays cheap (no pycocotools, no torch
import until a dataset is built).

=================  ===========================================  =====================================
name               module                                       splits
=================  ===========================================  =====================================
``synthetic``      :mod:`wildcat.data.voc` (VOC layout)          train, val, test, trainval, seg_*
``voc2007``        :mod:`wildcat.data.voc`                       trainval, test (train, val, seg_*)
``voc2012``        :mod:`wildcat.data.voc`                       train, val (trainval, seg_train,
                                                                 seg_val, train_aug (+ SBD,
                                                                 :mod:`wildcat.data.sbd`); test:
                                                                 images only, evaluation server)
``voc2012_action`` :mod:`wildcat.data.voc`                       train, val (trainval)
``coco2014``       :mod:`wildcat.data.coco`                      train, val (train2014, val2014)
``mit67``          :mod:`wildcat.data.scenes`                    train, test
``scene15``        :mod:`wildcat.data.scenes`                    train, test, train_seed<k>, test_seed<k>
=================  ===========================================  =====================================
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wildcat.errors import WildcatError

__all__ = ["DATASET_NAMES", "DatasetNotFoundError", "UnknownDatasetError", "UnknownSplitError", "DatasetFormatError",
           "DatasetCountWarning", "get_dataset", "download_command"]

#: ``name -> (module, factory)``; the factory is called as ``factory(root, split, transform)``.
_REGISTRY: dict[str, tuple[str, str]] = {
    "synthetic": ("wildcat.data.voc", "synthetic"),
    "voc2007": ("wildcat.data.voc", "voc2007"),
    "voc2012": ("wildcat.data.voc", "voc2012"),
    "voc2012_action": ("wildcat.data.voc", "voc2012_action"),
    "coco2014": ("wildcat.data.coco", "coco2014"),
    "mit67": ("wildcat.data.scenes", "mit67"),
    "scene15": ("wildcat.data.scenes", "scene15"),
}

#: The names :func:`get_dataset` knows, in the order of the paper's tables.
DATASET_NAMES: tuple[str, ...] = tuple(_REGISTRY)


class DatasetNotFoundError(WildcatError, FileNotFoundError):
    """A dataset folder is missing or incomplete. The message is one line: the dataset, the path
    that was expected and the ``wildcat`` command that fixes it."""


class UnknownDatasetError(WildcatError, ValueError):
    """A dataset name that does not exist (the message lists the names that do)."""


class UnknownSplitError(WildcatError, ValueError):
    """A split name the dataset does not have (the message lists the splits that exist)."""


class DatasetFormatError(WildcatError, ValueError):
    """A dataset file on disk does not have the expected content (unknown class, bad mask, ...)."""


class DatasetCountWarning(UserWarning):
    """A split does not have the number of images the paper / devkit gives (a partial or
    different copy of the dataset; harmless for the tiny archives of the tests)."""


#: The (dataset, split, count) already warned about in this process: a split is loaded several
#: times by one command (training, tuning, test), and its warning is one line, once.
_WARNED_COUNTS: set[tuple[str, str, int]] = set()


def check_count(name: str, split: str, count: int) -> None:
    """Warn (:class:`DatasetCountWarning`), once per process, when ``count`` differs from the
    published size of the split."""
    from wildcat.data.sources import EXPECTED_COUNTS

    expected = EXPECTED_COUNTS.get((name, split))
    if expected is not None and expected != count and (name, split, count) not in _WARNED_COUNTS:
        _WARNED_COUNTS.add((name, split, count))
        warnings.warn(f"{name} split {split!r} has {count} images, the published count is {expected}",
                      DatasetCountWarning, stacklevel=3)


def download_command(name: str, root: str | Path) -> str:
    """The command that puts dataset ``name`` under ``root``."""
    if name == "synthetic":
        return f"wildcat make-synthetic --root {root}"
    return f"wildcat download {name} --root {root}"


def dataset_not_found(name: str, root: str | Path, expected: str | Path, what: str = "not found") -> DatasetNotFoundError:
    """Build the one-line error for a missing/incomplete dataset (used by every loader)."""
    return DatasetNotFoundError(f"dataset {name} {what} at {expected}: run `{download_command(name, root)}`")


def get_dataset(name: str, root: str | Path, split: str, transform: Callable[[Any], Any] | None = None):
    """Build dataset ``name`` from the data folder ``root`` (the ``--root`` of ``wildcat download``).

    Args:
        name: one of :data:`DATASET_NAMES`.
        root: the data folder.
        split: a split name of that dataset (see the module docstring).
        transform: applied to the PIL RGB image in ``__getitem__``; None returns the PIL image.

    Returns:
        A ``torch.utils.data.Dataset`` following docs/contracts.md.

    Raises:
        UnknownDatasetError, UnknownSplitError (both ``ValueError``): unknown dataset / split name.
        DatasetNotFoundError: the dataset is not (completely) under ``root``.
    """
    if name not in _REGISTRY:
        raise UnknownDatasetError(f"unknown dataset {name!r}: choose one of {', '.join(DATASET_NAMES)}")
    module_name, factory_name = _REGISTRY[name]
    factory = getattr(importlib.import_module(module_name), factory_name)
    return factory(root, split, transform)
