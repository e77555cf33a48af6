"""``gallery_<dataset>.png``: what the class maps do, method by method (paper Figures 1 and 7).

Drawn from the gallery of ``maps.npz`` (:mod:`wildcat.eval.maps_record`: the first test images
with objects of two classes or more) of the layout's ``methods``, seed 0 (the lowest seed run):
for each gallery image, a row per method with the image and its ground-truth boxes, the class map
of each of the image's classes with its argmax point (the point of pointwise localization, paper
Table 8) marked as a hit or a miss, the argmax and dense-CRF segmentations (paper Table 9) and
the ground-truth mask, in the VOC colours (:func:`wildcat.data.palette.voc_palette`).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from wildcat.data.palette import voc_palette
from wildcat.eval.maps_record import GALLERY_MIN_CLASSES, GalleryImage, MapsRecord
from wildcat.report.figures import _agg_figure, _save_png
from wildcat.report.layout import ReportLayout
from wildcat.report.load import ResultsFormatError, RunMaps
from wildcat.report.names import DATASETS
from wildcat.report.tables import display_order

__all__ = ["box_patch", "wrapped", "gallery_figures"]

VOID = 255
_HIT, _MISS = "#00e000", "#ff2020"
_SEGMENTATIONS = (("seg_argmax", "argmax segmentation"), ("seg_crf", "CRF segmentation"), ("mask", "ground truth"))


def _colours() -> np.ndarray:
    """``(256, 3)`` the VOC colour of each label, in [0, 1]."""
    return np.asarray(voc_palette(), dtype=np.float64).reshape(256, 3) / 255


def _gallery_methods(maps: RunMaps, config_name: str, dataset: str, layout: ReportLayout) -> list[tuple[str, int, MapsRecord]]:
    """``(method, seed, record)`` of each of ``layout.methods`` with a gallery on ``dataset``, its lowest seed."""
    chosen = []
    for method in layout.methods:
        seeds = sorted(seed for (config, d, m, seed) in maps if (config, d, m) == (config_name, dataset, method))
        if seeds and maps[(config_name, dataset, method, seeds[0])].gallery:
            chosen.append((method, seeds[0], maps[(config_name, dataset, method, seeds[0])]))
    ids = {method: [image.image_id for image in record.gallery] for method, _, record in chosen}
    if len({tuple(v) for v in ids.values()}) > 1:
        raise ResultsFormatError(f"{dataset}: the runs' maps.npz galleries show different test images ({ids}): "
                                 "evaluate every run on the same test split")
    return chosen


def box_patch(box: np.ndarray, **style: Any) -> Any:
    """A rectangle over the pixels of a 1-based inclusive box, in pixel-edge coordinates."""
    from matplotlib.patches import Rectangle

    return Rectangle((box[0] - 1, box[1] - 1), box[2] - box[0] + 1, box[3] - box[1] + 1, fill=False, **style)


def wrapped(lines: list[str], width_inches: float) -> str:
    """``lines`` as a title that fits ``width_inches`` at the medium font size: each line wrapped
    at the words, joined with newlines."""
    width = max(20, int(width_inches * 13))  # about 13 characters an inch at 10 pt
    return "\n".join(textwrap.fill(line, width) for line in lines)


def _image_panel(ax: Any, image: GalleryImage, classes: tuple[str, ...], colours: np.ndarray) -> None:
    height, width = image.image.shape[:2]
    ax.imshow(image.image, extent=(0, width, height, 0), interpolation="nearest")
    for label, box in zip(image.box_labels.tolist(), image.boxes):
        ax.add_patch(box_patch(box, edgecolor=colours[label + 1], linewidth=1.5))
        ax.text(box[0] - 1, box[1] - 1.5, classes[label], color="white", fontsize=6, va="bottom",
                bbox={"facecolor": colours[label + 1], "edgecolor": "none", "pad": 0.5, "alpha": 0.8})


def _map_panel(ax: Any, image: GalleryImage, position: int, classes: tuple[str, ...]) -> None:
    height, width = image.image.shape[:2]
    label = int(image.classes[position])
    ax.imshow(image.maps[position].astype(np.float32), extent=(0, width, height, 0), interpolation="nearest",
              cmap="viridis")
    for box in image.boxes[image.box_labels == label]:
        ax.add_patch(box_patch(box, edgecolor="white", linewidth=0.8, linestyle="--"))
    x, y = image.points[position]
    hit = bool(image.hits[position])
    if hit:
        ax.plot(x, y, marker="o", markersize=9, markerfacecolor="none", markeredgecolor=_HIT, markeredgewidth=2)
    else:
        ax.plot(x, y, marker="x", markersize=9, color=_MISS, markeredgewidth=2.5)
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_title(f"{classes[label]} map: {'hit' if hit else 'miss'}", fontsize="small")


def _legend_handles(records: list[MapsRecord], tolerance: float) -> tuple[list[Any], list[str]]:
    """The markers, then the segmentation colours of the labels the gallery shows."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    colours = _colours()
    shown: set[int] = set()
    for record in records:
        for image in record.gallery:
            for name, _ in _SEGMENTATIONS:
                if getattr(image, name) is not None:
                    shown |= set(np.unique(getattr(image, name)).tolist())
    classes = records[0].classes
    handles: list[Any] = [
        Line2D([], [], linestyle="none", marker="o", markersize=9, markerfacecolor="none", markeredgecolor=_HIT,
               markeredgewidth=2),
        Line2D([], [], linestyle="none", marker="x", markersize=9, color=_MISS, markeredgewidth=2.5),
        Line2D([], [], color="black", linestyle="--", linewidth=0.8),
    ]
    labels = [f"argmax of the class map: hit (within {tolerance:g} px of a box of the class)", "argmax: miss",
              "the class's boxes (on the maps: white)"]
    for label in sorted(shown):
        handles.append(Patch(facecolor=colours[label], edgecolor="grey"))
        labels.append("background" if label == 0 else "void (ignored)" if label == VOID else classes[label - 1])
    return handles, labels


def gallery_figures(maps: RunMaps, config_name: str, layout: ReportLayout, out: Path) -> list[Path]:
    """Draw ``gallery_<dataset>.png`` in ``out`` for each dataset where a method of
    ``layout.methods`` has a ``maps.npz`` with a gallery (see the module docstring); return the
    paths written."""
    colours = _colours()
    datasets = display_order([d for (config, d, _, _) in maps if config == config_name], DATASETS)
    written = []
    for dataset in datasets:
        methods = _gallery_methods(maps, config_name, dataset, layout)
        if not methods:
            continue
        reference = methods[0][2]
        num_maps = max(len(image.classes) for image in reference.gallery)
        segmentations = [(name, title) for name, title in _SEGMENTATIONS
                         if any(getattr(image, name) is not None for _, _, r in methods for image in r.gallery)]
        columns = 1 + num_maps + len(segmentations)
        figure = _agg_figure(1.5 * columns + 0.6, (1.55 * len(methods) + 0.45) * len(reference.gallery) + 1.6)
        blocks = figure.subfigures(len(reference.gallery), 1)
        for block, position in zip(np.atleast_1d(blocks), range(len(reference.gallery))):
            first = reference.gallery[position]
            block.suptitle(f"test image {first.image_id}: {', '.join(reference.classes[c] for c in first.classes)}",
                           fontsize="medium", fontweight="bold")
            axes = block.subplots(len(methods), columns, squeeze=False)
            for row, (method, seed, record) in enumerate(methods):
                image = record.gallery[position]
                for ax in axes[row]:
                    ax.set_xticks([])
                    ax.set_yticks([])
                _image_panel(axes[row][0], image, record.classes, colours)
                axes[row][0].set_ylabel(f"{layout.label(method)}\n(M = {record.num_maps}, seed {seed})", fontsize="small")
                for k in range(num_maps):
                    if k < len(image.classes):
                        _map_panel(axes[row][1 + k], image, k, record.classes)
                    else:
                        axes[row][1 + k].set_axis_off()
                for j, (name, title) in enumerate(segmentations):
                    ax = axes[row][1 + num_maps + j]
                    labels = getattr(image, name)
                    if labels is None:
                        ax.set_axis_off()
                        continue
                    ax.imshow(colours[labels], interpolation="nearest")
                    if row == 0:
                        ax.set_title(title, fontsize="small")
                if row == 0:
                    axes[row][0].set_title("image, boxes", fontsize="small")
        records = [record for _, _, record in methods]
        handles, labels = _legend_handles(records, reference.loc_tolerance_px)
        figure.legend(handles, labels, loc="outside lower center", ncol=4, fontsize="small", frameon=False)
        background = ", ".join(f"{layout.label(m)}: {r.seg_background:g}" for m, _, r in methods
                               if not np.isnan(r.seg_background))
        lines = [f"{dataset}: the class maps of each method on the first {len(reference.gallery)} test images with "
                 f"objects of {GALLERY_MIN_CLASSES} classes or more",
                 "maps: the class maps (after class-wise pooling) of the image's classes, each on its own colour scale "
                 "(yellow: high)"]
        if segmentations:
            lines.append("segmentations: each pixel to the highest of the predicted classes' peak-normalised maps, or to "
                         "background below the value tuned on training images" + (f" ({background})" if background else ""))
        figure.suptitle(wrapped(lines, figure.get_figwidth()), fontsize="medium")
        path = out / f"gallery_{dataset}.png"
        _save_png(figure, path)
        written.append(path)
    return written
