"""Scene datasets, single-label (``task = "multiclass"``, target = class index): ``mit67``, ``scene15``.

MIT Indoor 67 (Quattoni & Torralba, CVPR 2009)::

    ROOT/mit67/Images/<class>/<file>.jpg
    ROOT/mit67/TrainImages.txt   "<class>/<file>.jpg" per line, 5,360 lines (80 per class)
    ROOT/mit67/TestImages.txt    1,340 lines (20 per class)

Splits ``train`` / ``test`` are the official lists. Classes: the folder names of TrainImages.txt
in sorted order, as the official WILDCAT code does (durandtibo/wildcat.pytorch ``mit67.py``,
``find_classes``).

15 Scene (Lazebnik, Schmid, Ponce, CVPR 2006)::

    ROOT/scene15/<class>/<file>.jpg   15 folders, 4,485 grayscale images

No official split: as in WELDON's supplementary material (followed by WILDCAT), 100 random
training images per class, the rest for testing (1,500 / 2,985), several random splits. Split
names carry the seed: ``train`` / ``test`` (seed 0), ``train_seed<k>`` / ``test_seed<k>``. The
split: ``numpy.random.default_rng(seed)``; for each class in :data:`SCENE15_CLASSES` order, a
permutation of the class's files sorted by name; its first 100 are train. Images are converted
to RGB (they are grayscale).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from wildcat.data import DatasetFormatError, UnknownSplitError, check_count, dataset_not_found
from wildcat.data.base import ImageDataset

__all__ = ["SCENE15_CLASSES", "SCENE15_TRAIN_PER_CLASS", "SceneDataset", "MIT67Dataset", "Scene15Dataset",
           "mit67", "scene15", "parse_scene15_split"]

#: The 15 folder names of ``scene_categories.zip`` (as listed by deepmind/dm_nevis
#: ``handlers/scenes15.py``), sorted case-insensitively: our class index order.
SCENE15_CLASSES: tuple[str, ...] = (
    "bedroom", "CALsuburb", "industrial", "kitchen", "livingroom", "MITcoast", "MITforest",
    "MIThighway", "MITinsidecity", "MITmountain", "MITopencountry", "MITstreet", "MITtallbuilding",
    "PARoffice", "store",
)
#: Training images per class (WELDON supplementary Sec. 4; WILDCAT supplementary Table 1: 1,500).
SCENE15_TRAIN_PER_CLASS = 100


class SceneDataset(ImageDataset):
    """A list of ``(path, class index)``; the common part of the scene datasets. ``extracted_dir``:
    the folder of the images that the dataset's image archive provides."""

    task = "multiclass"
    has_boxes = False
    has_masks = False

    def __init__(self, name: str, root: str | Path, split: str, classes, paths: list[Path], labels: list[int],
                 extracted_dir: Path, transform: Callable[[Any], Any] | None = None,
                 ids: list[str] | None = None) -> None:
        self.name, self.root, self.split, self.transform = name, Path(root), split, transform
        self.extracted_dir = extracted_dir
        self.classes = list(classes)
        self._image_paths = list(paths)
        self.targets = np.asarray(labels, dtype=np.int64).reshape(-1)
        self.ids = ids if ids is not None else [p.stem for p in self._image_paths]

    def boxes_for(self, index: int):
        raise NotImplementedError(f"{self.name} has no bounding boxes")

    def mask_for(self, index: int) -> None:
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}, split={self.split!r}, {len(self)} images, {len(self.classes)} classes)"


def _require_not_interrupted(name: str, root: str | Path, folder: Path) -> None:
    from wildcat.data.download import interrupted_extractions

    interrupted = interrupted_extractions(name, root)
    if interrupted:
        raise dataset_not_found(name, root, folder, f"is incomplete (extraction of {interrupted[0]} was interrupted)")


class MIT67Dataset(SceneDataset):
    """MIT Indoor 67 with the official TrainImages.txt / TestImages.txt lists."""

    def __init__(self, root: str | Path, split: str, transform: Callable[[Any], Any] | None = None) -> None:
        lists = {"train": "TrainImages.txt", "test": "TestImages.txt"}
        if split not in lists:
            raise UnknownSplitError(f"mit67 has no split {split!r}: use train or test")
        folder = Path(root) / "mit67"
        if not folder.is_dir():
            raise dataset_not_found("mit67", root, folder)
        _require_not_interrupted("mit67", root, folder)
        for path in (folder / "TrainImages.txt", folder / lists[split], folder / "Images"):
            if not path.exists():
                raise dataset_not_found("mit67", root, path, "is incomplete: no file or folder")
        classes = sorted({line.split("/")[0] for line in _lines(folder / "TrainImages.txt")})
        index = {c: i for i, c in enumerate(classes)}
        entries = _lines(folder / lists[split])
        unknown = [e for e in entries if e.split("/")[0] not in index]
        if unknown:
            raise DatasetFormatError(f"{folder / lists[split]}: {unknown[0]!r} is in no class of TrainImages.txt")
        paths = [folder / "Images" / e for e in entries]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise dataset_not_found("mit67", root, folder / "Images",
                                    f"is incomplete ({len(missing)} of {len(paths)} images missing, e.g. {missing[0].name})")
        super().__init__("mit67", root, split, classes, paths, [index[e.split("/")[0]] for e in entries],
                         folder / "Images", transform, ids=[str(Path(e).with_suffix("")) for e in entries])
        check_count("mit67", split, len(self))


def _lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


def parse_scene15_split(split: str) -> tuple[str, int]:
    """``"train"`` -> ``("train", 0)``; ``"test_seed3"`` -> ``("test", 3)``."""
    match = re.fullmatch(r"(train|test)(?:_seed(\d+))?", split)
    if match is None:
        raise UnknownSplitError(f"scene15 has no split {split!r}: use train, test, train_seed<k> or test_seed<k>")
    return match.group(1), int(match.group(2) or 0)


class Scene15Dataset(SceneDataset):
    """15 Scene with a seeded 100-per-class train / rest test split (see the module docstring).

    Args:
        train_per_class: training images per class (100 in the protocol).
    """

    def __init__(self, root: str | Path, split: str, transform: Callable[[Any], Any] | None = None,
                 train_per_class: int = SCENE15_TRAIN_PER_CLASS) -> None:
        part, seed = parse_scene15_split(split)
        folder = Path(root) / "scene15"
        if not folder.is_dir():
            raise dataset_not_found("scene15", root, folder)
        _require_not_interrupted("scene15", root, folder)
        rng = np.random.default_rng(seed)
        paths, labels = [], []
        for c, name in enumerate(SCENE15_CLASSES):
            class_dir = folder / name
            files = sorted(p for p in class_dir.glob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
            if len(files) <= train_per_class:
                raise dataset_not_found("scene15", root, class_dir,
                                        f"is incomplete ({len(files)} images, more than {train_per_class} needed)")
            order = rng.permutation(len(files))
            chosen = np.sort(order[:train_per_class] if part == "train" else order[train_per_class:])
            paths += [files[i] for i in chosen]
            labels += [c] * len(chosen)
        super().__init__("scene15", root, split, SCENE15_CLASSES, paths, labels, folder, transform,
                         ids=[f"{p.parent.name}/{p.stem}" for p in paths])
        self.seed = seed
        check_count("scene15", part, len(self))


def mit67(root, split, transform=None) -> MIT67Dataset:
    """MIT Indoor 67: ``train`` (5,360) / ``test`` (1,340)."""
    return MIT67Dataset(root, split, transform)


def scene15(root, split, transform=None) -> Scene15Dataset:
    """15 Scene: ``train`` / ``test`` (seed 0) or ``train_seed<k>`` / ``test_seed<k>``."""
    return Scene15Dataset(root, split, transform)
