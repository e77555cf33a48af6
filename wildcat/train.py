"""``wildcat train``: fit a WildcatNet with checkpoints that make a killed run resumable.

Output folder::

    config.yaml      the resolved ExperimentConfig
    checkpoint.pt    after every epoch: model, optimizer, scheduler, RNG states, epoch
    train_log.csv    epoch, loss, lr, seconds, images_per_s
    model.pt         the final weights (written last: its presence means the run is complete)

Every epoch draws its shuffling and augmentation from generators seeded by ``(seed, epoch)``
(the random-number state is a function of the epoch, so the checkpoint needs no RNG snapshot): a
run resumed after epoch ``e`` sees exactly the batches an uninterrupted run sees from ``e + 1``,
and on the CPU ends with the same weights. On CUDA, mixed precision uses bfloat16 autocast, which
needs no gradient scaler.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from wildcat.config import ExperimentConfig, load_config, save_config
from wildcat.data import get_dataset
from wildcat.data.transforms import train_transform
from wildcat.io import atomic_torch_save, atomic_write_text
from wildcat.model import WildcatNet

CHECKPOINT = "checkpoint.pt"
FINAL_WEIGHTS = "model.pt"
LOG_COLUMNS = ("epoch", "loss", "lr", "seconds", "images_per_s")


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA device; use --device cpu or auto")
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


def train(config: ExperimentConfig, out_dir: str | Path, resume: bool = True, progress: bool = True) -> Path:
    """Train ``config`` into ``out_dir``; return the path of the final weights.

    With ``resume`` (the default), a ``checkpoint.pt`` left by an interrupted run is continued;
    a complete run (``model.pt`` present) returns at once.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / FINAL_WEIGHTS
    if resume and final.exists():
        return final
    save_config(config, out_dir / "config.yaml")
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed)

    dataset = get_dataset(config.dataset, config.data_root, config.train_split, train_transform(config.image_size_px))
    if config.cache_images:  # decode each image once (small datasets: the synthetic default)
        dataset.load_image = functools.lru_cache(maxsize=None)(dataset.load_image)
    model = build_model(config, len(dataset.classes)).to(device)
    cuda = device.type == "cuda"
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    steps_per_epoch = -(-len(dataset) // config.batch_size)
    optimizer = build_optimizer(config, model)
    scheduler = build_scheduler(config, optimizer, steps_per_epoch)
    criterion = loss_for(dataset.task, config.difficult)

    start_epoch, log_rows = 0, []
    checkpoint_path = out_dir / CHECKPOINT
    if resume and checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, log_rows = state["epoch"], state["log"]

    for epoch in range(start_epoch, config.epochs):
        model.train()
        torch.manual_seed(_epoch_seed(config.seed, epoch))  # augmentation in the main process
        generator = torch.Generator().manual_seed(_epoch_seed(config.seed, epoch))
        loader = DataLoader(
            dataset, batch_size=config.batch_size, shuffle=True, generator=generator,
            num_workers=config.workers, pin_memory=cuda, persistent_workers=False, drop_last=False,
        )
        started, total_loss, seen = time.perf_counter(), 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False, disable=not progress, unit="batch")
        for images, targets in bar:
            images = images.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            if config.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda and config.amp):
                scores = model(images)
            loss = criterion(scores.float(), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * images.shape[0]
            seen += images.shape[0]
            rate = seen / max(time.perf_counter() - started, 1e-9)
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", img_s=f"{rate:.0f}")
        seconds = time.perf_counter() - started
        log_rows.append({
            "epoch": epoch + 1, "loss": round(total_loss / seen, 6), "lr": optimizer.param_groups[-1]["lr"],
            "seconds": round(seconds, 3), "images_per_s": round(seen / seconds, 1),
        })
        atomic_torch_save({
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "epoch": epoch + 1, "log": log_rows,
        }, checkpoint_path)
        _write_log(out_dir / "train_log.csv", log_rows)
        if progress:
            tqdm.write(f"epoch {epoch + 1}/{config.epochs}: loss {total_loss / seen:.4f}, {seen / seconds:.0f} images/s")

    atomic_torch_save(model.state_dict(), final)
    return final


def load_trained(run_dir: str | Path, num_classes: int, device: torch.device) -> tuple[WildcatNet, ExperimentConfig]:
    """The model and config of a finished run folder."""
    run_dir = Path(run_dir)
    config = load_config(run_dir / "config.yaml")
    weights = run_dir / FINAL_WEIGHTS
    if not weights.exists():
        raise FileNotFoundError(f"{weights} does not exist: the run in {run_dir} has not finished; run `wildcat train` again to resume it")
    # The trained weights replace the backbone's: do not download the pretrained ones again.
    model = build_model(dataclasses.replace(config, weights=None), num_classes)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.to(device).eval(), config
