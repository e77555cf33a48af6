"""PASCAL VOC-layout datasets: ``voc2007``, ``voc2012``, ``voc2012_action`` and ``synthetic``.

All four read the devkit layout ``<root>/VOCdevkit/<VOCxxxx>/``::

    JPEGImages/<id>.jpg               images
    Annotations/<id>.xml              objects: name, bndbox (1-based pixels), difficult
    SegmentationClass/<id>.png        palette PNG: 0 background, c + 1 class c, 255 void
    ImageSets/Main/<split>.txt        image ids of a classification split
    ImageSets/Main/<class>_<split>.txt  "<id> <label>", label 1 / -1 / 0 (0: only difficult objects)
    ImageSets/Segmentation/<split>.txt  ids of the images with a SegmentationClass mask
    ImageSets/Action/<action>_<split>.txt  "<id> <person> <label>" (VOC 2012 Action)

The classification targets are the devkit's own per-class lists (``<class>_<split>.txt``):
1 = the class is present, 0 = only "difficult" objects of the class (ignored by the VOC AP),
-1 = absent. This is what the devkit's evaluation and the official WILDCAT code
(durandtibo/wildcat.pytorch, ``voc.py``: ``read_object_labels``) use.

XML files are parsed with torchvision's ``VOCDetection.parse_voc_xml`` (a static method, so the
``year`` check of torchvision's VOC classes does not get in the way of ``VOCsynthetic``).

Segmentation masks (``mask_for``): in a classification split ``s`` an image has a mask when its id
is listed in ``ImageSets/Segmentation/s.txt`` (same split name), otherwise ``mask_for`` returns
None. Requiring the same split name keeps a mask of the segmentation *val* set from being used
while tuning on a classification *train* image. ``seg_<s>`` splits iterate over exactly the
images of ``ImageSets/Segmentation/<s>.txt`` (VOC 2012 ``seg_val``: the 1,449 images of the
paper's Table 9) and take their targets from the XML annotations with the same 1 / 0 / -1 rule.

Two ``voc2012`` splits are not lists of the devkit:

* ``train_aug``: the 10,582 images of WILDCAT's segmentation model (Table 9), built from the
  VOC 2012 segmentation lists and SBD (:mod:`wildcat.data.sbd`; needs ``wildcat download sbd``).
  Image labels from the XML, **difficult objects included** (1 when the image has any object of
  the class, else -1; no 0), as jiwoon-ahn/irn's ``load_image_label_list_from_xml``. Masks: only
  the VOC segmentation-train masks (``mask_for``); SBD's ``.mat`` masks are not read.
* ``test``: the VOC 2012 test images, when ``VOC2012test.tar`` (from the evaluation server, after
  registering) has been extracted into the same tree (``ImageSets/Main/test.txt``). Labels are
  unknown: ``targets`` are all 0 (ignored) and ``labels_known`` is False; use it to write the
  server's files (:mod:`wildcat.eval.submission`), never to compute a metric.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torchvision.datasets import VOCDetection

from wildcat.data import DatasetFormatError, UnknownSplitError, check_count, dataset_not_found
from wildcat.data.base import ImageDataset
from wildcat.data.synthetic.spec import MODALITIES

__all__ = [
    "VOC_CLASSES",
    "VOC_ACTION_CLASSES",
    "VOCDataset",
    "VOCActionDataset",
    "voc2007",
    "voc2012",
    "voc2012_action",
    "synthetic",
    "dataset_design",
    "read_classes_txt",
]

#: The 20 VOC classes in the devkit's order (``VOCinit.m``: ``VOCopts.classes``), which is also
#: the order of the SegmentationClass indices 1..20.
VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)

#: The 10 VOC 2012 action classes in the devkit's order (``VOCopts.actions`` without "other",
#: which WELDON's protocol and the challenge's evaluation skip).
VOC_ACTION_CLASSES: tuple[str, ...] = (
    "jumping", "phoning", "playinginstrument", "reading", "ridingbike", "ridinghorse", "running",
    "takingphoto", "usingcomputer", "walking",
)

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: Parsed annotation files a dataset keeps (:meth:`VOCDataset.annotation`).
_ANNOTATIONS_KEPT = 64

#: Splits a complete copy of each dataset has: a missing list of one of these means an
#: incomplete download (DatasetNotFoundError), not a wrong split name.
_KNOWN_SPLITS: dict[str, tuple[str, ...]] = {
    "voc2007": ("train", "val", "trainval", "test"),
    "voc2012": ("train", "val", "trainval"),
    "voc2012_action": ("train", "val", "trainval"),
    "synthetic": ("train", "val", "test", "trainval"),
}


def _read_lines(path: Path) -> list[list[str]]:
    """Whitespace-split non-empty lines of a devkit list file."""
    with open(path, encoding="utf-8") as handle:
        return [line.split() for line in handle if line.strip()]


def read_classes_txt(path: str | Path) -> list[str]:
    """The class list of a VOC-layout tree: one class per line, in index order."""
    classes = [row[0] for row in _read_lines(Path(path))]
    if len(set(classes)) != len(classes):
        raise DatasetFormatError(f"{path} lists a class twice: {classes}")
    return classes


def parse_annotation(path: str | Path) -> dict[str, Any]:
    """The ``annotation`` dict of a VOC XML file (torchvision's parser; ``object`` is a list)."""
    return VOCDetection.parse_voc_xml(ET.parse(path).getroot())["annotation"]


class VOCDataset(ImageDataset):
    """A multi-label dataset in the VOC devkit layout (see the module docstring).

    Args:
        name: the dataset name used in error messages (``voc2007``, ``synthetic``, ...).
        root: the data folder (the ``--root`` of ``wildcat download``).
        voc_dir: ``<root>/VOCdevkit/<VOCxxxx>``.
        split: a list name of ``ImageSets/Main`` (``train``, ``val``, ``trainval``, ``test``) or
            ``seg_<s>`` for the list ``ImageSets/Segmentation/<s>.txt``. ``trainval`` is the
            concatenation of ``train`` and ``val`` when the tree has no ``trainval`` lists.
        classes: the class names, in index order.
        transform: applied to the PIL RGB image in ``__getitem__``.
        modality_names: the values of the objects' ``<modality>`` tag that :meth:`modalities_for`
            numbers (the synthetic set: ``single``, ``pair``; docs/synthetic.md); empty: the tag is
            not read and every object has modality -1.

    Attributes:
        classes: ``list[str]``; ``task`` = ``"multilabel"``; ``targets``: ``(N, C)`` int8 of
            1 / 0 / -1; ``ids``: the image ids in list order.
    """

    task = "multilabel"
    has_boxes = True
    #: False for a split whose labels are not public (VOC 2012 ``test``: targets all 0).
    labels_known = True

    def __init__(self, name: str, root: str | Path, voc_dir: str | Path, split: str, classes,
                 transform: Callable[[Any], Any] | None = None, modality_names: Sequence[str] = ()) -> None:
        self.name = name
        self.modality_names = tuple(modality_names)
        self.root = Path(root)
        self.voc_dir = self.extracted_dir = Path(voc_dir)
        self.split = split
        self.classes = list(classes)
        self.transform = transform
        self._annotations: dict[int, dict[str, Any]] = {}
        self._check_folder()

        if split.startswith("seg_"):
            base = split[len("seg_"):]
            self.ids = self._read_ids("Segmentation", base)
            self.targets = self._targets_from_xml()
            self._mask_ids = set(self.ids)
        elif name == "voc2012" and split == "train_aug":
            from wildcat.data.sbd import train_aug_ids

            self.ids = train_aug_ids(self.root, self.voc_dir)
            self.targets = self._targets_from_xml(difficult_is_positive=True)
            self._mask_ids = set(self._read_ids("Segmentation", "train"))  # VOC masks only, never seg val
        elif name == "voc2012" and split == "test" and self._list_path("Main", "test") is not None:
            self.ids = self._read_ids("Main", "test")
            self.targets = np.zeros((len(self.ids), len(self.classes)), dtype=np.int8)  # unknown: all ignored
            self.labels_known = False
            self.has_boxes = False
            self._mask_ids = set()
        else:
            self.ids = self._read_ids("Main", split)
            self.targets = self._targets_from_class_lists(split)
            has_seg_list = self._has_list("Segmentation", split)
            self._mask_ids = set(self._read_ids("Segmentation", split)) if has_seg_list else set()
        self._mask_ids &= set(self.ids)
        self.has_masks = bool(self._mask_ids) and (self.voc_dir / "SegmentationClass").is_dir()
        if not self.has_masks:
            self._mask_ids = set()
        self._image_paths = self._find_images()
        check_count(self.name, split, len(self.ids))

    # -- checks and list files ---------------------------------------------------------------
    def _check_folder(self) -> None:
        from wildcat.data.download import interrupted_extractions

        if not self.voc_dir.is_dir():
            raise dataset_not_found(self.name, self.root, self.voc_dir)
        for sub in ("JPEGImages", "Annotations", "ImageSets"):
            if not (self.voc_dir / sub).is_dir():
                raise dataset_not_found(self.name, self.root, self.voc_dir / sub, "is incomplete: no folder")
        interrupted = interrupted_extractions(self.name, self.root)
        if interrupted:
            raise dataset_not_found(self.name, self.root, self.voc_dir,
                                    f"is incomplete (extraction of {interrupted[0]} was interrupted)")

    def _list_path(self, task_folder: str, stem: str) -> Path | None:
        path = self.voc_dir / "ImageSets" / task_folder / f"{stem}.txt"
        return path if path.is_file() else None

    def _has_list(self, task_folder: str, stem: str) -> bool:
        """Whether ``_read_rows(task_folder, stem)`` would find a list (or the train + val pair)."""
        if self._list_path(task_folder, stem) is not None:
            return True
        return "trainval" in stem and all(self._list_path(task_folder, stem.replace("trainval", part)) is not None
                                          for part in ("train", "val"))

    def _read_rows(self, task_folder: str, stem: str) -> list[list[str]]:
        """Rows of ``ImageSets/<task_folder>/<stem>.txt``; ``*trainval*`` falls back to the
        concatenation of the ``train`` and ``val`` lists."""
        path = self._list_path(task_folder, stem)
        if path is not None:
            return _read_lines(path)
        if "trainval" in stem:
            parts = [self._list_path(task_folder, stem.replace("trainval", part)) for part in ("train", "val")]
            if all(p is not None for p in parts):
                return _read_lines(parts[0]) + _read_lines(parts[1])
        raise self._missing_list(task_folder, stem)

    def _missing_list(self, task_folder: str, stem: str) -> Exception:
        """The error for a missing list: an unknown split, VOC 2012 test, or an incomplete tree."""
        expected = self.voc_dir / "ImageSets" / task_folder / f"{stem}.txt"
        split = self.split[len("seg_"):] if self.split.startswith("seg_") else self.split
        if self.name in ("voc2012", "voc2012_action") and split == "test":
            hint = (" (or extract VOC2012test.tar from the server into the root to get split 'test' with unknown "
                    "labels, for wildcat.eval.submission)") if self.name == "voc2012" else ""
            return UnknownSplitError(f"{self.name} has no test labels on disk ({expected}): VOC 2012 test is scored "
                                     f"only by the PASCAL evaluation server; use split 'val'{hint}")
        folder = self.voc_dir / "ImageSets" / task_folder
        found = sorted(p.stem for p in folder.glob("*.txt") if "_" not in p.stem) if folder.is_dir() else []
        if stem == split and split not in _KNOWN_SPLITS.get(self.name, ()) and found:
            extra = "; also train_aug (VOC 2012 + SBD)" if self.name == "voc2012" else ""
            return UnknownSplitError(f"{self.name} has no split {self.split!r} (no {expected}); lists found: "
                                     f"{', '.join(found)}{extra}")
        return dataset_not_found(self.name, self.root, expected, "is incomplete: no list")

    def _read_ids(self, task_folder: str, stem: str) -> list[str]:
        ids, seen = [], set()
        for row in self._read_rows(task_folder, stem):
            if row[0] not in seen:  # Action lists may name an image once per person
                seen.add(row[0])
                ids.append(row[0])
        return ids

    def _find_images(self) -> list[Path]:
        folder = self.voc_dir / "JPEGImages"
        paths, missing = [], []
        for image_id in self.ids:
            for suffix in _IMAGE_SUFFIXES:
                path = folder / f"{image_id}{suffix}"
                if path.is_file():
                    paths.append(path)
                    break
            else:
                missing.append(image_id)
        if missing:
            raise dataset_not_found(self.name, self.root, folder,
                                    f"is incomplete ({len(missing)} of {len(self.ids)} images of split "
                                    f"{self.split!r} missing, e.g. {missing[0]}.jpg)")
        return paths

    # -- targets ------------------------------------------------------------------------------
    def _targets_from_class_lists(self, stem: str) -> np.ndarray:
        index = {image_id: i for i, image_id in enumerate(self.ids)}
        targets = np.zeros((len(self.ids), len(self.classes)), dtype=np.int8)
        for c, name in enumerate(self.classes):
            labels = {row[0]: int(row[-1]) for row in self._read_rows("Main", f"{name}_{stem}")}
            missing = [image_id for image_id in self.ids if image_id not in labels]
            if missing:
                raise dataset_not_found(self.name, self.root, self.voc_dir / "ImageSets" / "Main" / f"{name}_{stem}.txt",
                                        f"is incomplete (no label for image {missing[0]})")
            for image_id, label in labels.items():
                if image_id in index:
                    targets[index[image_id], c] = np.sign(label)
        return targets

    def _targets_from_xml(self, difficult_is_positive: bool = False) -> np.ndarray:
        """1 / 0 (only difficult objects) / -1 from the XML objects; with ``difficult_is_positive``
        a difficult object counts as any other (1 / -1)."""
        targets = np.full((len(self.ids), len(self.classes)), -1, dtype=np.int8)
        for i in range(len(self.ids)):
            boxes = self.boxes_for(i)
            for label, difficult in zip(boxes["labels"], boxes["difficult"]):
                positive = difficult_is_positive or not difficult
                targets[i, label] = max(targets[i, label], 1 if positive else 0)
        return targets

    # -- the dataset interface (len, image_id, load_image, __getitem__: ImageDataset) ---------
    def annotation(self, index: int) -> dict[str, Any]:
        """The parsed XML of image ``index``. The last :data:`_ANNOTATIONS_KEPT` parsed files are
        kept (the methods that read one image's objects parse its file once), not every file of
        the split: a pass over a large test split (the localization metrics) would otherwise hold
        all of them, many times the memory that its metrics need (benchmarks/eval_memory.py)."""
        if index not in self._annotations:
            path = self.voc_dir / "Annotations" / f"{self.ids[index]}.xml"
            if not path.is_file():
                raise dataset_not_found(self.name, self.root, path, "is incomplete: no annotation")
            try:
                parsed = parse_annotation(path)
            except ET.ParseError as error:
                raise self.damaged_file(path, f"not a well-formed XML file ({error})") from None
            if len(self._annotations) >= _ANNOTATIONS_KEPT:
                del self._annotations[next(iter(self._annotations))]  # the oldest (dicts keep insertion order)
            self._annotations[index] = parsed
        return self._annotations[index]

    def boxes_for(self, index: int) -> dict[str, np.ndarray]:
        """Objects of image ``index``: ``labels (K,) int64``, ``boxes (K, 4) float64`` (xmin, ymin,
        xmax, ymax as written in the XML, 1-based), ``difficult (K,) bool``."""
        labels, boxes, difficult = [], [], []
        path = self.voc_dir / "Annotations" / f"{self.ids[index]}.xml"
        for obj in self.annotation(index).get("object", []):
            name = obj["name"]
            if name not in self.classes:
                raise DatasetFormatError(f"{path}: object class {name!r} is not one of the {len(self.classes)} "
                                         f"classes of {self.name}")
            box = obj["bndbox"]
            labels.append(self.classes.index(name))
            boxes.append([float(box[k]) for k in ("xmin", "ymin", "xmax", "ymax")])
            difficult.append(str(obj.get("difficult", "0")).strip() == "1")
        return _box_dict(labels, boxes, difficult)

    def modalities_for(self, index: int) -> np.ndarray:
        """``(K,) int64``: the index in :attr:`modality_names` of each object's ``<modality>`` tag, in
        :meth:`boxes_for`'s order; -1 for an object without the tag, or every object when the
        dataset names no modalities. A value not in :attr:`modality_names` raises DatasetFormatError."""
        if not self.modality_names:
            return super().modalities_for(index)
        modalities = []
        for obj in self.annotation(index).get("object", []):
            value = str(obj.get("modality", "")).strip()
            if value and value not in self.modality_names:
                path = self.voc_dir / "Annotations" / f"{self.ids[index]}.xml"
                raise DatasetFormatError(f"{path}: object modality {value!r} is not one of "
                                         f"{', '.join(self.modality_names)}")
            modalities.append(self.modality_names.index(value) if value else -1)
        return np.asarray(modalities, dtype=np.int64)

    def mask_for(self, index: int) -> np.ndarray | None:
        """``(H, W) uint8`` mask (0 background, c + 1 class c, 255 void) or None (see module doc).
        A mask of another size than its image, or with another value, raises DatasetFormatError."""
        image_id = self.ids[index]
        if image_id not in self._mask_ids:
            return None
        path = self.voc_dir / "SegmentationClass" / f"{image_id}.png"
        if not path.is_file():
            raise dataset_not_found(self.name, self.root, path, "is incomplete: no mask")
        with self.open_image(self._image_paths[index]) as image:
            image_size = image.size  # the header only
        with self.open_image(path) as mask:
            if mask.mode not in ("P", "L"):
                raise DatasetFormatError(f"{path}: a class mask must be a palette or grayscale PNG, not mode {mask.mode}")
            if mask.size != image_size:
                raise self.damaged_file(path, f"the mask is {mask.size[0]}x{mask.size[1]} pixels but its image "
                                              f"{self._image_paths[index]} is {image_size[0]}x{image_size[1]}")
            pixels = np.array(mask, dtype=np.uint8)
        unknown = (pixels > len(self.classes)) & (pixels != 255)
        if unknown.any():
            raise self.damaged_file(path, f"mask value {pixels[unknown][0]} is no class id (0 background, "
                                          f"1..{len(self.classes)} the classes of {self.name}, 255 void)")
        return pixels

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}, split={self.split!r}, {len(self)} images, {len(self.classes)} classes)"


def _box_dict(labels, boxes, difficult) -> dict[str, np.ndarray]:
    return {
        "labels": np.asarray(labels, dtype=np.int64).reshape(-1),
        "boxes": np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        "difficult": np.asarray(difficult, dtype=bool).reshape(-1),
    }


class VOCActionDataset(VOCDataset):
    """VOC 2012 Action as whole-image multi-label classification (WELDON's protocol).

    Durand et al., WELDON (CVPR 2016), supplementary material Sec. 4, followed by WILDCAT:
    "Bounding boxes are not used during training or testing"; train on ``train``, test on
    ``val``, mAP over the 10 action classes ("other" skipped).

    The devkit lists actions per person: ``ImageSets/Action/<action>_<split>.txt`` has lines
    ``<image id> <person index> <label>`` with label 1 / -1 (0 = ignored, as in the devkit's
    ``VOCevalaction``). Image-level label (our derivation; WELDON does not spell it out): 1 if any
    person of the image is labelled 1; 0 (ignored) if none is 1 and some person is 0; else -1.
    The images are those of ``ImageSets/Action/<split>.txt`` (WILDCAT supplementary Table 1:
    2,296 train / 2,292 test images).

    ``boxes_for`` gives the person boxes with one row per (person, action it does) from the XML
    ``<actions>`` tags, for inspection; the protocol does not use them. No masks.
    """

    def __init__(self, root: str | Path, voc_dir: str | Path, split: str,
                 transform: Callable[[Any], Any] | None = None) -> None:
        if split.startswith("seg_"):
            raise UnknownSplitError(f"voc2012_action has no split {split!r}: use train, val or trainval")
        if split == "test":
            raise UnknownSplitError("voc2012_action has no test labels on disk: VOC 2012 test is scored only by the PASCAL "
                             "evaluation server; WELDON/WILDCAT test on 'val'")
        self.name, self.root, self.voc_dir, self.split = "voc2012_action", Path(root), Path(voc_dir), split
        self.extracted_dir = self.voc_dir
        self.classes = list(VOC_ACTION_CLASSES)
        self.transform = transform
        self._annotations = {}
        self._check_folder()
        self.ids = self._read_ids("Action", split)
        index = {image_id: i for i, image_id in enumerate(self.ids)}
        targets = np.full((len(self.ids), len(self.classes)), -1, dtype=np.int8)
        seen = np.zeros_like(targets, dtype=bool)
        for c, action in enumerate(self.classes):
            for row in self._read_rows("Action", f"{action}_{split}"):
                i = index.get(row[0])
                if i is None:
                    continue
                label = int(row[-1])
                seen[i, c] = True
                if label == 1:
                    targets[i, c] = 1
                elif label == 0 and targets[i, c] != 1:
                    targets[i, c] = 0
        if not seen.any(axis=1).all():
            first = self.ids[int(np.flatnonzero(~seen.any(axis=1))[0])]
            raise dataset_not_found(self.name, self.root, self.voc_dir / "ImageSets" / "Action",
                                    f"is incomplete (no action label for image {first})")
        self.targets = targets
        self._mask_ids = set()
        self.has_masks = False
        self._image_paths = self._find_images()
        check_count(self.name, split, len(self.ids))

    def boxes_for(self, index: int) -> dict[str, np.ndarray]:
        labels, boxes, difficult = [], [], []
        for obj in self.annotation(index).get("object", []):
            actions = obj.get("actions")
            if not isinstance(actions, dict) or "bndbox" not in obj:
                continue
            box = [float(obj["bndbox"][k]) for k in ("xmin", "ymin", "xmax", "ymax")]
            for c, action in enumerate(self.classes):
                if str(actions.get(action, "0")).strip() == "1":
                    labels.append(c)
                    boxes.append(box)
                    difficult.append(str(obj.get("difficult", "0")).strip() == "1")
        return _box_dict(labels, boxes, difficult)

    def mask_for(self, index: int) -> None:
        return None


def _voc_dir(root: str | Path, folder: str) -> Path:
    return Path(root) / "VOCdevkit" / folder


def voc2007(root, split, transform=None) -> VOCDataset:
    """PASCAL VOC 2007: train on ``trainval`` (5,011 images), test on ``test`` (4,952)."""
    return VOCDataset("voc2007", root, _voc_dir(root, "VOC2007"), split, VOC_CLASSES, transform)


def voc2012(root, split, transform=None) -> VOCDataset:
    """PASCAL VOC 2012: classification ``train`` (5,717) / ``val`` (5,823); ``seg_val`` (1,449
    images with masks); ``train_aug`` (10,582, needs SBD); ``test`` (unknown labels, only when the
    test images from the evaluation server are extracted; see the module docstring)."""
    return VOCDataset("voc2012", root, _voc_dir(root, "VOC2012"), split, VOC_CLASSES, transform)


def voc2012_action(root, split, transform=None) -> VOCActionDataset:
    """PASCAL VOC 2012 Action, image-level (see :class:`VOCActionDataset`)."""
    return VOCActionDataset(root, _voc_dir(root, "VOC2012"), split, transform)


def synthetic(root, split, transform=None) -> VOCDataset:
    """The embedded synthetic dataset at ``<root>/VOCdevkit/VOCsynthetic`` (classes from classes.txt;
    object modalities ``single`` and ``pair``: :meth:`VOCDataset.modalities_for`)."""
    voc_dir = _voc_dir(root, "VOCsynthetic")
    classes_txt = voc_dir / "classes.txt"
    if not classes_txt.is_file():
        what = "is incomplete: no class list" if voc_dir.is_dir() else "not found"
        raise dataset_not_found("synthetic", root, classes_txt if voc_dir.is_dir() else voc_dir, what)
    return VOCDataset("synthetic", root, voc_dir, split, read_classes_txt(classes_txt), transform, MODALITIES)


def dataset_design(dataset: Any) -> dict[str, Any] | None:
    """The class design of a synthetic tree: the ``design`` entry of the ``synthetic.json`` that
    the generator writes beside ``classes.txt`` (:meth:`ClassDesign.to_dict
    <wildcat.data.synthetic.design.ClassDesign.to_dict>`; docs/synthetic.md). Its
    ``shared_pairs`` name the classes built for negative evidence (paper Section 3.3).

    Returns:
        The design, or None for a dataset without one (a real dataset, a tree not written by
        the generator).

    Raises:
        DatasetFormatError: the tree has a ``synthetic.json`` without a readable design.
    """
    voc_dir = getattr(dataset, "voc_dir", None)
    path = None if voc_dir is None else Path(voc_dir) / "synthetic.json"
    if path is None or not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:  # bad JSON or bad UTF-8
        raise dataset.damaged_file(path, f"not valid JSON ({error})") from None
    design = record.get("design") if isinstance(record, dict) else None
    if not isinstance(design, dict) or not isinstance(design.get("shared_pairs"), list):
        raise dataset.damaged_file(path, "no class design with a list of shared_pairs (docs/synthetic.md)")
    return design
