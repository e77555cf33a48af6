"""``wildcat evaluate``: one forward pass over the test split, every metric the dataset supports.

From the scores and class maps of :meth:`WildcatNet.class_maps` (paper Section 4):

* classification: per-class AP and mAP (multi-label), or top-1 and mean per-class accuracy;
* pointwise localization (Oquab et al. 2015, paper Table 8): the argmax region of each class
  map, its centre mapped back to original-image pixels. Images are warped to a square without
  cropping, so region ``(i, j)`` of an ``h x w`` map has its centre at
  ``x = (j + 0.5) * W / w``, ``y = (i + 0.5) * H / h`` of a ``W x H`` image, and the tolerance is
  in original-image pixels at any input size;
* segmentation (paper Table 9): argmax over background and the present classes' maps, and the
  same refined by a dense CRF, scored by mIoU over background + classes (void ignored).

On the VOC 2012 test split, whose labels only the evaluation server has, the scores go to the
server's submission archive (:mod:`wildcat.eval.submission`) instead of classification metrics.

Results go to ``metrics.json`` (format in ``docs/contracts.md``) with per-class values, in percent
(the metrics of :mod:`wildcat.eval.metrics` are fractions: :func:`_percent` scales them). The
classes that a metric leaves out of its mean are named in one warning line on stderr
(:func:`undefined_metrics_reported`). Beside it goes ``maps.npz`` (:mod:`wildcat.eval.maps_record`):
a gallery of maps and the peaks of each object's ``M`` maps, trained and before training, for the
report's figures and modality measure.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import multiprocessing
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from wildcat.data import get_dataset
from wildcat.data.transforms import eval_transform
from wildcat.data.voc import dataset_design
from wildcat.engine import distributed, provenance
from wildcat.engine.config import ExperimentConfig, load_config
from wildcat.engine.memory import fix_mmap_threshold
from wildcat.engine.train import load_trained, resolve_device
from wildcat.eval import metrics
from wildcat.eval.crf import CRFParams, crf_refine, die_with_parent
from wildcat.eval.map_recorder import MapRecorder, TransferOutput, initial_model
from wildcat.eval.maps_record import MAPS_FILE, region_centres, write_maps
from wildcat.eval.segmentation import argmax_labels, class_logits, crf_unaries
from wildcat.eval.submission import write_voc_classification_submission
from wildcat.io import atomic_write_json, ensure_writable_dirs
from wildcat.nn.model import WildcatNet

METRICS_SCHEMA = 2  # 2: with provenance (docs/contracts.md)
#: The model settings that metrics.json records under ``settings`` (the report's key to a run).
SETTINGS_KEYS = ("backbone", "image_size_px", "num_maps", "kmax", "kmin", "alpha", "order")

MetricsDict = dict[str, dict[str, Any]]


class _Indexed(Dataset):
    """``(tensor, index, (W, H))`` items of a dataset, for one pass that keeps track of images."""

    def __init__(self, dataset: Any, image_size_px: int, indices: list[int] | None = None) -> None:
        self.dataset = dataset
        self.transform = eval_transform(image_size_px)
        self.indices = list(range(len(dataset))) if indices is None else indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        index = self.indices[position]
        image = self.dataset.load_image_tensor(index)  # (3, H, W) uint8, as in training
        return self.transform(image), index, torch.tensor([image.shape[2], image.shape[1]])


def eval_loader(dataset: Any, config: ExperimentConfig, indices: list[int] | None = None, shard: bool = True) -> DataLoader:
    """Batches of :class:`_Indexed` items in order; with ``shard``, under ``torchrun``, only this
    rank's share (items ``rank, rank + world_size, ...``: no padding, no item twice)."""
    indices = list(range(len(dataset))) if indices is None else list(indices)
    if shard:
        indices = indices[distributed.rank()::distributed.world_size()]
    return DataLoader(_Indexed(dataset, config.image_size_px, indices), batch_size=config.batch_size,
                      shuffle=False, num_workers=config.workers, pin_memory=torch.cuda.is_available())


def crf_params(config: ExperimentConfig) -> CRFParams:
    """The CRF parameters of a config (``crf_*`` keys)."""
    return CRFParams(
        iterations=config.crf_iterations,
        gaussian_sxy=config.crf_gaussian_sxy,
        gaussian_compat=config.crf_gaussian_compat,
        bilateral_sxy=config.crf_bilateral_sxy,
        bilateral_srgb=config.crf_bilateral_srgb,
        bilateral_compat=config.crf_bilateral_compat,
    )


def peak_points(class_maps: torch.Tensor, sizes: torch.Tensor) -> np.ndarray:
    """``(N, C, h, w)`` maps and ``(N, 2)`` image sizes ``(W, H)`` -> ``(N, C, 2)`` points ``(x, y)``:
    the centre (:func:`~wildcat.eval.maps_record.region_centres`) of each class map's argmax region
    in original-image pixels."""
    _, _, h, w = class_maps.shape
    flat = class_maps.flatten(2).argmax(dim=2).numpy()
    centres = np.asarray([region_centres(h, w, float(width), float(height))
                          for width, height in sizes.tolist()]).reshape(len(flat), h * w, 2)
    return centres[np.arange(len(flat))[:, None], flat]


def forward_batches(
    model: WildcatNet, dataset: Any, config: ExperimentConfig, device: torch.device, indices: list[int] | None = None,
    shard: bool = True, desc: str = "evaluate", progress: bool = True,
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One forward pass (no gradients) over ``indices`` of ``dataset`` (all by default; with
    ``shard``, this rank's share): ``(indices, class_maps (B, C, h, w), scores (B, C), sizes (B, 2))``
    per batch, maps and scores as float32 on the CPU, sizes ``(W, H)`` of the original images."""
    loader = eval_loader(dataset, config, indices, shard=shard)
    with torch.no_grad():
        for images, batch_indices, sizes in tqdm(loader, desc=desc, leave=False, unit="batch",
                                                 disable=not (progress and distributed.is_main())):
            maps, scores = model.maps_and_scores(images.to(device))
            yield batch_indices.tolist(), maps.float().cpu(), scores.float().cpu(), sizes


def masked_indices(dataset: Any, limit: int | None = None) -> list[int]:
    """The indices of the images of ``dataset`` that have a segmentation mask (the first ``limit``)."""
    found: list[int] = []
    for index in range(len(dataset)):
        if limit is not None and len(found) >= limit:
            break
        if dataset.mask_for(index) is not None:
            found.append(index)
    return found


def best_background(items: Iterable[tuple[np.ndarray, np.ndarray]], grid: list[float], num_labels: int) -> float:
    """The value of ``grid`` with the best argmax mIoU over ``(class logits (C, H, W), mask (H, W))``
    items (summed over the ranks of a distributed run; ties go to the lower value)."""
    confusions = np.zeros((len(grid), num_labels, num_labels), np.int64)
    for logits, mask in items:
        for k, background in enumerate(grid):
            confusions[k] += metrics.confusion_matrix(argmax_labels(logits, background), mask, num_labels)
    confusions = distributed.all_reduce_sum(confusions)  # exact: integer counts
    best = max(range(len(grid)), key=lambda k: (metrics.mean_iou(confusions[k])[0], -grid[k]))
    return grid[best]


def tune_background(model: WildcatNet, config: ExperimentConfig, device: torch.device, progress: bool = True) -> float:
    """The background value of ``config.seg_background_grid`` with the best argmax mIoU on (at most
    ``seg_tune_images``) images of the training split ``seg_tune_split`` that have masks."""
    dataset = get_dataset(config.dataset, config.data_root, config.seg_tune_split)
    with_masks = masked_indices(dataset, config.seg_tune_images)
    if not with_masks:
        raise ValueError(f"split {config.seg_tune_split!r} of {config.dataset} has no segmentation masks to tune the background on")
    items = (
        (class_logits(maps[k], scores[k], mask.shape), mask)
        for indices, maps, scores, _ in forward_batches(model, dataset, config, device, with_masks, desc="tune background", progress=progress)
        for k, index in enumerate(indices)
        if (mask := dataset.mask_for(index)) is not None
    )
    return best_background(items, list(config.seg_background_grid), len(dataset.classes) + 1)


def _done(function: Callable[..., np.ndarray], *args: Any) -> Future:
    """``function(*args)`` run here, as a finished future."""
    future: Future = Future()
    future.set_result(function(*args))
    return future


def warning_line(command: str, message: str) -> None:
    """One warning line on stderr, ``wildcat <command>: warning: <message>``, by the main rank only
    (every rank of a distributed run computes the same document)."""
    if distributed.is_main():
        print(f"wildcat {command}: warning: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def undefined_metrics_reported(dataset: Any, command: str) -> Iterator[None]:
    """Name the classes that the metrics computed in the block leave out of their means in one
    :func:`warning_line` at its end, e.g. ``2 classes have no positive test image (average precision
    and localization AP undefined, left out of the mean): cat, dog``, instead of one
    :class:`~wildcat.eval.metrics.UndefinedMetricWarning` per metric that lists the same classes by
    index. Metrics that skip different classes get one ``;``-separated part each. Other warnings
    raised in the block pass on unchanged."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", metrics.UndefinedMetricWarning)
            yield
    finally:
        skipped: dict[tuple[int, ...], list[str]] = {}  # classes -> the metrics that skip them
        for record in caught:
            message = record.message
            if isinstance(message, metrics.UndefinedMetricWarning) and message.classes:
                skipped.setdefault(message.classes, []).append(message.metric)
            else:
                warnings.warn_explicit(message, record.category, record.filename, record.lineno, source=record.source)
    reason = "no positive test image" if dataset.task == "multilabel" else "no test image"
    parts = [f"{len(indices)} {'class has' if len(indices) == 1 else 'classes have'} {reason} "
             f"({' and '.join(names)} undefined, left out of the mean): {', '.join(dataset.classes[i] for i in indices)}"
             for indices, names in skipped.items()]
    if parts:
        warning_line(command, "; ".join(parts))


class SegmentationScorer:
    """Confusion matrices of the argmax labels and of their dense-CRF refinement (paper Table 9),
    over background + the ``classes``, with the ``background`` value tuned on a training split.

    A tuned ``background`` at the lowest or highest value of ``config.seg_background_grid`` is
    reported: one :func:`warning_line` and ``seg_background_at_grid_edge`` in the protocol (always
    recorded, true or false).

    The CRF (single-threaded pydensecrf: seconds per VOC-sized image, benchmarks/engine.py) runs in this process,
    or with ``crf_workers > 1`` in that many worker processes, a few images ahead of the forward
    pass: the confusion matrices are sums of integer counts, so the result is the same.
    """

    def __init__(self, classes: list[str], background: float, config: ExperimentConfig, crf_workers: int = 0,
                 command: str = "evaluate") -> None:
        self.classes = list(classes)
        self.background = background
        grid = list(config.seg_background_grid)
        self.at_grid_edge = background in (min(grid), max(grid))
        if self.at_grid_edge:
            warning_line(command, f"the tuned background {background} is at the edge of seg_background_grid {grid}; "
                                  "the best value may lie outside it")
        self.unary_scale = config.seg_unary_scale
        self.params = crf_params(config)
        self.tuned_on = config.seg_tune_split
        num_labels = len(self.classes) + 1
        self.confusions = np.zeros((2, num_labels, num_labels), np.int64)  # argmax, CRF
        # spawn: workers import only wildcat.eval.crf (numpy, pydensecrf), never a forked copy of torch.
        # They are started by the thread that calls add() and die with it (die_with_parent).
        self._pool = (ProcessPoolExecutor(crf_workers, mp_context=multiprocessing.get_context("spawn"),
                                          initializer=die_with_parent, initargs=(os.getpid(),))
                      if crf_workers > 1 else None)
        self._max_pending = 2 * crf_workers if self._pool is not None else 0  # images the CRF may run behind
        self._pending: collections.deque[tuple[Future, np.ndarray]] = collections.deque()

    def _crf_arguments(self, rgb: np.ndarray, logits: np.ndarray) -> tuple[Any, ...]:
        """The arguments of :func:`crf_refine` for one image over the labels the argmax can give."""
        probs, label_ids = crf_unaries(logits, self.background, self.unary_scale)
        return rgb, probs, self.params, 1e-5, label_ids

    def segment(self, rgb: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ``(H, W)`` argmax labels and CRF labels of one image, as :meth:`add` scores them
        (for the gallery of :mod:`wildcat.eval.maps_record`)."""
        return argmax_labels(logits, self.background), crf_refine(*self._crf_arguments(rgb, logits))

    def add(self, rgb: np.ndarray, logits: np.ndarray, mask: np.ndarray) -> None:
        """Score one image (``rgb (H, W, 3)`` uint8, class logits ``(C, H, W)``, mask ``(H, W)``): its
        argmax labels now, its CRF labels when they are ready."""
        labels = argmax_labels(logits, self.background)
        self.confusions[0] += metrics.confusion_matrix(labels, mask, len(self.classes) + 1)
        run = self._pool.submit if self._pool is not None else _done
        refined = run(crf_refine, *self._crf_arguments(rgb, logits))
        self._pending.append((refined, mask))
        while len(self._pending) > self._max_pending:
            self._count_oldest()

    def _count_oldest(self) -> None:
        refined, mask = self._pending.popleft()
        self.confusions[1] += metrics.confusion_matrix(refined.result(), mask, len(self.classes) + 1)

    def result(self) -> MetricsDict:
        """``metrics``/``per_class``/``protocol`` entries, summed over the ranks of a distributed run."""
        while self._pending:
            self._count_oldest()
        if self._pool is not None:
            self._pool.shutdown()
        confusions = distributed.all_reduce_sum(self.confusions)
        result: MetricsDict = {"metrics": {}, "per_class": {}, "protocol": {
            "seg_background": self.background, "seg_background_at_grid_edge": self.at_grid_edge,
            "seg_tuned_on": self.tuned_on, "crf": dataclasses.asdict(self.params)}}
        for name, confusion in zip(("seg_miou_argmax", "seg_miou_crf"), confusions, strict=True):
            miou, per_class_iou = metrics.mean_iou(confusion)
            result["metrics"][name] = _percent(miou)
            result["per_class"][name] = _per_class(["background", *self.classes], per_class_iou)
        return result


def _percent(value: float) -> float | None:
    """A metric's fraction as the percentage that ``metrics.json`` records (4 decimals; None for NaN)."""
    return None if value is None or np.isnan(value) else round(100.0 * float(value), 4)


def _per_class(names: list[str], values: np.ndarray) -> dict[str, float | None]:
    """``{class name: percentage}`` of per-class fractions (:func:`_percent`)."""
    return {name: _percent(v) for name, v in zip(names, values, strict=True)}


def merge_metrics(into: MetricsDict, part: MetricsDict) -> None:
    """Add the ``metrics``/``per_class``/``protocol`` entries of ``part`` to ``into``."""
    for key, values in part.items():
        into.setdefault(key, {}).update(values)


def classification_metrics(scores: np.ndarray, dataset: Any, config: ExperimentConfig) -> MetricsDict:
    """``metrics``, ``per_class`` and ``protocol`` entries of classification (paper Tables 2-4):
    mAP in ``config.ap_mode`` for multi-label sets, top-1 and mean per-class accuracy otherwise.
    ``scores`` is ``(N, C)`` over the dataset's images in order."""
    classes = list(dataset.classes)
    if dataset.task == "multilabel":
        mean_ap, per_class_ap = metrics.mean_average_precision(scores, dataset.targets, mode=config.ap_mode)
        return {"metrics": {"map": _percent(mean_ap)}, "per_class": {"map": _per_class(classes, per_class_ap)},
                "protocol": {"ap_mode": config.ap_mode}}
    return {"metrics": {"accuracy": _percent(metrics.accuracy(scores, dataset.targets)),
                        "mean_class_accuracy": _percent(metrics.mean_class_accuracy(scores, dataset.targets))},
            "per_class": {}, "protocol": {}}


def localization_metrics(scores: np.ndarray, points: np.ndarray, dataset: Any, config: ExperimentConfig) -> MetricsDict:
    """Pointwise localization mAP (paper Table 8) from ``scores (N, C)`` and ``points (N, C, 2)``."""
    boxes = (dataset.boxes_for(i) for i in range(len(dataset)))  # one image's boxes at a time
    loc_map, per_class_loc = metrics.pointwise_localization_ap(
        scores, points, boxes, tolerance_px=config.loc_tolerance_px, mode=config.ap_mode
    )
    return {"metrics": {"loc_map": _percent(loc_map)}, "per_class": {"loc_map": _per_class(list(dataset.classes), per_class_loc)},
            "protocol": {"loc_tolerance_px": config.loc_tolerance_px}}


@torch.no_grad()
def evaluate(
    run_dir: str | Path,
    out_path: str | Path,
    identity: dict[str, Any] | None = None,
    progress: bool = True,
    crf_workers: int = 0,
) -> dict[str, Any]:
    """Evaluate the finished run in ``run_dir`` on its test split; write and return metrics.json
    and write ``maps.npz`` beside it (:mod:`wildcat.eval.maps_record`; with one more forward pass,
    of the model before training, on a dataset with boxes), and, for a test split whose labels
    only the evaluation server has, the submission archive (:mod:`wildcat.eval.submission`).

    Args:
        run_dir: a ``wildcat train`` output folder.
        out_path: where ``metrics.json`` goes (``maps.npz`` goes in the same folder).
        identity: ``config_name``, ``dataset``, ``method``, ``seed`` recorded in the file.
        progress: show progress bars (main rank only).
        crf_workers: dense-CRF worker processes (per rank); 0 or 1: in this process. The
            metrics do not depend on it. The workers are spawned, so they re-import the main
            script: fine from the CLI, a script or a notebook, not from a program piped to
            ``python -``.

    Raises:
        OutputNotWritableError: a folder of the outputs cannot be written in (checked first).
    """
    ensure_writable_dirs(Path(out_path).parent)
    fix_mmap_threshold()  # memory bounded by what the metrics keep, at any test-split size
    config = load_config(Path(run_dir) / "config.yaml")
    device = resolve_device(config.device)
    with distributed.session(device.type) as info:
        if device.type == "cuda" and info.distributed:
            device = torch.device("cuda", info.local_rank)
        return _evaluate(run_dir, out_path, identity, progress, crf_workers, config, device)


def training_provenance(run_dir: str | Path) -> dict[str, Any] | None:
    """The ``provenance.json`` that ``wildcat train`` wrote in ``run_dir`` (None for a run of an
    older version, which wrote none)."""
    path = Path(run_dir) / provenance.PROVENANCE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def evaluation_provenance(test_set: Any, device: torch.device, started: float) -> dict[str, Any]:
    """What this evaluation ran on: the environment, the device (float32 forward passes), the test
    split's fingerprint, the digests its data was verified against (``data_checksums``) and the
    wall time since ``started`` (``time.perf_counter()``)."""
    return {
        **provenance.environment(),
        "device": provenance.device_record(device, distributed.world_size(), "float32"),
        "test_split_sha256": provenance.dataset_fingerprint(test_set),
        "data_checksums": provenance.data_checksums(test_set),
        "wall_s": round(time.perf_counter() - started, 3),
    }


def record_untrained_peaks(recorder: MapRecorder, config: ExperimentConfig, dataset: Any, device: torch.device,
                           progress: bool) -> None:
    """Add to ``recorder`` the object peaks of the run's model before training
    (:func:`~wildcat.eval.map_recorder.initial_model`), from one more pass over this rank's share
    of the test split."""
    model = initial_model(config, len(dataset.classes), device)
    with TransferOutput(model) as transfer:
        for indices, _, _, sizes in forward_batches(model, dataset, config, device, desc="maps before training",
                                                    progress=progress):
            recorder.add_untrained(indices, sizes, transfer.value)


def _evaluate(run_dir: str | Path, out_path: str | Path, identity: dict[str, Any] | None, progress: bool,
              crf_workers: int, config: ExperimentConfig, device: torch.device) -> dict[str, Any]:
    """:func:`evaluate` on this rank's share of the test images, with the run's ``config`` as
    :func:`evaluate` read it; the shares are gathered so that every rank returns (and rank 0
    writes) what a single process would."""
    started = time.perf_counter()
    progress = progress and distributed.is_main()
    dataset = get_dataset(config.dataset, config.data_root, config.test_split)
    model = load_trained(run_dir, config, len(dataset.classes), device)
    classes = list(dataset.classes)
    scorer = (SegmentationScorer(classes, tune_background(model, config, device, progress), config, crf_workers)
              if dataset.has_masks else None)
    recorder = MapRecorder(dataset, config, scorer)
    all_indices, all_scores, all_points = [], [], []
    with TransferOutput(model) as transfer:
        for indices, maps, scores, sizes in forward_batches(model, dataset, config, device, progress=progress):
            all_indices.append(np.asarray(indices, np.int64))
            all_scores.append(scores.numpy())
            all_points.append(peak_points(maps, sizes))
            recorder.add(indices, maps, scores, all_points[-1], sizes, transfer.value)
            if scorer is None:
                continue
            for k, index in enumerate(indices):
                mask = dataset.mask_for(index)
                if mask is None:
                    continue
                rgb = np.asarray(dataset.load_image(index))  # RGB (ImageDataset.load_image)
                scorer.add(rgb, class_logits(maps[k], scores[k], mask.shape), mask)
    if recorder.num_objects:
        record_untrained_peaks(recorder, config, dataset, device, progress)

    num_classes = len(classes)
    shares = distributed.all_gather_objects((
        np.concatenate(all_indices) if all_indices else np.zeros(0, np.int64),
        np.concatenate(all_scores) if all_scores else np.zeros((0, num_classes), np.float32),
        np.concatenate(all_points) if all_points else np.zeros((0, num_classes, 2)),
    ))
    order = np.argsort(np.concatenate([share[0] for share in shares]), kind="stable")
    scores = np.concatenate([share[1] for share in shares])[order]
    points = np.concatenate([share[2] for share in shares])[order]
    if len(scores) != len(dataset):
        raise RuntimeError(f"gathered {len(scores)} test scores for {len(dataset)} images: the ranks' shares do not cover the test split")
    with undefined_metrics_reported(dataset, "evaluate"):
        if not getattr(dataset, "labels_known", True):  # VOC 2012 test: labels only on the evaluation server
            archive = Path(out_path).with_name(f"{config.dataset}_{config.test_split}_cls_submission.tar.gz")
            if distributed.is_main():
                ids = [dataset.image_id(i) for i in range(len(dataset))]
                write_voc_classification_submission(scores, ids, list(dataset.classes), archive, expected_ids=ids)
            result: MetricsDict = {"metrics": {}, "per_class": {}, "protocol": {"server_submission": archive.name}}
        else:
            result = classification_metrics(scores, dataset, config)
        if dataset.has_boxes:
            merge_metrics(result, localization_metrics(scores, points, dataset, config))
    if scorer is not None:
        merge_metrics(result, scorer.result())
    settings = {key: getattr(config, key) for key in SETTINGS_KEYS}
    settings["scales"] = [config.image_size_px]
    document = {
        "schema": METRICS_SCHEMA,
        **(identity or {}),
        "settings": settings,
        **result,
        "num_test_images": len(dataset),
        "dataset_design": dataset_design(dataset),  # the negative-evidence classes of a synthetic set
        "provenance": {"config": config.to_dict(), "training": training_provenance(run_dir),
                       "evaluation": evaluation_provenance(dataset, device, started)},
    }
    maps_record = recorder.gathered()
    if distributed.is_main():
        write_maps(Path(out_path).with_name(MAPS_FILE), maps_record)
        atomic_write_json(out_path, document)
    distributed.barrier()
    return document
