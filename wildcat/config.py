"""One experiment = one :class:`ExperimentConfig`: data, model, optimisation and evaluation.

The defaults are the paper's recipe for real data (Section 4: ResNet-101, ImageNet weights,
448 px warp, M = 4, alpha = 0.7, k+ = k- = 20 of 196 regions, SGD with momentum, all layers
fine-tuned). The paper gives neither learning rate, batch size, epochs nor weight decay; the
values below are those of the official code (lr 0.01, lrp 0.1, momentum 0.9, weight decay
1e-4, batch 16, constant learning rate). ``config/*.yaml`` override them per experiment.

A config is read from YAML and/or CLI options; an unknown key or a bad value raises
:class:`ConfigError` with a one-line message naming the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from wildcat.errors import WildcatError
from wildcat.io import atomic_write_text
from wildcat.regions import resolve_region_count

#: Feature extractors (wildcat.backbones): torchvision ResNets, and a compact CNN for the CPU default.
BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "cnn6")
DATASETS = ("synthetic", "voc2007", "voc2012", "voc2012_action", "coco2014", "mit67", "scene15")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "onecycle", "cosine")
DEVICES = ("auto", "cpu", "cuda")
AP_MODES = ("voc07", "voc12", "raw")
DIFFICULT_LABELS = ("positive", "ignore", "negative")
#: BatchNorm under training (wildcat.train): auto = SyncBatchNorm on several GPUs, else per process.
BATCHNORM_MODES = ("auto", "train", "frozen", "sync")
#: Architecture orders (paper Table 5): WILDCAT's conv then pooling, GAP-style pooling then conv.
ORDERS = ("conv-pool", "pool-conv")


class ConfigError(WildcatError, ValueError):
    """A bad config key or value (the message is one line and says what is allowed)."""


@dataclass
class ExperimentConfig:
    """Everything one training + evaluation run needs (see the module docstring for sources)."""

    # Data.
    dataset: str = "voc2007"
    data_root: str = "data"
    train_split: str = "trainval"
    test_split: str = "test"
    image_size_px: int = 448
    # Model (paper Section 3).
    backbone: str = "resnet101"
    weights: Union[str, None] = "imagenet"
    num_maps: int = 4
    kmax: Union[int, float, str] = 20
    kmin: Union[int, float, str, None] = None
    alpha: float = 0.7
    order: str = "conv-pool"
    # Optimisation.
    optimizer: str = "sgd"
    lr: float = 0.01
    lrp: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "constant"
    epochs: int = 20
    batch_size: int = 16
    difficult: str = "positive"
    seed: int = 0
    workers: int = 4
    cache_images: bool = False
    batchnorm: str = "auto"
    compile: bool = False
    device: str = "auto"
    amp: bool = True
    channels_last: bool = True
    # Evaluation (paper Section 4.3; protocols in docs/protocols.md).
    ap_mode: str = "voc07"
    loc_tolerance_px: float = 18.0
    seg_tune_split: str = "train"
    seg_tune_images: int = 200
    seg_background_grid: list[float] = field(default_factory=lambda: [0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    seg_unary_scale: float = 5.0
    crf_iterations: int = 10
    crf_gaussian_sxy: float = 3.0
    crf_gaussian_compat: float = 3.0
    crf_bilateral_sxy: float = 80.0
    crf_bilateral_srgb: float = 13.0
    crf_bilateral_compat: float = 10.0

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(ExperimentConfig)}


def _fail(key: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"config key {key!r}: bad value {value!r}; allowed: {allowed}")


def validate(config: ExperimentConfig) -> None:
    """Raise :class:`ConfigError` on the first bad value."""
    choices = {
        "dataset": DATASETS, "backbone": BACKBONES, "optimizer": OPTIMIZERS, "schedule": SCHEDULES,
        "device": DEVICES, "ap_mode": AP_MODES, "difficult": DIFFICULT_LABELS, "order": ORDERS,
        "batchnorm": BATCHNORM_MODES,
    }
    for key, allowed in choices.items():
        if getattr(config, key) not in allowed:
            _fail(key, getattr(config, key), " | ".join(allowed))
    positive_ints = ("image_size_px", "num_maps", "epochs", "batch_size", "crf_iterations", "seg_tune_images")
    for key in positive_ints:
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            _fail(key, value, "an integer >= 1")
    non_negative = ("alpha", "lr", "lrp", "momentum", "weight_decay", "loc_tolerance_px",
                    "crf_gaussian_sxy", "crf_gaussian_compat", "crf_bilateral_sxy", "crf_bilateral_srgb",
                    "crf_bilateral_compat")
    for key in non_negative:
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            _fail(key, value, "a number >= 0")
    if isinstance(config.seg_unary_scale, bool) or not isinstance(config.seg_unary_scale, (int, float)) or not config.seg_unary_scale > 0:
        _fail("seg_unary_scale", config.seg_unary_scale, "a number > 0")
    for key in ("seed", "workers"):
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            _fail(key, value, "an integer >= 0")
    for key in ("amp", "channels_last", "cache_images", "compile"):
        if not isinstance(getattr(config, key), bool):
            _fail(key, getattr(config, key), "true | false")
    for key in ("kmax", "kmin"):
        value = getattr(config, key)
        if key == "kmin" and value is None:
            continue
        try:
            count = resolve_region_count(value, 10**6, key)
        except ValueError:
            _fail(key, value, "an int >= 1, a fraction in (0, 1) or 'all'" + (" or null" if key == "kmin" else ""))
        if key == "kmax" and count == 0:
            _fail(key, value, "an int >= 1, a fraction in (0, 1) or 'all'")
    grid = config.seg_background_grid
    if not isinstance(grid, list) or not grid or not all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in grid):
        _fail("seg_background_grid", grid, "a non-empty list of numbers in [0, 1]")
    if config.backbone == "cnn6" and config.weights is not None:
        _fail("weights", config.weights, "null for backbone 'cnn6' (trained from scratch)")


def _coerce(key: str, value: Any) -> Any:
    """Parse a CLI string into the field's type (YAML syntax: ``0.7``, ``all``, ``null``, ``[0.2, 0.4]``)."""
    if not isinstance(value, str):
        return value
    parsed = yaml.safe_load(value)
    if key in ("weights", "dataset", "data_root", "train_split", "test_split", "seg_tune_split") and parsed is not None:
        return value
    return parsed


def make_config(values: dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Build a config from a mapping, rejecting unknown keys (with the list of valid ones)."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(
            f"unknown config key {unknown[0]!r} in {source}; valid keys: {', '.join(FIELDS)}"
        )
    coerced = {key: _coerce(key, value) for key, value in values.items()}
    for key in ("alpha", "lr", "lrp", "momentum", "weight_decay", "loc_tolerance_px"):
        if isinstance(coerced.get(key), int) and not isinstance(coerced.get(key), bool):
            coerced[key] = float(coerced[key])
    return ExperimentConfig(**coerced)


def load_config(path: str | os.PathLike[str] | None = None, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read a YAML config (optional) and apply ``overrides`` on top of it."""
    values: dict[str, Any] = {}
    source = "the command line"
    if path is not None:
        source = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"config file {path} is not valid YAML: {str(error).splitlines()[0]}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of keys to values")
        values.update(loaded or {})
    values.update(overrides or {})
    return make_config(values, source)


def save_config(config: ExperimentConfig, path: str | os.PathLike[str]) -> None:
    """Write the resolved config as YAML (atomically)."""
    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
