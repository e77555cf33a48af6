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
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wildcat.errors import WildcatError
from wildcat.io import atomic_write_text
from wildcat.nn.regions import resolve_region_count

#: Feature extractors (wildcat.nn.backbones): torchvision ResNets, and a compact CNN for the CPU default.
BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "cnn6")
#: Output stride of each backbone: its class maps are ``ceil(image_size_px / stride)`` regions a side.
BACKBONE_STRIDES = {**{name: 32 for name in BACKBONES if name.startswith("resnet")}, "cnn6": 8}
DATASETS = ("synthetic", "voc2007", "voc2012", "voc2012_action", "coco2014", "mit67", "scene15")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "onecycle", "cosine")
DEVICES = ("auto", "cpu", "cuda")
AP_MODES = ("voc07", "voc12", "raw")
DIFFICULT_LABELS = ("positive", "ignore", "negative")
#: BatchNorm under training (wildcat.engine.train): auto = SyncBatchNorm on several GPUs, else per process.
BATCHNORM_MODES = ("auto", "train", "frozen", "sync")
#: Architecture orders (paper Table 5): WILDCAT's conv then pooling, GAP-style pooling then conv.
ORDERS = ("conv-pool", "pool-conv")


class ConfigError(WildcatError, ValueError):
    """A bad config key or value (the message is one line and says what is allowed); ``key``
    names the offending key where there is one."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


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
    weights: str | None = "imagenet"
    num_maps: int = 4
    kmax: int | float | str = 20
    kmin: int | float | str | None = None
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
    # Dense CRF; wildcat.eval.crf.CRFParams takes its defaults from these (its docstring says whose they are).
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
#: The keys that change no result: loader processes, where the data lives, the image cache.
RESULT_NEUTRAL_KEYS = ("workers", "data_root", "cache_images")
#: The keys that only evaluation reads (the test split and the protocol): they do not change training.
EVALUATION_KEYS = ("test_split", *list(FIELDS)[list(FIELDS).index("ap_mode"):])


def _fail(key: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"config key {key!r}: bad value {value!r}; allowed: {allowed}", key)


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
        if not _is_finite_number(value) or not value >= 0:
            _fail(key, value, "a finite number >= 0")
    if not _is_finite_number(config.seg_unary_scale) or not config.seg_unary_scale > 0:
        _fail("seg_unary_scale", config.seg_unary_scale, "a finite number > 0")
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
            if not isinstance(value, str) and not _is_finite_number(value):
                raise ValueError(f"{key}={value!r} is not a finite number")
            count = resolve_region_count(value, 10**6, key)
        except ValueError:
            _fail(key, value, "an int >= 1, a fraction in (0, 1) or 'all'" + (" or null" if key == "kmin" else ""))
        if key == "kmax" and count == 0:
            _fail(key, value, "an int >= 1, a fraction in (0, 1) or 'all'")
    _check_regions(config)
    grid = config.seg_background_grid
    if not isinstance(grid, list) or not grid or not all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in grid):
        _fail("seg_background_grid", grid, "a non-empty list of numbers in [0, 1]")
    if config.backbone == "cnn6" and config.weights is not None:
        _fail("weights", config.weights, "null for backbone 'cnn6' (trained from scratch)")


def _is_finite_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def class_map_side(backbone: str, image_size_px: int) -> int:
    """The side, in regions, of the class maps of ``backbone`` at ``image_size_px`` (each of its
    stride-2 layers, padded, gives ``ceil(n / 2)``)."""
    return -(-image_size_px // BACKBONE_STRIDES[backbone])


def _check_regions(config: ExperimentConfig) -> None:
    """The pooling's ``k+`` and ``k-`` (paper Eq. 3) must fit the class maps: a count larger than
    the maps' ``H * W`` regions would be clamped without a word, and the highest and lowest
    regions must not overlap where the negative term is used (``alpha > 0``, ``k- > 0``)."""
    side = class_map_side(config.backbone, config.image_size_px)
    regions = side * side
    where = (f"class maps of {side}x{side} = {regions} regions ({config.backbone} at {config.image_size_px} px, "
             f"stride {BACKBONE_STRIDES[config.backbone]})")
    kmin = config.kmax if config.kmin is None else config.kmin
    for key, value in (("kmax", config.kmax), ("kmin", kmin)):
        if not isinstance(value, str) and value >= 1 and value > regions:
            raise ConfigError(f"config key {key!r}: {value!r} regions do not fit the {where}; "
                              "give a larger image_size_px or a smaller count (or a fraction)", key)
    highest = resolve_region_count(config.kmax, regions, "kmax")
    lowest = resolve_region_count(kmin, regions, "kmin")
    if config.alpha > 0 and lowest > 0 and highest + lowest > regions:
        raise ConfigError(f"config keys 'kmax' and 'kmin': the {highest} highest and {lowest} lowest regions overlap "
                          f"in the {where}; give a larger image_size_px, smaller kmax/kmin, or alpha 0", "kmax")


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
        raise ConfigError(f"unknown config key {unknown[0]!r} in {source}; valid keys: {', '.join(FIELDS)}", unknown[0])
    coerced = {key: _coerce(key, value) for key, value in values.items()}
    for key in ("alpha", "lr", "lrp", "momentum", "weight_decay", "loc_tolerance_px"):
        if isinstance(coerced.get(key), int) and not isinstance(coerced.get(key), bool):
            coerced[key] = float(coerced[key])
    return ExperimentConfig(**coerced)


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _mapping_without_repeats(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: merged keys may be overridden
            continue
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice in one mapping", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_repeats)


def load_yaml(path: str | os.PathLike[str]) -> Any:
    """The content of a YAML file; a missing file, invalid YAML or a repeated key is a :class:`ConfigError`."""
    try:
        return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_StrictLoader)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"config file {path} is not valid YAML{line}: {problem}") from None


def load_config(path: str | os.PathLike[str] | None = None, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read a YAML config (optional) and apply ``overrides`` on top of it."""
    values: dict[str, Any] = {}
    source = "the command line"
    if path is not None:
        source = str(path)
        loaded = load_yaml(path)
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of keys to values")
        values.update(loaded or {})
    values.update(overrides or {})
    return make_config(values, source)


def save_config(config: ExperimentConfig, path: str | os.PathLike[str]) -> None:
    """Write the resolved config as YAML (atomically)."""
    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
