"""wildcat-bench: a reproducibility suite for WILDCAT (Durand, Mordan, Thome, Cord, CVPR 2017).

The package is cut by layer: ``wildcat.nn`` (the model of Section 3), ``wildcat.data`` (datasets,
downloads, the synthetic generator), ``wildcat.engine`` (experiment config, training, provenance),
``wildcat.eval`` (metrics, segmentation, evaluation, multi-scale combination), ``wildcat.report``
(tables, figures, reproduction verdicts) and ``wildcat.grid`` (a workflow config's runs).

The model and its pooling layers are also importable from here (``from wildcat import
WildcatNet``); they load torch only when first used, so that the torch-free modules
(``wildcat.grid``, ``wildcat.engine.config``) stay light.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("wildcat-bench")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

_LAZY = {
    "WildcatNet": "wildcat.nn.model",
    "WildcatPool2d": "wildcat.nn.pooling",
    "wildcat_pool2d": "wildcat.nn.pooling",
    "ClassWisePool": "wildcat.nn.pooling",
    "class_wise_pool": "wildcat.nn.pooling",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    """Import the model's public names on first use (PEP 562)."""
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'wildcat' has no attribute {name!r}")
