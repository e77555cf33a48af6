"""What ``wildcat evaluate`` collects for ``maps.npz`` (:mod:`wildcat.eval.maps_record`) during its
forward passes over the test split, in bounded memory: the gallery images' maps, one peak vector
per object and the few example objects' maps, never the maps of every image.

The ``M`` maps of a class before class-wise pooling (paper Section 3.2) are the output of the
model's transfer layer, ``(N, C * M, h, w)``, class ``c`` owning channels ``[c M, (c + 1) M)``
(:func:`wildcat.nn.pooling.class_wise_pool`); :class:`TransferOutput` catches them with a forward
hook, so the evaluation keeps its single pass. The model "before training" is built and
initialised as ``wildcat train`` starts it (:func:`initial_model`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from wildcat.engine import distributed
from wildcat.engine.config import ExperimentConfig
from wildcat.engine.train import build_model
from wildcat.eval.maps_record import (
    EXAMPLE_MAX_PX,
    Example,
    GalleryImage,
    MapsRecord,
    ObjectPeaks,
    box_peaks,
    example_objects,
    example_window,
    gallery_indices,
)
from wildcat.eval.metrics.localization import point_hits_box
from wildcat.eval.segmentation import class_logits
from wildcat.nn.model import WildcatNet

if TYPE_CHECKING:
    from wildcat.eval.evaluate import SegmentationScorer

__all__ = ["TransferOutput", "initial_model", "MapRecorder"]


class TransferOutput:
    """In a ``with`` block, :attr:`value` is the output of ``model.transfer`` in the model's last
    forward pass (detached): the ``(N, C * M, h, w)`` maps before class-wise pooling."""

    def __init__(self, model: WildcatNet) -> None:
        self.model = model
        self.value: torch.Tensor | None = None

    def __enter__(self) -> TransferOutput:
        self._handle = self.model.transfer.register_forward_hook(self._keep)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._handle.remove()

    def _keep(self, module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> None:
        self.value = output.detach()


def initial_model(config: ExperimentConfig, num_classes: int, device: torch.device) -> WildcatNet:
    """The model of a run before training, in eval mode: :func:`wildcat.engine.train.build_model`
    after seeding torch's global generator with the run's seed, as ``wildcat train`` starts a run
    (pretrained backbone weights included, if the run has them); the global generator is left as
    it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model(config, num_classes)
    return model.to(device).eval()


class MapRecorder:
    """Collects a :class:`~wildcat.eval.maps_record.MapsRecord` over one or more ranks' shares of
    the test split.

    Args:
        dataset: the test split (its ``boxes_for``, ``modalities_for``, ``load_image``, ``mask_for``).
        config: the run's config (``num_maps``, ``loc_tolerance_px``).
        segmenter: the evaluation's segmentation scorer (its tuned background and CRF) for the
            gallery's segmentations; None for a dataset without masks.
    """

    def __init__(self, dataset: Any, config: ExperimentConfig, segmenter: SegmentationScorer | None) -> None:
        self.dataset, self.segmenter = dataset, segmenter
        self.num_maps, self.tolerance_px = config.num_maps, config.loc_tolerance_px
        # The objects of every image in order, read one image at a time (only their arrays are kept).
        columns: dict[str, list[np.ndarray]] = {"labels": [], "boxes": [], "difficult": [], "modality": []}
        for index in range(len(dataset)) if dataset.has_boxes else ():
            target = dataset.boxes_for(index)
            for key in ("labels", "boxes", "difficult"):
                columns[key].append(target[key])
            columns["modality"].append(dataset.modalities_for(index))
        self.gallery_wanted = set(gallery_indices(columns["labels"]))
        counts = np.asarray([len(labels) for labels in columns["labels"]] or [0] * len(dataset), dtype=np.int64)
        self.first_object = np.concatenate([[0], np.cumsum(counts)])  # image i owns rows first[i]:first[i + 1]
        self.image = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        self.label = np.concatenate([*columns["labels"], np.zeros(0, np.int64)]).astype(np.int64)  # empty: no boxes
        self.box = np.concatenate([*(b.reshape(-1, 4) for b in columns["boxes"]), np.zeros((0, 4))])
        self.difficult = np.concatenate([*columns["difficult"], np.zeros(0, bool)]).astype(bool)
        self.modality = np.concatenate([*columns["modality"], np.zeros(0, np.int64)]).astype(np.int64)
        self.example_rows = set(example_objects(self.label, self.modality, self.difficult))
        self.peaks = {trained: np.full((len(self.label), self.num_maps), np.nan, np.float32) for trained in (True, False)}
        self.gallery: dict[int, GalleryImage] = {}
        self.examples: dict[int, Example] = {}

    @property
    def num_objects(self) -> int:
        return len(self.label)

    def _class_maps_of(self, transfer: np.ndarray, label: int) -> np.ndarray:
        return transfer[label * self.num_maps:(label + 1) * self.num_maps]

    def add(self, indices: list[int], maps: torch.Tensor, scores: torch.Tensor, points: np.ndarray,
            sizes: torch.Tensor, transfer: torch.Tensor) -> None:
        """Record one batch of the trained model (:func:`wildcat.eval.evaluate.forward_batches`):
        ``maps (B, C, h, w)``, ``scores (B, C)``, ``points (B, C, 2)``
        (:func:`~wildcat.eval.evaluate.peak_points`), ``sizes (B, 2)`` ``(W, H)`` and the transfer
        layer's output ``(B, C * M, h, w)`` (:class:`TransferOutput`)."""
        transfer_np = self._add_peaks(self.peaks[True], indices, sizes, transfer)
        for k, index in enumerate(indices):
            width, height = (int(v) for v in sizes[k])
            for row in self.example_rows.intersection(range(self.first_object[index], self.first_object[index + 1])):
                self.examples[row] = self._example(row, self._class_maps_of(transfer_np[k], int(self.label[row])),
                                                   index, width, height)
            if index in self.gallery_wanted:
                self.gallery[index] = self._gallery_image(index, maps[k], scores[k], points[k])

    def add_untrained(self, indices: list[int], sizes: torch.Tensor, transfer: torch.Tensor) -> None:
        """Record the object peaks of one batch of the model before training (as :meth:`add`)."""
        self._add_peaks(self.peaks[False], indices, sizes, transfer)

    def _add_peaks(self, peaks: np.ndarray, indices: list[int], sizes: torch.Tensor, transfer: torch.Tensor) -> np.ndarray:
        """Fill the rows of ``peaks`` of the objects of ``indices``; return ``transfer`` as numpy."""
        transfer_np = transfer.float().cpu().numpy()
        for k, index in enumerate(indices):
            width, height = (float(v) for v in sizes[k])
            for row in range(self.first_object[index], self.first_object[index + 1]):
                class_maps = self._class_maps_of(transfer_np[k], int(self.label[row]))
                peaks[row] = box_peaks(class_maps, self.box[row][None], width, height)[0]
        return transfer_np

    def _example(self, row: int, class_maps: np.ndarray, index: int, width: int, height: int) -> Example:
        window = example_window(self.box[row], width, height)
        x0, y0, x1, y1 = window.tolist()
        crop = Image.fromarray(np.asarray(self.dataset.load_image(index))[y0:y1, x0:x1])
        scale = EXAMPLE_MAX_PX / max(crop.size)
        if scale < 1:
            crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), Image.BOX)
        return Example(object=row, crop=np.asarray(crop), window=window, image_size=np.asarray([width, height]),
                       maps=class_maps.astype(np.float16))

    def _gallery_image(self, index: int, maps: torch.Tensor, scores: torch.Tensor, points: np.ndarray) -> GalleryImage:
        target = self.dataset.boxes_for(index)
        classes = np.unique(target["labels"]).astype(np.int64)
        hits = np.asarray([point_hits_box(np.broadcast_to(points[c], (int((target["labels"] == c).sum()), 2)),
                                          target["boxes"][target["labels"] == c], self.tolerance_px).any()
                           for c in classes])
        rgb = np.asarray(self.dataset.load_image(index))
        segmentations: dict[str, np.ndarray] = {}
        if self.segmenter is not None:
            logits = class_logits(maps, scores, rgb.shape[:2])
            argmax, crf = self.segmenter.segment(rgb, logits)
            segmentations = {"seg_argmax": argmax.astype(np.uint8), "seg_crf": crf.astype(np.uint8)}
        return GalleryImage(
            index=index, image_id=self.dataset.image_id(index), image=rgb, box_labels=target["labels"].astype(np.int64),
            boxes=target["boxes"], classes=classes, maps=maps[torch.from_numpy(classes)].numpy().astype(np.float16),
            points=points[classes].astype(np.float64), hits=hits, mask=self.dataset.mask_for(index), **segmentations)

    def gathered(self) -> MapsRecord:
        """The record of every rank's share (on every rank)."""
        shares = distributed.all_gather_objects((self.peaks, self.gallery, self.examples))
        peaks = {trained: np.fmax.reduce(np.stack([share[0][trained] for share in shares]), axis=0)
                 for trained in (True, False)}
        gallery = {index: image for share in shares for index, image in share[1].items()}
        examples = {row: example for share in shares for row, example in share[2].items()}
        objects = ObjectPeaks(image=self.image, label=self.label, modality=self.modality, difficult=self.difficult,
                              box=self.box, trained=peaks[True], untrained=peaks[False])
        return MapsRecord(classes=tuple(self.dataset.classes), modality_names=tuple(self.dataset.modality_names),
                          num_maps=self.num_maps, loc_tolerance_px=self.tolerance_px,
                          seg_background=self.segmenter.background if self.segmenter is not None else np.nan,
                          gallery=tuple(gallery[i] for i in sorted(gallery)), objects=objects,
                          examples=tuple(examples[row] for row in sorted(examples)))
