"""``wildcat train``: fit a WildcatNet with checkpoints that make a killed run resumable.

Output folder::

    config.yaml      the resolved ExperimentConfig
    checkpoint.pt    after every epoch: model, optimizer, scheduler, epoch, log, config, segments (who
                     trained which epochs); no RNG state: see below
    train_log.csv    epoch, loss, lr, seconds, images_per_s
    provenance.json  code, environment, device, training split fingerprint, settings, time (wildcat.engine.provenance)
    model.pt         the final weights (written last: its presence means the run is complete)

Every epoch shuffles with a generator seeded by ``(seed, epoch)`` and every image's augmentation
(the flip) is drawn from ``(seed, epoch, index)`` (:class:`EpochSampler`, :class:`SeededItems`):
the random-number state is a function of the epoch, so the checkpoint needs no RNG snapshot, a
run resumed after epoch ``e`` sees exactly the batches an uninterrupted run sees from ``e + 1``
(on the CPU it ends with the same weights), and the batches do not depend on the number of
loader workers, on persistent workers, or on how many processes share them.

Under ``torchrun`` the model is wrapped in DistributedDataParallel (NCCL on CUDA, gloo on the CPU;
:mod:`wildcat.engine.distributed`), each process takes every ``world_size``-th image of the epoch's
order, and rank 0 writes the checkpoint, the log and ``model.pt``. BatchNorm (``batchnorm``:
``auto`` = SyncBatchNorm on several GPUs, per-process statistics otherwise; ``frozen`` = running
statistics) is discussed in ``docs/distributed.md``. On CUDA, mixed precision uses bfloat16
autocast, which needs no gradient scaler, with channels_last and cuDNN benchmark mode.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import math
import random
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from wildcat.data import get_dataset
from wildcat.data.transforms import train_transform
from wildcat.engine import distributed, provenance
from wildcat.engine.config import (
    BATCHNORM_MODES,
    EVALUATION_KEYS,
    RESULT_NEUTRAL_KEYS,
    ExperimentConfig,
    load_yaml,
    save_config,
)
from wildcat.errors import WildcatError, WildcatWarning
from wildcat.io import atomic_torch_save, atomic_write_json, atomic_write_text
from wildcat.nn.model import WildcatNet

CHECKPOINT = "checkpoint.pt"
FINAL_WEIGHTS = "model.pt"
LOG_COLUMNS = ("epoch", "loss", "lr", "seconds", "images_per_s")


class DeviceUnavailableError(WildcatError, RuntimeError):
    """The device asked for is not there."""


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else the CPU (said on stderr: a cluster job on a node whose
    GPU is not visible would otherwise train on the CPU until its time limit)."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if distributed.env_info().main:
            print("wildcat: device auto: torch sees no CUDA device, running on the CPU", file=sys.stderr, flush=True)
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError("device 'cuda' was asked for but torch sees no CUDA device; use --device cpu or auto")
    return torch.device(name)


def build_model(config: ExperimentConfig, num_classes: int) -> WildcatNet:
    """The WildcatNet that ``config`` describes."""
    return WildcatNet(
        num_classes,
        backbone=config.backbone,
        weights=config.weights,
        num_maps=config.num_maps,
        kmax=config.kmax,
        kmin=config.kmin,
        alpha=config.alpha,
        order=config.order,
    )


def multilabel_loss(scores: Tensor, targets: Tensor, difficult: str = "positive") -> Tensor:
    """``MultiLabelSoftMarginLoss`` on targets in {1, 0, -1} (0 = difficult).

    ``difficult`` says what a 0 target becomes: ``"positive"`` (the official code's choice),
    ``"negative"``, or ``"ignore"`` (left out of the mean).
    """
    positive = (targets > 0).float()
    weight = torch.ones_like(scores)
    if difficult == "positive":
        positive = (targets >= 0).float()
    elif difficult == "ignore":
        weight = (targets != 0).float()
    losses = F.binary_cross_entropy_with_logits(scores, positive, weight=weight, reduction="none")
    return (losses.sum(dim=1) / weight.sum(dim=1).clamp(min=1)).mean()


def loss_for(task: str, difficult: str):
    """The paper's losses: multi-label soft margin for VOC/COCO, cross-entropy for scenes."""
    if task == "multilabel":
        return lambda scores, targets: multilabel_loss(scores, targets, difficult)
    return lambda scores, targets: F.cross_entropy(scores, targets)


def build_optimizer(config: ExperimentConfig, model: WildcatNet) -> torch.optim.Optimizer:
    groups = model.param_groups(config.lr, config.lrp)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay)


def build_scheduler(config: ExperimentConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    """Stepped once per batch. ``constant`` is the official code's schedule."""
    total = config.epochs * steps_per_epoch
    if config.schedule == "onecycle":
        max_lrs = [group["lr"] for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lrs, total_steps=total)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def _write_log(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


class EpochSampler(Sampler):
    """The shuffled order of one epoch, a function of ``(seed, epoch)`` only, split over ranks.

    Every rank draws the same permutation; as in :class:`~torch.utils.data.DistributedSampler`,
    it is padded by wrapping around to a multiple of ``world_size`` and rank ``r`` takes items
    ``r, r + world_size, ...``, so global batch ``k`` of ``world_size`` processes with batch ``B``
    holds the items of batch ``k`` of one process with batch ``world_size * B``. The permutation
    is the one the single-process ``DataLoader(shuffle=True, generator=...)`` of earlier versions
    drew (the loader first takes one number from its generator for the workers' base seed).

    Items are ``(index, epoch)`` pairs: :class:`SeededItems` seeds each item's augmentation from
    them, so persistent workers need no reseeding between epochs.
    """

    def __init__(self, num_items: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        if num_items < 1:
            raise ValueError(f"cannot sample from an empty dataset (num_items={num_items})")
        self.num_items, self.seed, self.rank, self.world_size = num_items, seed, rank, world_size
        self.epoch = 0
        self.per_rank = -(-num_items // world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> list[int]:
        """This rank's dataset indices for the current epoch."""
        generator = torch.Generator().manual_seed(_epoch_seed(self.seed, self.epoch))
        torch.empty((), dtype=torch.int64).random_(generator=generator)  # the loader's base-seed draw
        permutation = torch.randperm(self.num_items, generator=generator).tolist()
        total = self.per_rank * self.world_size
        permutation += (permutation * (1 + total // self.num_items))[: total - self.num_items]
        return permutation[self.rank:total:self.world_size]

    def __iter__(self):
        return iter([(index, self.epoch) for index in self.order()])

    def __len__(self) -> int:
        return self.per_rank


class SeededItems(Dataset):
    """``items[(index, epoch)]`` is ``dataset[index]`` with its random augmentation (the flip)
    drawn from a generator seeded by ``(seed, epoch, index)``: the same in any worker, on any
    rank, with or without persistent workers, and after a resume."""

    def __init__(self, dataset: Any, seed: int) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        index, epoch = key
        with torch.random.fork_rng(devices=[]):
            # The CPU generator only: torch.manual_seed would also queue a seed for every lazy
            # accelerator backend, formatting a stack trace each time (0.18 vs 0.02 ms per item).
            torch.default_generator.manual_seed((_epoch_seed(self.seed, epoch) * 1_000_003 + index) % 2**63)
            return self.dataset[index]




def resolve_batchnorm(mode: str, distributed: bool, cuda: bool) -> str:
    """``auto`` -> ``sync`` for a multi-GPU run (the global batch's statistics, as one GPU with
    the whole batch), else ``train`` (per-process statistics, PyTorch's default)."""
    if mode not in BATCHNORM_MODES:
        raise ValueError(f"batchnorm={mode!r}; allowed: {', '.join(BATCHNORM_MODES)}")
    if mode == "auto":
        return "sync" if distributed and cuda else "train"
    if mode == "sync" and distributed and not cuda:
        raise ValueError("batchnorm='sync' needs CUDA (SyncBatchNorm has no CPU kernel); use 'frozen' or 'train' on the CPU")
    return mode


def _train_mode(model: nn.Module, batchnorm: str) -> None:
    model.train()
    if batchnorm == "frozen":  # running statistics are used and kept; the affine weights still train
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


class RunMismatchError(WildcatError):
    """The run folder holds another experiment than the one asked for (resume would mix them)."""


class CheckpointError(WildcatError):
    """A checkpoint that cannot be read."""


class TrainingDivergedError(WildcatError, FloatingPointError):
    """The loss became NaN or infinite: the run is stopped and no ``model.pt`` is written."""


class DivergenceWarning(WildcatWarning):
    """The loss grew far above its start: the run is probably diverging."""


#: ExperimentConfig keys that a resumed run may change: they do not change the trained weights
#: (:data:`wildcat.engine.config.RESULT_NEUTRAL_KEYS`) or are used only by evaluation.
RESUMABLE_CHANGES = frozenset({*RESULT_NEUTRAL_KEYS, *EVALUATION_KEYS})
#: A warning is given when an epoch's mean loss exceeds the first batch's loss this many times.
DIVERGENCE_FACTOR = 10.0


def experiment_changes(requested: ExperimentConfig, recorded: dict[str, Any],
                       epochs_done: int | None = None) -> dict[str, tuple[Any, Any]]:
    """``{key: (recorded, requested)}`` for every key that changes the trained weights and differs
    (a key missing from ``recorded``, an older run's, counts as its default). ``epochs`` may grow
    under the ``constant`` schedule: the first ``epochs_done`` epochs are those of the longer run."""
    wanted, defaults = requested.to_dict(), ExperimentConfig().to_dict()
    changes = {key: (recorded.get(key, defaults[key]), value) for key, value in wanted.items()
               if key not in RESUMABLE_CHANGES and recorded.get(key, defaults[key]) != value}
    if ("epochs" in changes and epochs_done is not None and requested.epochs >= epochs_done
            and requested.schedule == recorded.get("schedule", defaults["schedule"]) == "constant"):
        del changes["epochs"]
    return changes


def _describe(changes: dict[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in changes.items())


def _recorded_config(out_dir: Path, checkpoint: dict[str, Any] | None) -> dict[str, Any] | None:
    """The settings a run folder's weights were trained with: the checkpoint's own record, else
    (a checkpoint of an older version) the folder's config.yaml, else None."""
    if checkpoint is not None and "config" in checkpoint:
        return checkpoint["config"]
    path = out_dir / "config.yaml"
    return load_yaml(path) if path.exists() else None


def _load_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    try:
        return torch.load(path, map_location=device, weights_only=False)
    except Exception as error:  # truncated or foreign file: torch raises RuntimeError, EOFError, UnpicklingError...
        raise CheckpointError(f"{path} cannot be read ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
                              "it is truncated or not a checkpoint of wildcat train: pass --restart to train afresh") from None


def train(config: ExperimentConfig, out_dir: str | Path, resume: bool = True, progress: bool = True,
          restart_if_changed: bool = False) -> Path:
    """Train ``config`` into ``out_dir``; return the path of the final weights.

    With ``resume`` (the default), a ``checkpoint.pt`` left by an interrupted run is continued and
    a complete run (``model.pt`` present) returns at once, but only if it is the same experiment:
    every setting that changes the weights (all but :data:`RESUMABLE_CHANGES`) must equal the
    run's own. Otherwise :class:`RunMismatchError` names the keys, or, with
    ``restart_if_changed`` (the workflow's train rule), the run starts afresh and says so. Under
    ``torchrun`` (``WORLD_SIZE > 1``) each process trains on its share of every batch of
    ``batch_size`` images (the per-process batch: the global batch is ``world_size *
    batch_size``); rank 0 writes every file.
    """
    out_dir = Path(out_dir)
    final = out_dir / FINAL_WEIGHTS
    device = resolve_device(config.device)
    if resume and final.exists():  # a finished run of the same experiment returns at once
        checkpoint = out_dir / CHECKPOINT
        recorded = _recorded_config(out_dir, _load_checkpoint(checkpoint, torch.device("cpu")) if checkpoint.exists() else None)
        if recorded is not None and not experiment_changes(config, recorded):
            if distributed.env_info().main:
                save_config(config, out_dir / "config.yaml")  # evaluation settings may have changed
            return final
    with distributed.session(device.type) as info:
        return _train(config, out_dir, resume, progress, device, info, restart_if_changed)


def _resume_state(config: ExperimentConfig, out_dir: Path, device: torch.device, restart_if_changed: bool,
                  announce: bool) -> dict[str, Any] | None:
    """The checkpoint to continue, or None to train afresh (see :func:`train`)."""
    checkpoint_path = out_dir / CHECKPOINT
    finished = (out_dir / FINAL_WEIGHTS).exists()
    if not checkpoint_path.exists() and not finished:
        return None
    state = _load_checkpoint(checkpoint_path, device) if checkpoint_path.exists() else None
    recorded = _recorded_config(out_dir, state)
    changes = experiment_changes(config, recorded, state["epoch"] if state else None) if recorded is not None else None
    if changes == {}:
        return state
    what = (f"settings differ from the run's ({_describe(changes)})" if changes else
            "the settings its weights were trained with are not recorded (no config.yaml)")
    if not restart_if_changed:
        raise RunMismatchError(f"{out_dir} holds another experiment: {what}; a resume only continues the same "
                               "experiment: pass --restart to train afresh there, or give a new --out")
    if announce:
        print(f"wildcat train: {out_dir}: {what}: starting afresh", file=sys.stderr, flush=True)
    return None


def _train(config: ExperimentConfig, out_dir: Path, resume: bool, progress: bool, device: torch.device,
           info: distributed.DistInfo, restart_if_changed: bool = False) -> Path:
    final = out_dir / FINAL_WEIGHTS
    cuda = device.type == "cuda"
    if cuda and info.distributed:
        device = torch.device("cuda", info.local_rank)
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest kernels
    state = _resume_state(config, out_dir, device, restart_if_changed, info.main) if resume else None
    distributed.barrier()  # every rank has decided (rank 0 removes the old files next)
    if info.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        if state is None:  # afresh: nothing of an earlier run may be taken for this one's
            for name in (FINAL_WEIGHTS, CHECKPOINT, "train_log.csv", provenance.PROVENANCE_FILE):
                (out_dir / name).unlink(missing_ok=True)
    progress = progress and info.main
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed)

    dataset = get_dataset(config.dataset, config.data_root, config.train_split, train_transform(config.image_size_px))
    if config.cache_images:  # decode each image once (small datasets: the synthetic default)
        dataset.load_image_tensor = functools.lru_cache(maxsize=None)(dataset.load_image_tensor)
    model = build_model(config, len(dataset.classes)).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    sampler = EpochSampler(len(dataset), config.seed, info.rank, info.world_size)
    steps_per_epoch = -(-len(sampler) // config.batch_size)
    optimizer = build_optimizer(config, model)
    scheduler = build_scheduler(config, optimizer, steps_per_epoch)
    criterion = loss_for(dataset.task, config.difficult)

    start_epoch, log_rows = 0, []
    checkpoint_path = out_dir / CHECKPOINT
    if state is not None:  # every rank loaded it (a shared file system)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, log_rows = state["epoch"], state["log"]
    if info.main:  # only now that the run is known to be valid: its config, for evaluation
        save_config(config, out_dir / "config.yaml")

    batchnorm = resolve_batchnorm(config.batchnorm, info.distributed, cuda)
    net: nn.Module = model
    if info.distributed:
        if batchnorm == "sync":
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)  # in place: same parameters and state_dict keys
        net = DistributedDataParallel(net, device_ids=[device.index] if cuda else None)
    if config.compile:  # opt-in: no measured gain yet (docs/distributed.md)
        net = torch.compile(net)

    loader = DataLoader(
        SeededItems(dataset, config.seed), batch_size=config.batch_size, sampler=sampler,
        generator=torch.Generator().manual_seed(config.seed), num_workers=config.workers,
        pin_memory=cuda, persistent_workers=config.workers > 0, drop_last=False,
    )
    # Who trained which epochs: a resumed run lists the processes (code, device...) before this one.
    segments = list(state.get("segments", [])) if state is not None else []
    this_process = training_process(config, device, info) if info.main else {}
    first_loss = None  # of this process's first batch: the scale a diverging loss is judged by
    for epoch in range(start_epoch, config.epochs):
        _train_mode(net, batchnorm)
        sampler.set_epoch(epoch)
        started, total_loss, seen = time.perf_counter(), 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False, disable=not progress, unit="batch")
        for step, (images, targets) in enumerate(bar, 1):
            images = images.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            if config.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda and config.amp):
                scores = net(images)
            loss = criterion(scores.float(), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # DDP averages the gradients over ranks: the mean over the global batch
            optimizer.step()
            scheduler.step()
            value = loss.item()
            if not math.isfinite(value):
                raise TrainingDivergedError(
                    f"the loss is {value} at epoch {epoch + 1}, step {step} (lr {config.lr:g}): the run diverged; "
                    f"no {FINAL_WEIGHTS} written; lower lr or check the settings, then train again with --restart")
            first_loss = value if first_loss is None else first_loss
            total_loss += value * images.shape[0]
            seen += images.shape[0]
            rate = info.world_size * seen / max(time.perf_counter() - started, 1e-9)
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", img_s=f"{rate:.0f}")
        total_loss, seen = distributed.all_reduce_sum(np.array([total_loss, seen], np.float64)).tolist()
        seconds = time.perf_counter() - started
        if info.main and first_loss is not None and total_loss / seen > DIVERGENCE_FACTOR * first_loss:
            warnings.warn(f"{out_dir}: the mean loss of epoch {epoch + 1} is {total_loss / seen:.4g}, over "
                          f"{DIVERGENCE_FACTOR:g} x the first batch's {first_loss:.4g}: the run is diverging "
                          f"(lr {config.lr:g} too high?)", DivergenceWarning, stacklevel=2)
        log_rows.append({
            "epoch": epoch + 1, "loss": round(total_loss / seen, 6), "lr": optimizer.param_groups[-1]["lr"],
            "seconds": round(seconds, 3), "images_per_s": round(seen / seconds, 1),
        })
        if info.main:
            atomic_torch_save({
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "epoch": epoch + 1, "log": log_rows, "config": config.to_dict(),
                "segments": [*segments, {**this_process, "epochs": [start_epoch + 1, epoch + 1]}],
            }, checkpoint_path)
            _write_log(out_dir / "train_log.csv", log_rows)
        if progress:
            tqdm.write(f"epoch {epoch + 1}/{config.epochs}: loss {total_loss / seen:.4f}, {seen / seconds:.0f} images/s")

    if info.main:
        if start_epoch < config.epochs:
            segments.append({**this_process, "epochs": [start_epoch + 1, config.epochs]})
        write_training_provenance(out_dir, config, dataset, segments, log_rows)
        atomic_torch_save(model.state_dict(), final)
    distributed.barrier()  # no rank returns before model.pt exists
    return final


def training_process(config: ExperimentConfig, device: torch.device, info: distributed.DistInfo) -> dict[str, Any]:
    """What this process trains with: the environment (code, lock file, versions, CPU) and the device."""
    precision = "bfloat16 autocast" if device.type == "cuda" and config.amp else "float32"
    return {**provenance.environment(), "device": provenance.device_record(device, info.world_size, precision)}


def write_training_provenance(out_dir: Path, config: ExperimentConfig, dataset: Any, segments: list[dict[str, Any]],
                              log_rows: list[dict[str, Any]]) -> None:
    """``provenance.json`` of the run folder: the processes that trained it (``segments``, each with
    its ``epochs`` [first, last]; one unless the run was resumed), the last of them also at the top
    level, the training split's fingerprint and the digests its data was verified against, the
    settings and the summed epoch times. A run resumed from a checkpoint of an older version, which
    recorded none, has ``segments`` only for the epochs trained since."""
    latest = segments[-1] if segments else {}
    atomic_write_json(out_dir / provenance.PROVENANCE_FILE, {
        **{key: value for key, value in latest.items() if key != "epochs"},
        "segments": segments,
        "train_split_sha256": provenance.dataset_fingerprint(dataset),
        "data_checksums": provenance.data_checksums(dataset),
        "config": config.to_dict(),
        "wall_s": round(sum(row["seconds"] for row in log_rows), 3),
        "epochs": len(log_rows),
    })


def load_trained(run_dir: str | Path, config: ExperimentConfig, num_classes: int, device: torch.device) -> WildcatNet:
    """The trained model of a finished run folder, built from ``config``, the folder's own
    (``config.yaml``, which the caller has read)."""
    run_dir = Path(run_dir)
    weights = run_dir / FINAL_WEIGHTS
    if not weights.exists():
        raise FileNotFoundError(f"{weights} does not exist: the run in {run_dir} has not finished; run `wildcat train` again to resume it")
    # The trained weights replace the backbone's: do not download the pretrained ones again.
    model = build_model(dataclasses.replace(config, weights=None), num_classes)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.to(device).eval()
