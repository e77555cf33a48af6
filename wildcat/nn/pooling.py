"""WILDCAT pooling (Durand et al., CVPR 2017, Section 3).

Two poolings turn the ``M * C`` maps of the multi-map transfer layer into ``C`` class scores:

* :func:`class_wise_pool` (Section 3.2): the mean of the ``M`` modality maps of each class,
  ``z_c = 1/M * sum_m z_{c,m}``.
* :func:`wildcat_pool2d` (Section 3.3, Eq. 3): the spatial pooling that keeps the ``k+`` highest
  and the ``k-`` lowest regions of each class map,
  ``s_c = mean(top k+ of z_c) + alpha * mean(bottom k- of z_c)``.
  Gradients flow only through the selected regions.

The poolings of Table 1 of the paper are spellings of the same layer:
max pooling (GMP) is ``kmax=1, kmin=0``; global average pooling (GAP) is ``kmax="all", kmin=0``;
WELDON is ``kmax=kmin=k, alpha=1`` with ``M = 1``.
"""

from __future__ import annotations

import numbers

from torch import Tensor, nn

from wildcat.nn.regions import RegionCount, resolve_region_count

__all__ = [
    "RegionCount",
    "resolve_region_count",
    "class_wise_pool",
    "ClassWisePool",
    "wildcat_pool2d",
    "WildcatPool2d",
]


def class_wise_pool(x: Tensor, num_maps: int) -> Tensor:
    """Average the ``M`` modality maps of each class (paper Section 3.2).

    Args:
        x: ``(N, C * M, H, W)`` maps; class ``c`` owns channels ``[c * M, (c + 1) * M)``.
        num_maps: ``M``, the number of maps per class.

    Returns:
        ``(N, C, H, W)`` class maps.

    Raises:
        ValueError: the channel count is not divisible by ``num_maps``.
    """
    if x.dim() != 4:
        raise ValueError(f"class_wise_pool expects (N, C*M, H, W) maps, got shape {tuple(x.shape)}")
    if not isinstance(num_maps, numbers.Integral) or num_maps < 1:
        raise ValueError(f"num_maps must be an int >= 1, got {num_maps!r}")
    n, channels, h, w = x.shape
    if channels % num_maps:
        raise ValueError(
            f"class_wise_pool: {channels} channels are not divisible by num_maps={num_maps}"
        )
    return x.view(n, channels // num_maps, num_maps, h, w).mean(dim=2)


class ClassWisePool(nn.Module):
    """Module form of :func:`class_wise_pool`: ``(N, C*M, H, W) -> (N, C, H, W)``."""

    def __init__(self, num_maps: int) -> None:
        super().__init__()
        if not isinstance(num_maps, numbers.Integral) or num_maps < 1:
            raise ValueError(f"num_maps must be an int >= 1, got {num_maps!r}")
        self.num_maps = int(num_maps)

    def forward(self, x: Tensor) -> Tensor:
        return class_wise_pool(x, self.num_maps)

    def extra_repr(self) -> str:
        return f"num_maps={self.num_maps}"


def _check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or alpha != alpha or alpha < 0:
        raise ValueError(f"alpha={alpha!r} must be a number >= 0")
    return float(alpha)


def wildcat_pool2d(
    x: Tensor,
    kmax: RegionCount = 1,
    kmin: RegionCount | None = None,
    alpha: float = 1.0,
) -> Tensor:
    """WILDCAT spatial pooling (paper Eq. 3).

    ``s_c = 1/k+ * sum(top k+ regions of z_c) + alpha * 1/k- * sum(bottom k- regions of z_c)``.
    There is no division by 2 (the official code halves the sum; see
    ``docs/official-code-differences.md``).

    The gradient of ``s_c`` is ``1/k+`` on each of the ``k+`` selected highest regions,
    ``alpha/k-`` on each of the ``k-`` lowest ones (the two add where the sets overlap) and zero
    elsewhere: ``torch.topk`` selects the regions and autograd flows through the gathered values.

    Args:
        x: ``(N, C, H, W)`` class maps.
        kmax: ``k+`` (see :func:`resolve_region_count`).
        kmin: ``k-``; ``None`` means ``kmin = kmax``. ``0`` drops the negative term.
        alpha: weight of the lowest regions, >= 0. ``0`` drops the negative term.

    Returns:
        ``(N, C)`` class scores.
    """
    if x.dim() != 4:
        raise ValueError(f"wildcat_pool2d expects (N, C, H, W) maps, got shape {tuple(x.shape)}")
    alpha = _check_alpha(alpha)
    n, c, h, w = x.shape
    num_regions = h * w
    n_max = resolve_region_count(kmax, num_regions, "kmax")
    n_min = resolve_region_count(kmax if kmin is None else kmin, num_regions, "kmin")
    if n_max < 1:
        raise ValueError(f"kmax={kmax!r} selects no region: use an int >= 1, a fraction in (0, 1) or 'all'")
    flat = x.reshape(n, c, num_regions)
    if n_max == num_regions:
        scores = flat.mean(dim=2)
    else:
        scores = flat.topk(n_max, dim=2, sorted=False).values.mean(dim=2)
    if n_min > 0 and alpha > 0:
        if n_min == num_regions:
            lowest = flat.mean(dim=2)
        else:
            lowest = flat.topk(n_min, dim=2, largest=False, sorted=False).values.mean(dim=2)
        scores = scores + alpha * lowest
    return scores


class WildcatPool2d(nn.Module):
    """Module form of :func:`wildcat_pool2d`: ``(N, C, H, W) -> (N, C)``.

    Args:
        kmax: ``k+``, the number (or fraction) of highest regions kept.
        kmin: ``k-``, the number (or fraction) of lowest regions kept; ``None``: same as ``kmax``.
        alpha: weight of the lowest regions (paper Eq. 3).
    """

    def __init__(self, kmax: RegionCount = 1, kmin: RegionCount | None = None, alpha: float = 1.0) -> None:
        super().__init__()
        # Validate eagerly so that a bad config fails at construction, not at the first batch.
        resolve_region_count(kmax, 1, "kmax")
        if kmin is not None:
            resolve_region_count(kmin, 1, "kmin")
        self.kmax = kmax
        self.kmin = kmin
        self.alpha = _check_alpha(alpha)

    def forward(self, x: Tensor) -> Tensor:
        return wildcat_pool2d(x, self.kmax, self.kmin, self.alpha)

    def extra_repr(self) -> str:
        return f"kmax={self.kmax!r}, kmin={self.kmin!r}, alpha={self.alpha}"
