"""``maps.npz``: what ``wildcat evaluate`` keeps of the maps, for the report's figures and the
modality measure (paper Section 3.2, Figures 1, 6, 7). Format in ``docs/contracts.md``.

Two parts, both small whatever the size of the test split:

* the **gallery**: the first :data:`GALLERY_SIZE` test images, in split order, that have objects
  of at least two classes (:func:`gallery_indices`), each with its image, boxes, the class maps
  (after class-wise pooling) of its ground-truth classes, the argmax point of each map and whether
  it hit (the pointwise localization rule of paper Table 8), the argmax and CRF segmentations with
  the tuned background (paper Table 9) and the ground-truth mask;
* the **modalities** (Section 3.2: the ``M`` maps of a class should each fire on one modality):
  for every test object of class ``c``, the peak response inside its box of each of the ``M``
  maps of ``c`` *before* class-wise pooling (:func:`box_peaks`), for the trained model and for the
  same model before training; and a few example objects of each class and modality with those
  ``M`` maps (:func:`example_objects`, :func:`example_window`).

Numpy only: the report (no torch) reads the file with :func:`read_maps`;
:mod:`wildcat.eval.map_recorder` collects it during the evaluation.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from wildcat.errors import WildcatError
from wildcat.eval.metrics.localization import point_hits_box
from wildcat.io import atomic_path

__all__ = [
    "MAPS_FILE",
    "MAPS_SCHEMA",
    "GALLERY_SIZE",
    "EXAMPLES_PER_GROUP",
    "MapsFormatError",
    "GalleryImage",
    "ObjectPeaks",
    "Example",
    "MapsRecord",
    "gallery_indices",
    "region_centres",
    "box_peaks",
    "example_objects",
    "example_window",
    "write_maps",
    "read_maps",
]

MAPS_FILE = "maps.npz"
MAPS_SCHEMA = 1
#: Gallery images: the first ones of the test split with objects of at least two classes.
GALLERY_SIZE = 4
GALLERY_MIN_CLASSES = 2
#: Example objects kept per (class, modality): the first non-difficult ones in split order.
EXAMPLES_PER_GROUP = 2
#: An example's window: its box's longer side times this, centred on the box (clipped to the image).
EXAMPLE_WINDOW_SCALE = 2.0
#: An example's crop is downscaled so that its longer side has at most this many pixels.
EXAMPLE_MAX_PX = 96


class MapsFormatError(WildcatError, ValueError):
    """A ``maps.npz`` that is not the format of docs/contracts.md."""


@dataclass(frozen=True)
class GalleryImage:
    """One gallery image. Boxes and points are in the coordinates of the localization metric
    (:func:`wildcat.eval.evaluate.peak_points`: region centres in original-image pixels; boxes as
    the dataset writes them, 1-based for VOC). ``P`` = the image's ground-truth classes."""

    index: int  # in the test split
    image_id: str
    image: np.ndarray  # (H, W, 3) uint8 RGB
    box_labels: np.ndarray  # (K,) int64 class of each box
    boxes: np.ndarray  # (K, 4) float64 xmin, ymin, xmax, ymax
    classes: np.ndarray  # (P,) int64 the ground-truth classes, ascending
    maps: np.ndarray  # (P, h, w) float16 their class maps (after class-wise pooling)
    points: np.ndarray  # (P, 2) float64 (x, y) of each map's argmax region centre
    hits: np.ndarray  # (P,) bool: the point within the tolerance of a box of its class
    seg_argmax: np.ndarray | None = None  # (H, W) uint8: 0 background, c + 1 class c
    seg_crf: np.ndarray | None = None  # (H, W) uint8, the dense CRF's labels
    mask: np.ndarray | None = None  # (H, W) uint8 ground truth, 255 void


@dataclass(frozen=True)
class ObjectPeaks:
    """Every object of the test split (``O`` rows, in split order, each image's in
    ``boxes_for`` order) and the peak in its box of each of the ``M`` maps of its class."""

    image: np.ndarray  # (O,) int64 index of the object's image in the test split
    label: np.ndarray  # (O,) int64 class
    modality: np.ndarray  # (O,) int64 index into MapsRecord.modality_names, -1 unknown
    difficult: np.ndarray  # (O,) bool
    box: np.ndarray  # (O, 4) float64
    trained: np.ndarray  # (O, M) float32 peaks of the trained model
    untrained: np.ndarray  # (O, M) float32 peaks of the same model before training

    def __len__(self) -> int:
        return len(self.label)


@dataclass(frozen=True)
class Example:
    """An example object for the modality figure: a crop of its image and the ``M`` maps of its
    class on the whole image (trained model). ``window`` is the crop's place in the image, in
    pixel-edge coordinates (``0..W``, ``0..H``; the maps' regions cover the image evenly)."""

    object: int  # row of ObjectPeaks
    crop: np.ndarray  # (h', w', 3) uint8, longer side <= EXAMPLE_MAX_PX
    window: np.ndarray  # (4,) int64 x0, y0, x1, y1
    image_size: np.ndarray  # (2,) int64 W, H
    maps: np.ndarray  # (M, h, w) float16


@dataclass(frozen=True)
class MapsRecord:
    """The content of one ``maps.npz``."""

    classes: tuple[str, ...]
    modality_names: tuple[str, ...]
    num_maps: int
    loc_tolerance_px: float  # the hit rule of the gallery's points
    seg_background: float  # the tuned background of the gallery's segmentations; NaN: none
    gallery: tuple[GalleryImage, ...]
    objects: ObjectPeaks
    examples: tuple[Example, ...]


# ------------------------------------------------------------------------------------------
# The rules: which images and objects, and what is measured on them


def gallery_indices(labels: Iterable[np.ndarray], size: int = GALLERY_SIZE) -> list[int]:
    """The first ``size`` images, in split order, whose boxes (``labels``: the classes of each
    image's boxes, ``boxes_for(i)["labels"]``) have at least two classes (fewer if the split has
    fewer)."""
    chosen: list[int] = []
    for index, image_labels in enumerate(labels):
        if len(chosen) == size:
            break
        if len(np.unique(image_labels)) >= GALLERY_MIN_CLASSES:
            chosen.append(index)
    return chosen


def region_centres(height: int, width: int, image_width: float, image_height: float) -> np.ndarray:
    """``(height * width, 2)`` the ``(x, y)`` centre of each region of an ``height x width`` map,
    row by row, in pixels of a ``image_width x image_height`` image (the map covers the image
    evenly: :func:`wildcat.eval.evaluate.peak_points`)."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return np.stack([(cols.ravel() + 0.5) * image_width / width, (rows.ravel() + 0.5) * image_height / height], axis=1)


def box_peaks(maps: np.ndarray, boxes: np.ndarray, image_width: float, image_height: float) -> np.ndarray:
    """The peak response inside each box of each map.

    "Inside" are the regions whose centre (:func:`region_centres`) lies in the box, border
    included; a box that holds no region centre (smaller than a region) takes the region that
    contains its centre.

    Args:
        maps: ``(M, h, w)`` maps of one image.
        boxes: ``(K, 4)`` boxes ``(xmin, ymin, xmax, ymax)`` in the image's pixels.
        image_width, image_height: the image's size in pixels.

    Returns:
        ``(K, M)`` float32.
    """
    maps = np.asarray(maps, dtype=np.float32)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    num_maps, height, width = maps.shape
    centres = region_centres(height, width, image_width, image_height)
    flat = maps.reshape(num_maps, -1)
    peaks = np.empty((len(boxes), num_maps), np.float32)
    for k, box in enumerate(boxes):
        inside = point_hits_box(centres, np.broadcast_to(box, (len(centres), 4)), 0.0)
        if not inside.any():
            col = min(int((box[0] + box[2]) / 2 * width / image_width), width - 1)
            row = min(int((box[1] + box[3]) / 2 * height / image_height), height - 1)
            inside[row * width + col] = True
        peaks[k] = flat[:, inside].max(axis=1)
    return peaks


def example_objects(labels: np.ndarray, modalities: np.ndarray, difficult: np.ndarray,
                    per_group: int = EXAMPLES_PER_GROUP) -> list[int]:
    """The example objects (rows of :class:`ObjectPeaks`, in split order): for each class and
    modality (-1 too), the first ``per_group`` objects that are not difficult."""
    taken: dict[tuple[int, int], int] = {}
    chosen = []
    for row, (label, modality, hard) in enumerate(zip(labels.tolist(), modalities.tolist(), difficult.tolist())):
        if hard or taken.get((label, modality), 0) >= per_group:
            continue
        taken[(label, modality)] = taken.get((label, modality), 0) + 1
        chosen.append(row)
    return chosen


def example_window(box: np.ndarray, image_width: int, image_height: int) -> np.ndarray:
    """``(4,) int64`` the crop of an example: a square :data:`EXAMPLE_WINDOW_SCALE` times the box's
    longer side, centred on the box, clipped to the image, in pixel-edge coordinates (a 1-based
    box ``xmin..xmax`` covers the pixel edges ``xmin - 1 .. xmax``)."""
    x0, y0, x1, y1 = float(box[0]) - 1, float(box[1]) - 1, float(box[2]), float(box[3])
    half = EXAMPLE_WINDOW_SCALE * max(x1 - x0, y1 - y0) / 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    window = [np.floor(cx - half), np.floor(cy - half), np.ceil(cx + half), np.ceil(cy + half)]
    return np.clip(np.asarray(window), 0, [image_width, image_height, image_width, image_height]).astype(np.int64)


# ------------------------------------------------------------------------------------------
# The file


#: The arrays of a gallery image in the file (``gallery<k>_<name>``), and those it may lack.
_GALLERY_ARRAYS = tuple(f.name for f in dataclasses.fields(GalleryImage) if f.name not in ("index", "image_id"))
_OPTIONAL_GALLERY_ARRAYS = ("seg_argmax", "seg_crf", "mask")


def write_maps(path: str | os.PathLike[str], record: MapsRecord) -> None:
    """Write ``record`` as ``path`` (compressed npz, atomically; keys in docs/contracts.md)."""
    objects = record.objects
    arrays: dict[str, Any] = {
        "schema": np.int64(MAPS_SCHEMA),
        "classes": np.asarray(record.classes, dtype=str),
        "modality_names": np.asarray(record.modality_names, dtype=str),
        "num_maps": np.int64(record.num_maps),
        "loc_tolerance_px": np.float64(record.loc_tolerance_px),
        "seg_background": np.float64(record.seg_background),
        "gallery_index": np.asarray([g.index for g in record.gallery], dtype=np.int64),
        "gallery_id": np.asarray([g.image_id for g in record.gallery], dtype=str),
        **{f"object_{f.name}": getattr(objects, f.name) for f in dataclasses.fields(ObjectPeaks)},
        "example_object": np.asarray([e.object for e in record.examples], dtype=np.int64),
        "example_window": np.asarray([e.window for e in record.examples], dtype=np.int64).reshape(-1, 4),
        "example_image_size": np.asarray([e.image_size for e in record.examples], dtype=np.int64).reshape(-1, 2),
    }
    if record.examples:
        arrays["example_maps"] = np.stack([e.maps for e in record.examples]).astype(np.float16)
    for position, image in enumerate(record.gallery):
        arrays.update({f"gallery{position}_{name}": getattr(image, name) for name in _GALLERY_ARRAYS
                       if getattr(image, name) is not None})
    for position, example in enumerate(record.examples):
        arrays[f"example{position}_crop"] = example.crop
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def read_maps(path: str | os.PathLike[str]) -> MapsRecord:
    """The :class:`MapsRecord` of a ``maps.npz`` (no pickled objects are read).

    Raises:
        MapsFormatError: not a ``maps.npz`` of schema :data:`MAPS_SCHEMA`.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as error:
        raise MapsFormatError(f"{path}: not a readable maps.npz ({error}); delete it and rerun `wildcat evaluate`") from None
    if arrays.get("schema") != MAPS_SCHEMA:
        raise MapsFormatError(f"{path}: expected a maps.npz of schema {MAPS_SCHEMA} (docs/contracts.md), "
                              f"got schema {arrays.get('schema')}; rerun `wildcat evaluate`")
    try:
        gallery = tuple(
            GalleryImage(index=int(index), image_id=str(image_id),
                         **{name: arrays.get(f"gallery{position}_{name}") if name in _OPTIONAL_GALLERY_ARRAYS
                            else arrays[f"gallery{position}_{name}"] for name in _GALLERY_ARRAYS})
            for position, (index, image_id) in enumerate(zip(arrays["gallery_index"], arrays["gallery_id"])))
        objects = ObjectPeaks(**{f.name: arrays[f"object_{f.name}"] for f in dataclasses.fields(ObjectPeaks)})
        examples = tuple(
            Example(object=int(row), crop=arrays[f"example{position}_crop"], window=arrays["example_window"][position],
                    image_size=arrays["example_image_size"][position], maps=arrays["example_maps"][position])
            for position, row in enumerate(arrays["example_object"]))
        return MapsRecord(classes=tuple(arrays["classes"].tolist()), modality_names=tuple(arrays["modality_names"].tolist()),
                          num_maps=int(arrays["num_maps"]), loc_tolerance_px=float(arrays["loc_tolerance_px"]),
                          seg_background=float(arrays["seg_background"]), gallery=gallery, objects=objects,
                          examples=examples)
    except KeyError as error:
        raise MapsFormatError(f"{path}: no array {error} (format in docs/contracts.md); rerun `wildcat evaluate`") from None
