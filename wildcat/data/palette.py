"""The PASCAL VOC colour map of the segmentation masks (``SegmentationClass/<id>.png``).

Pure Python, so that the synthetic generator (:mod:`wildcat.data.synthetic`), which writes VOC
masks, does not import the torch-based loaders of :mod:`wildcat.data.voc`.
"""

from __future__ import annotations

__all__ = ["voc_palette"]


def voc_palette() -> list[int]:
    """The PASCAL VOC colour map (256 RGB triples, flattened), as in VOC's ``VOClabelcolormap``."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette
