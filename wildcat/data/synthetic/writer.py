"""Writing the synthetic dataset as a PASCAL VOC tree (:func:`make_synthetic`): image ids and
split lists, VOC annotation XML (with the modality and the parts), JPEG images, palette PNG
masks, per-class label files, ``classes.txt`` and ``synthetic.json``.

The layout, the file formats and the rules for keeping or replacing a tree: docs/synthetic.md,
"Annotations", "Layout", "File format" and "Writing, skipping, replacing".
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from wildcat.data.palette import voc_palette
from wildcat.data.synthetic.design import class_design
from wildcat.data.synthetic.render import RenderedObject, render_image
from wildcat.data.synthetic.spec import (
    DATASET_DIR,
    GENERATOR_VERSION,
    MODALITIES,
    SPLITS,
    SyntheticSpec,
    SyntheticSpecError,
)
from wildcat.errors import WildcatError
from wildcat.io import atomic_dir

__all__ = ["image_ids", "segmentation_ids", "make_synthetic"]

_PALETTE = voc_palette()


def image_ids(spec: SyntheticSpec, split: str) -> list[str]:
    """Image ids of ``split``: ``<split>_000001`` ... (VOC 2008+ style ``<prefix>_<number>``)."""
    return [f"{split}_{i + 1:06d}" for i in range(spec.num_images[split])]


def segmentation_ids(spec: SyntheticSpec, split: str) -> list[str]:
    """The ids of ``split`` listed in ``ImageSets/Segmentation``: its first
    ``ceil(segmentation_fraction * n)`` images."""
    ids = image_ids(spec, split)
    return ids[: math.ceil(spec.segmentation_fraction * len(ids))]


def _annotation_xml(image_id: str, size_px: int, objects: Iterable[RenderedObject], classes: tuple[str, ...]) -> str:
    """A VOC annotation file (objects, with their parts in VOC's ``<part>`` syntax)."""
    lines = [
        "<annotation>",
        f"\t<folder>{DATASET_DIR.name}</folder>",
        f"\t<filename>{image_id}.jpg</filename>",
        "\t<source>",
        "\t\t<database>wildcat-bench synthetic</database>",
        f"\t\t<annotation>wildcat.data.synthetic v{GENERATOR_VERSION}</annotation>",
        "\t</source>",
        "\t<size>",
        f"\t\t<width>{size_px}</width>",
        f"\t\t<height>{size_px}</height>",
        "\t\t<depth>3</depth>",
        "\t</size>",
        "\t<segmented>1</segmented>",
    ]

    def bndbox(box: tuple[int, int, int, int], indent: str) -> list[str]:
        return [f"{indent}<bndbox>", f"{indent}\t<xmin>{box[0]}</xmin>", f"{indent}\t<ymin>{box[1]}</ymin>",
                f"{indent}\t<xmax>{box[2]}</xmax>", f"{indent}\t<ymax>{box[3]}</ymax>", f"{indent}</bndbox>"]

    for obj in objects:
        lines += ["\t<object>", f"\t\t<name>{classes[obj.label]}</name>", "\t\t<pose>Unspecified</pose>",
                  "\t\t<truncated>0</truncated>", f"\t\t<difficult>{int(obj.difficult)}</difficult>",
                  f"\t\t<modality>{MODALITIES[obj.modality]}</modality>"]
        lines += bndbox(obj.box, "\t\t")
        for role, _, box in obj.parts:
            lines += ["\t\t<part>", f"\t\t\t<name>{role}</name>", *bndbox(box, "\t\t\t"), "\t\t</part>"]
        lines.append("\t</object>")
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


def _encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of an RGB image, 4:4:4 chroma (docs/synthetic.md, "File format")."""
    buffer = io.BytesIO()
    Image.fromarray(image, "RGB").save(buffer, format="JPEG", quality=quality, subsampling=0)
    return buffer.getvalue()


def _encode_mask_png(mask: np.ndarray) -> bytes:
    """Palette PNG bytes of a class mask, with the VOC colour map."""
    im = Image.fromarray(mask, "L")
    im.putpalette(_PALETTE)
    buffer = io.BytesIO()
    im.save(buffer, format="PNG")
    return buffer.getvalue()


def _voc_label(objects: list[RenderedObject], c: int) -> int:
    """VOC image label of class ``c``: 1 if a non-difficult object, 0 if only difficult ones, else -1."""
    flags = [o.difficult for o in objects if o.label == c]
    if not flags:
        return -1
    return 0 if all(flags) else 1


def _metadata(spec: SyntheticSpec, stats: dict[str, Any]) -> dict[str, Any]:
    """The content of ``synthetic.json``."""
    return {
        "generator": "wildcat.data.synthetic",
        "generator_version": GENERATOR_VERSION,
        "spec": spec.to_dict(),
        "design": class_design(spec.num_classes, spec.num_shared_pairs).to_dict(),
        "modalities": list(MODALITIES),
        "splits": {s: spec.num_images[s] for s in SPLITS},
        "image_format": {"images": "JPEG", "jpeg_quality": spec.jpeg_quality, "chroma_subsampling": "4:4:4",
                         "masks": "PNG, VOC palette"},
        "statistics": stats,
    }


def _is_complete(path: Path, spec: SyntheticSpec) -> bool:
    """Whether ``path`` holds a finished tree of exactly ``spec`` (same generator version)."""
    try:
        meta = json.loads((path / "synthetic.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if meta.get("generator_version") != GENERATOR_VERSION or meta.get("spec") != spec.to_dict():
        return False
    expected = sum(spec.num_images.values())
    try:
        return sum(1 for _ in os.scandir(path / "JPEGImages")) == expected
    except OSError:
        return False


def _write_lists(out: Path, split: str, ids: list[str], segmentation: list[str], classes: tuple[str, ...],
                 rows: np.ndarray) -> None:
    """The split lists of ``split`` (``ImageSets/Main`` and ``ImageSets/Segmentation``) and its
    ``<class>_<split>.txt`` label files (VOC's ``"%s %2d"``; ``rows``: one label row per id)."""
    (out / "ImageSets/Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    (out / "ImageSets/Segmentation" / f"{split}.txt").write_text("".join(f"{i}\n" for i in segmentation),
                                                                 encoding="utf-8")
    for c, name in enumerate(classes):
        (out / "ImageSets/Main" / f"{name}_{split}.txt").write_text(
            "".join(f"{image_id} {label:2d}\n" for image_id, label in zip(ids, rows[:, c])), encoding="utf-8")


def _write_split(out: Path, spec: SyntheticSpec, split: str, classes: tuple[str, ...],
                 bar: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """Draw and write every image of ``split`` (JPEG, mask, XML) and its lists.

    Returns:
        The ``(N, C)`` int8 VOC label rows of its images and the split's statistics.
    """
    ids = image_ids(spec, split)
    rows = np.zeros((len(ids), spec.num_classes), dtype=np.int8)
    stats = {"images": len(ids), "objects": 0, "difficult_objects": 0, "multilabel_images": 0,
             "lone_part_images": 0, "objects_per_class_modality": [[0, 0] for _ in classes]}
    for i, image_id in enumerate(ids):
        r = render_image(spec, split, i)
        (out / "JPEGImages" / f"{image_id}.jpg").write_bytes(_encode_jpeg(r.image, spec.jpeg_quality))
        (out / "SegmentationClass" / f"{image_id}.png").write_bytes(_encode_mask_png(r.mask))
        (out / "Annotations" / f"{image_id}.xml").write_text(
            _annotation_xml(image_id, spec.image_size_px, r.objects, classes), encoding="utf-8")
        objects = list(r.objects)
        rows[i] = [_voc_label(objects, c) for c in range(spec.num_classes)]
        stats["objects"] += len(objects)
        stats["difficult_objects"] += sum(o.difficult for o in objects)
        stats["multilabel_images"] += int(len({o.label for o in objects}) > 1)
        stats["lone_part_images"] += int(bool(r.lone_parts))
        for o in objects:
            stats["objects_per_class_modality"][o.label][o.modality] += 1
        if bar is not None:
            bar.update()
    _write_lists(out, split, ids, segmentation_ids(spec, split), classes, rows)
    return rows, stats


def _write_tree(out: Path, spec: SyntheticSpec, progress: bool) -> None:
    """Write the whole tree of ``spec`` into the empty folder ``out``, ``synthetic.json`` last."""
    classes = class_design(spec.num_classes, spec.num_shared_pairs).classes
    for sub in ("JPEGImages", "Annotations", "SegmentationClass", "ImageSets/Main", "ImageSets/Segmentation"):
        (out / sub).mkdir(parents=True)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(spec.num_images.values()), desc="synthetic images", unit="img")
    rows: dict[str, np.ndarray] = {}
    stats: dict[str, Any] = {}
    for split in SPLITS:
        rows[split], stats[split] = _write_split(out, spec, split, classes, bar)
    if bar is not None:
        bar.close()
    # trainval = train + val, as in VOC.
    _write_lists(out, "trainval", image_ids(spec, "train") + image_ids(spec, "val"),
                 segmentation_ids(spec, "train") + segmentation_ids(spec, "val"), classes,
                 np.concatenate([rows["train"], rows["val"]]))
    (out / "classes.txt").write_text("".join(f"{name}\n" for name in classes), encoding="utf-8")
    (out / "synthetic.json").write_text(json.dumps(_metadata(spec, stats), indent=2, sort_keys=True) + "\n",
                                        encoding="utf-8")


def make_synthetic(
    root: str | os.PathLike[str],
    spec: SyntheticSpec | None = None,
    *,
    progress: bool = False,
    **options: Any,
) -> Path:
    """Write the synthetic dataset in the VOC layout under ``root`` and return its folder.

    The tree, ``<root>/VOCdevkit/VOCsynthetic/``, holds ``JPEGImages/<id>.jpg``,
    ``Annotations/<id>.xml``, ``SegmentationClass/<id>.png``, ``ImageSets/Main/`` (split lists
    ``train``, ``val``, ``trainval``, ``test`` and ``<class>_<split>.txt`` label files),
    ``ImageSets/Segmentation/`` (the same split lists), ``classes.txt`` and ``synthetic.json``
    (spec, generator version, class design, statistics).

    The tree is built in a temporary folder beside the target and renamed into place
    (:func:`wildcat.io.atomic_dir`). A complete tree of the same spec and generator version is
    kept as it is (nothing is rewritten); a tree written by this generator with another spec is
    replaced.

    Args:
        root: data folder (``wildcat download --root``).
        spec: the options; ``None`` for the defaults (updated by ``options``).
        progress: show a tqdm bar.
        **options: :class:`SyntheticSpec` fields overriding ``spec`` (e.g. ``seed=3``).

    Returns:
        The dataset folder ``<root>/VOCdevkit/VOCsynthetic``.

    Raises:
        SyntheticSpecError: a bad option.
        WildcatError: the target folder exists and was not written by this generator.
    """
    spec = spec if spec is not None else SyntheticSpec()
    if options:
        known = [f.name for f in dataclasses.fields(SyntheticSpec)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise SyntheticSpecError(f"unknown synthetic option(s) {unknown}; known: {known}")
        spec = dataclasses.replace(spec, **options)
    target = Path(root) / DATASET_DIR
    if _is_complete(target, spec):
        return target
    # An empty folder is fine: Snakemake creates the folder of a rule's output before the job.
    if target.exists() and any(target.iterdir()) and not (target / "synthetic.json").exists():
        raise WildcatError(f"{target} exists but was not written by the synthetic generator (no synthetic.json); "
                           f"move it away or choose another --root")
    try:
        with atomic_dir(target) as tmp:
            _write_tree(tmp, spec, progress)
    except OSError:
        if not _is_complete(target, spec):  # else another process finished the same tree first
            raise
    return target
