"""wildcat-bench: a reproducibility suite for WILDCAT (Durand, Mordan, Thome, Cord, CVPR 2017)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("wildcat-bench")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
