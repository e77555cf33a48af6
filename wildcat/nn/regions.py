"""Region counts ``k+`` and ``k-`` of WILDCAT's spatial pooling (paper Section 3.3, Eq. 3).

Kept free of torch so that configs can be validated without it.
"""

from __future__ import annotations

import numbers

#: A region count: an int >= 1 (a count), a float in (0, 1) (a fraction of the ``H*W``
#: regions), a float >= 1 (a count, as in the official code), or ``"all"`` (every region).
RegionCount = int | float | str


def resolve_region_count(k: RegionCount, num_regions: int, name: str = "k") -> int:
    """Turn a ``k+``/``k-`` specification into a number of regions.

    Args:
        k: ``"all"`` (every region); an int >= 0 (a count, clamped to ``num_regions``);
            a float in (0, 1) (a fraction: ``max(1, round(k * num_regions))``, with Python's
            round-half-to-even); a float >= 1 (read as a count). ``0`` means no region.
        num_regions: ``H * W``, the number of regions of a class map.
        name: the argument's name, used in error messages.

    Returns:
        The number of regions, in ``[0, num_regions]``.

    Raises:
        ValueError: ``k`` is negative, not a number, or a string other than ``"all"``.
    """
    if isinstance(k, str):
        if k == "all":
            return num_regions
        raise ValueError(f"{name}={k!r} is not a region count: use an int >= 1, a fraction in (0, 1) or 'all'")
    if isinstance(k, bool) or not isinstance(k, numbers.Real):
        raise ValueError(f"{name}={k!r} is not a number: use an int >= 1, a fraction in (0, 1) or 'all'")
    if k != k or k < 0:  # NaN or negative
        raise ValueError(f"{name}={k!r} must be >= 0 (an int count, a fraction in (0, 1) or 'all')")
    if isinstance(k, numbers.Integral) or k >= 1 or k == 0:
        return min(int(k), num_regions)
    return max(1, round(float(k) * num_regions))
