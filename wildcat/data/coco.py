"""MS COCO 2014 as 80-class multi-label classification (WILDCAT Table 4 and Table 8).

Layout (``wildcat download coco2014 --root ROOT``)::

    ROOT/coco2014/train2014/COCO_train2014_*.jpg       82,783 images
    ROOT/coco2014/val2014/COCO_val2014_*.jpg           40,504 images
    ROOT/coco2014/annotations/instances_{train,val}2014.json

Splits ``train`` (= ``train2014``) and ``val`` (= ``val2014``): the paper trains on train2014
and tests on val2014 (Oquab et al. CVPR 2015 protocol; supplementary Table 1 counts). All images
of the split are used, also those without any annotation (all classes -1), which is what makes
the published counts.

Decisions (documented in docs/datasets.md):

* classes: the 80 category names in increasing category id (``instances_*.json`` ``categories``);
* target: 1 if the image has at least one instance of the class, crowd annotations
  (``iscrowd = 1``) included; -1 otherwise (COCO has no "difficult" label: no 0);
* ``boxes_for``: every instance, ``bbox`` converted from COCO's ``[x, y, width, height]``
  (0-based floating-point pixels) to ``[xmin, ymin, xmax, ymax] = [x, y, x + w, y + h]``;
  ``difficult`` is ``iscrowd`` so that localization code can drop crowd boxes or not;
* no segmentation masks here (``has_masks = False``).

Annotations are read with pycocotools (``COCO``), not parsed by hand.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from wildcat.data import UnknownSplitError, check_count, dataset_not_found
from wildcat.data.base import ImageDataset

__all__ = ["COCODataset", "coco2014"]

_SPLITS = {"train": "train2014", "train2014": "train2014", "val": "val2014", "val2014": "val2014"}


class COCODataset(ImageDataset):
    """COCO 2014 multi-label classification with boxes (see the module docstring).

    Args:
        root: the data folder (``--root`` of ``wildcat download``).
        split: ``train`` / ``val`` (or ``train2014`` / ``val2014``).
        transform: applied to the PIL RGB image in ``__getitem__``.
    """

    task = "multilabel"
    has_boxes = True
    has_masks = False

    def __init__(self, root: str | Path, split: str, transform: Callable[[Any], Any] | None = None) -> None:
        if split not in _SPLITS:
            raise UnknownSplitError(f"coco2014 has no split {split!r}: use train or val (test2014 has no public labels)")
        self.name, self.root, self.split, self.transform = "coco2014", Path(root), split, transform
        folder = self.root / "coco2014"
        year_split = _SPLITS[split]
        self.image_dir = self.extracted_dir = folder / year_split  # all that train2014.zip / val2014.zip provides
        annotation_file = folder / "annotations" / f"instances_{year_split}.json"
        if not folder.is_dir():
            raise dataset_not_found(self.name, root, folder)
        from wildcat.data.download import interrupted_extractions

        interrupted = interrupted_extractions(self.name, root)
        if interrupted:
            raise dataset_not_found(self.name, root, folder, f"is incomplete (extraction of {interrupted[0]} was interrupted)")
        for path in (annotation_file, self.image_dir):
            if not path.exists():
                raise dataset_not_found(self.name, root, path, "is incomplete: no file or folder")

        from pycocotools.coco import COCO

        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress on stdout
            self.coco = COCO(str(annotation_file))
        self.category_ids = sorted(self.coco.getCatIds())
        self.classes = [self.coco.cats[c]["name"] for c in self.category_ids]
        self._class_index = {c: i for i, c in enumerate(self.category_ids)}
        self.image_ids = sorted(self.coco.getImgIds())
        self.ids = [Path(self.coco.imgs[i]["file_name"]).stem for i in self.image_ids]
        index = {image_id: i for i, image_id in enumerate(self.image_ids)}
        targets = np.full((len(self.image_ids), len(self.classes)), -1, dtype=np.int8)
        for annotation in self.coco.dataset.get("annotations", []):
            targets[index[annotation["image_id"]], self._class_index[annotation["category_id"]]] = 1
        self.targets = targets
        self._image_paths = [self.image_dir / self.coco.imgs[i]["file_name"] for i in self.image_ids]
        missing = [p for p in self._image_paths if not p.is_file()]
        if missing:
            raise dataset_not_found(self.name, root, self.image_dir,
                                    f"is incomplete ({len(missing)} of {len(self._image_paths)} images missing, e.g. {missing[0].name})")
        check_count(self.name, year_split[: -len("2014")], len(self.image_ids))

    def boxes_for(self, index: int) -> dict[str, np.ndarray]:
        """Instances of image ``index``: ``labels (K,) int64``, ``boxes (K, 4) float64``
        ``[x, y, x + w, y + h]`` in 0-based pixels, ``difficult (K,) bool`` (= ``iscrowd``)."""
        annotations = self.coco.imgToAnns.get(self.image_ids[index], [])
        labels = [self._class_index[a["category_id"]] for a in annotations]
        boxes = [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                 for a in annotations]
        crowd = [bool(a.get("iscrowd", 0)) for a in annotations]
        return {
            "labels": np.asarray(labels, dtype=np.int64).reshape(-1),
            "boxes": np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
            "difficult": np.asarray(crowd, dtype=bool).reshape(-1),
        }

    def mask_for(self, index: int) -> None:
        return None

    def __repr__(self) -> str:
        return f"COCODataset(coco2014, split={self.split!r}, {len(self)} images, {len(self.classes)} classes)"


def coco2014(root, split, transform=None) -> COCODataset:
    """MS COCO 2014: ``train`` (train2014) / ``val`` (val2014), 80 classes."""
    return COCODataset(root, split, transform)
