"""``wildcat combine``: the multi-scale WILDCAT of the paper's main results (Section 4.1).

One model is trained per input scale (supplementary Table 2: 224, 280, 320, 374, 448, 560 and
747 px with k+ = k- = 3, 5, 10, 15, 20, 25, 30; M = 4, alpha = 0.7), each a normal
``wildcat train`` run. The paper combines them "with the Object Bank strategy" (Li et al.,
*Object Bank: A High-Level Image Representation for Scene Classification & Semantic Feature
Sparsification*, NIPS 2010): the responses of several detectors, here the ``C`` class scores of
each of the ``S`` scale models, are concatenated into one ``S * C`` vector per image and a linear
classifier is learned on top of it, on the training split only. :func:`combine_scores` is that
step; :func:`combine` runs it on trained run folders and writes ``metrics.json`` in the format
of ``wildcat evaluate`` (docs/contracts.md), so the combination goes through the same tables.

Choices the paper does not state (ours, documented here):

* classifier: scikit-learn's ``LogisticRegression`` (lbfgs, L2 penalty, ``C = 1``) on features
  standardized with the training split's mean and standard deviation (per-scale scores have
  different ranges). Object Bank itself trains L1 / L1-L2 (group-sparse) logistic regression on
  a 44,604-dimensional representation, where sparsity matters; our representation has only
  ``S * C`` dimensions (7 * 20 = 140 on VOC), so a plain L2 penalty is used;
* multi-label sets (VOC, COCO, VOC Action): one binary classifier per class (one-vs-rest) on
  the full concatenated vector; images whose label is 0 (difficult) for that class are left out
  of that class's training set. A class with a single label value in the training split falls
  back to the mean of its per-scale scores;
* single-label sets (scenes): one multinomial logistic regression (softmax over the classes);
* the combined score of a class is the classifier's decision function (log-odds / logits),
  which ranks images as the probabilities do;
* pointwise localization uses the combined scores with the argmax points of the largest scale's
  class maps (its 24 x 24 maps at 747 px are the finest grid of the members);
* segmentation (Table 9, whose WILDCAT is the multi-scale model): the class maps of every scale
  are upsampled to the image, each divided by its peak, and averaged; the classes judged
  present are those with a positive combined score; then the same argmax / dense-CRF steps as
  a single model, with the background value tuned on ``seg_tune_split`` (the paper does not say
  how its scales' maps were merged).

The training split was also the models' training set, so its scores are more confident than
test scores; the paper learns the combination there all the same (no validation split is used
for VOC 2007 trainval or the scene sets), and so does this module.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from wildcat.data import get_dataset
from wildcat.engine.config import ExperimentConfig, load_config
from wildcat.engine.memory import fix_mmap_threshold
from wildcat.engine.train import load_trained, resolve_device
from wildcat.errors import WildcatError
from wildcat.eval.evaluate import (
    METRICS_SCHEMA,
    SETTINGS_KEYS,
    MetricsDict,
    SegmentationScorer,
    best_background,
    classification_metrics,
    evaluation_provenance,
    forward_batches,
    localization_metrics,
    masked_indices,
    merge_metrics,
    peak_points,
    training_provenance,
    undefined_metrics_reported,
)
from wildcat.eval.segmentation import class_logits
from wildcat.io import atomic_path, atomic_write_json, ensure_writable_dirs

#: Inverse L2 regularization strength of the combination classifier (scikit-learn's ``C``).
DEFAULT_C = 1.0
#: Settings that must agree between the member runs of one combination.
SHARED_KEYS = ("dataset", "data_root", "train_split", "test_split", "ap_mode", "loc_tolerance_px", "seg_tune_split")


class CombineError(WildcatError, ValueError):
    """Member runs or score arrays that cannot be combined."""


def _check_scores(scores: Sequence[np.ndarray], name: str) -> list[np.ndarray]:
    if len(scores) < 1:
        raise CombineError(f"{name}: give the scores of at least one scale")
    arrays = [np.asarray(s, dtype=np.float64) for s in scores]
    for k, array in enumerate(arrays):
        if array.ndim != 2 or array.shape != arrays[0].shape:
            raise CombineError(f"{name}[{k}] has shape {array.shape}; every scale needs the same (N, C) shape as {name}[0] {arrays[0].shape}")
        if not np.isfinite(array).all():
            raise CombineError(f"{name}[{k}] holds NaN or infinite scores")
    return arrays


def _classifier(c: float) -> Pipeline:
    """Standardization, then L2 logistic regression (lbfgs: deterministic, no random state)."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))


def combine_scores(
    train_scores: Sequence[np.ndarray],
    train_targets: np.ndarray,
    test_scores: Sequence[np.ndarray],
    task: str,
    c: float = DEFAULT_C,
) -> np.ndarray:
    """Object Bank combination of per-scale scores (see the module docstring for the choices).

    Args:
        train_scores: ``S`` arrays ``(N_train, C)``, the scores of each scale's model on the
            training split (the same images in the same order).
        train_targets: ``(N_train, C)`` labels in {1, 0, -1} (0 = difficult, left out) for
            ``task="multilabel"``; ``(N_train,)`` class indices for ``task="multiclass"``.
        test_scores: ``S`` arrays ``(N_test, C)``, the scales in the same order as ``train_scores``.
        task: ``"multilabel"`` (one-vs-rest logistic regressions) or ``"multiclass"``
            (multinomial logistic regression).
        c: inverse L2 regularization strength on standardized features.

    Returns:
        ``(N_test, C)`` combined scores (decision function values, higher = more likely).

    Raises:
        CombineError: scale lists of different lengths, shapes that disagree, or bad targets.
    """
    train = _check_scores(train_scores, "train_scores")
    test = _check_scores(test_scores, "test_scores")
    if len(train) != len(test):
        raise CombineError(f"{len(train)} scales of training scores but {len(test)} of test scores; give the same scales in the same order")
    num_train, num_classes = train[0].shape
    if test[0].shape[1] != num_classes:
        raise CombineError(f"training scores have {num_classes} classes, test scores {test[0].shape[1]}")
    targets = np.asarray(train_targets)
    features_train, features_test = np.concatenate(train, axis=1), np.concatenate(test, axis=1)
    combined = np.empty((features_test.shape[0], num_classes))
    if task == "multilabel":
        if targets.shape != (num_train, num_classes):
            raise CombineError(f"multilabel targets must be (N_train, C) = {(num_train, num_classes)}, got {targets.shape}")
        for c_index in range(num_classes):
            keep = targets[:, c_index] != 0
            labels = targets[keep, c_index] > 0
            if labels.all() or not labels.any():  # one label value: nothing to learn
                combined[:, c_index] = np.mean([s[:, c_index] for s in test], axis=0)
                continue
            model = _classifier(c).fit(features_train[keep], labels)
            combined[:, c_index] = model.decision_function(features_test)
        return combined
    if task == "multiclass":
        if targets.shape != (num_train,) or not np.issubdtype(targets.dtype, np.integer):
            raise CombineError(f"multiclass targets must be (N_train,) class indices, got {targets.shape} {targets.dtype}")
        present = np.unique(targets)
        if len(present) < 2:
            return np.mean(test, axis=0)
        model = _classifier(c).fit(features_train, targets)
        logits = model.decision_function(features_test)
        if len(present) == 2:  # scikit-learn returns one column for two classes
            logits = np.stack([-logits / 2, logits / 2], axis=1)
        # A class absent from the training split scores below every other score (finite, as
        # the metrics require): it is never predicted.
        combined[:] = logits.min() - 1.0
        combined[:, model[-1].classes_] = logits
        return combined
    raise CombineError(f"task must be 'multilabel' or 'multiclass', got {task!r}")


class Prediction(NamedTuple):
    """One model's forward pass over some images of a split."""

    scores: np.ndarray  #: ``(N, C)``, the images in the order asked for
    points: np.ndarray  #: ``(N, C, 2)`` argmax point of each class map (:func:`wildcat.eval.evaluate.peak_points`)
    maps: dict[int, torch.Tensor]  #: ``(C, h, w)`` class maps of the images with masks, by dataset index


def predict(model: Any, dataset: Any, config: ExperimentConfig, device: torch.device, indices: list[int] | None = None,
            keep_maps: Collection[int] = (), progress: bool = True) -> Prediction:
    """A finished member's forward pass over ``indices`` of ``dataset`` (all by default), in one
    process (the combination is not run under torchrun); the class maps of the images in
    ``keep_maps`` (dataset indices: those with masks, for the combined segmentation) are kept."""
    scores, points, maps = [], [], {}
    batches = forward_batches(model, dataset, config, device, indices, shard=False,
                              desc=f"member {config.image_size_px} px", progress=progress)
    for batch_indices, batch_maps, batch_scores, sizes in batches:
        scores.append(batch_scores.numpy())
        points.append(peak_points(batch_maps, sizes))
        maps.update({index: batch_maps[k].clone() for k, index in enumerate(batch_indices) if index in keep_maps})
    return Prediction(np.concatenate(scores), np.concatenate(points), maps)


def _member_configs(run_dirs: Sequence[str | Path]) -> list[ExperimentConfig]:
    if not run_dirs:
        raise CombineError("give at least one run folder (--runs)")
    configs = []
    for run_dir in run_dirs:
        path = Path(run_dir) / "config.yaml"
        if not path.exists():
            raise CombineError(f"{path} does not exist: {run_dir} is not a `wildcat train` folder")
        configs.append(load_config(path))
    for key in SHARED_KEYS:
        values = [getattr(config, key) for config in configs]
        if len(set(map(repr, values))) > 1:
            raise CombineError(f"member runs disagree on {key!r} ({values}); combine runs of one dataset, split and protocol")
    return configs


def _combined_settings(configs: list[ExperimentConfig]) -> dict[str, Any]:
    """Model settings of the combination: a value shared by every member, else the list of the
    members' values in run order; ``scales`` lists the members' ``image_size_px``."""
    settings: dict[str, Any] = {}
    for key in SETTINGS_KEYS:
        values = [getattr(config, key) for config in configs]
        settings[key] = values[0] if len(set(map(repr, values))) == 1 else values
    settings["scales"] = [config.image_size_px for config in configs]
    return settings


def _combined_segmentation(test_set: Any, test: list[Prediction], combined: np.ndarray, tune_set: Any, tune_indices: list[int],
                           tune: list[Prediction], combined_tune: np.ndarray, config: ExperimentConfig, progress: bool,
                           crf_workers: int) -> MetricsDict:
    """Segmentation of the multi-scale model (paper Table 9): every image's class logits are the
    mean over scales of the members' peak-normalized maps (:func:`wildcat.eval.segmentation.class_logits`),
    the present classes those of the combined scores; the background value is tuned on the
    masked images of ``seg_tune_split`` (``tune_indices``), then the test images are scored."""
    def logits(predictions: list[Prediction], scores: np.ndarray, row: int, index: int, shape: tuple[int, int]) -> np.ndarray:
        return class_logits([p.maps[index] for p in predictions], torch.from_numpy(scores[row]).float(), shape)

    tune_items = ((logits(tune, combined_tune, row, index, mask.shape), mask)
                  for row, index in enumerate(tune_indices) if (mask := tune_set.mask_for(index)) is not None)
    background = best_background(tune_items, list(config.seg_background_grid), len(test_set.classes) + 1)
    scorer = SegmentationScorer(list(test_set.classes), background, config, crf_workers, command="combine")
    for index in tqdm(sorted(test[0].maps), desc="segmentation", leave=False, disable=not progress):
        mask = test_set.mask_for(index)
        rgb = np.asarray(test_set.load_image(index))  # RGB (ImageDataset.load_image)
        scorer.add(rgb, logits(test, combined, index, index, mask.shape), mask)
    return scorer.result()


def combine(
    run_dirs: Sequence[str | Path],
    out_path: str | Path,
    identity: dict[str, Any] | None = None,
    scores_out: str | Path | None = None,
    c: float = DEFAULT_C,
    progress: bool = True,
    crf_workers: int = 0,
) -> dict[str, Any]:
    """Combine finished per-scale runs (Object Bank) and write ``metrics.json``.

    Args:
        run_dirs: ``wildcat train`` folders of the scales (one dataset, same splits).
        out_path: where ``metrics.json`` goes (format of ``wildcat evaluate``).
        identity: ``config_name``, ``dataset``, ``method``, ``seed`` recorded in the file.
        scores_out: if given, an ``.npz`` with the combined test ``scores (N, C)``, the
            ``points (N, C, 2)`` used for localization and the per-scale ``test_scores (S, N, C)``.
        c: inverse regularization strength of :func:`combine_scores`.
        crf_workers: dense-CRF worker processes (0 or 1: in this process); the metrics do not
            depend on it.

    Raises:
        OutputNotWritableError: a folder of the outputs cannot be written in (checked first).
    """
    ensure_writable_dirs(Path(out_path).parent, None if scores_out is None else Path(scores_out).parent)
    fix_mmap_threshold()  # memory bounded by what the metrics keep (wildcat.engine.memory)
    started = time.perf_counter()
    configs = _member_configs(run_dirs)
    base = configs[0]
    train_set = get_dataset(base.dataset, base.data_root, base.train_split)
    test_set = get_dataset(base.dataset, base.data_root, base.test_split)
    tune_set = get_dataset(base.dataset, base.data_root, base.seg_tune_split) if test_set.has_masks else None
    tune_indices = masked_indices(tune_set, base.seg_tune_images) if tune_set is not None else []
    if tune_set is not None and not tune_indices:
        raise CombineError(f"split {base.seg_tune_split!r} of {base.dataset} has no segmentation masks to tune the background on")
    test_masked = set(masked_indices(test_set)) if tune_set is not None else set()
    train_scores, test, tune = [], [], []
    for run_dir, member in zip(run_dirs, configs, strict=True):
        device = resolve_device(member.device)
        model = load_trained(run_dir, member, len(test_set.classes), device)
        train_scores.append(predict(model, train_set, member, device, progress=progress).scores)
        test.append(predict(model, test_set, member, device, keep_maps=test_masked, progress=progress))
        if tune_set is not None:
            tune.append(predict(model, tune_set, member, device, tune_indices, keep_maps=set(tune_indices), progress=progress))
    # One fit, applied to the test images followed by the background-tuning images.
    num_test = len(test_set)
    scored = [np.concatenate([t.scores, u.scores]) for t, u in zip(test, tune, strict=True)] if tune else [t.scores for t in test]
    combined_all = combine_scores(train_scores, train_set.targets, scored, test_set.task, c=c)
    combined, combined_tune = combined_all[:num_test], combined_all[num_test:]
    finest = max(range(len(configs)), key=lambda k: configs[k].image_size_px)
    points = test[finest].points
    test_scores = [t.scores for t in test]
    if scores_out is not None:
        with atomic_path(scores_out) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, scores=combined, points=points, test_scores=np.stack(test_scores))
    with undefined_metrics_reported(test_set, "combine"):
        result = classification_metrics(combined, test_set, base)
        if test_set.has_boxes:
            merge_metrics(result, localization_metrics(combined, points, test_set, base))
            result["protocol"]["loc_points_scale_px"] = configs[finest].image_size_px
    if tune_set is not None:
        merge_metrics(result, _combined_segmentation(test_set, test, combined, tune_set, tune_indices, tune, combined_tune, base,
                                                     progress, crf_workers))
    result["protocol"]["combination"] = {
        "method": "object_bank", "classifier": "logistic_regression_l2", "c": c, "standardized": True,
        "fit_split": base.train_split, "multilabel": "one-vs-rest, difficult left out",
        "multiclass": "multinomial",
    }
    if tune_set is not None:
        result["protocol"]["seg_maps"] = "mean over scales of the peak-normalized upsampled class maps; present classes from the combined scores"
    document = {
        "schema": METRICS_SCHEMA,
        **(identity or {}),
        "settings": _combined_settings(configs),
        **result,
        "num_test_images": len(test_set),
        "provenance": {"config": {"members": [member.to_dict() for member in configs]},
                       "training": [training_provenance(run_dir) for run_dir in run_dirs],
                       "evaluation": evaluation_provenance(test_set, device, started)},
    }
    atomic_write_json(out_path, document)
    return document
