"""Image transforms as in the official WILDCAT code (durandtibo/wildcat.pytorch, ``engine.py``,
``Engine.init_learning``; ``util.py``, ``Warp``):

* train: ``Warp(image_size)`` (PIL ``resize((s, s), BILINEAR)``: the whole image is warped to a
  square, no crop, aspect ratio not kept), ``RandomHorizontalFlip()``, ``ToTensor()``,
  ``Normalize(mean, std)`` with the ImageNet statistics of the ResNet backbone
  (``models.py``: ``image_normalization_mean = [0.485, 0.456, 0.406]``, ``std = [0.229, 0.224, 0.225]``);
* eval: the same without the flip.

The paper (Sec. 4) also says images are warped to a square ("we warp the image to a square").

Two inputs, one result. :func:`train_transform` and :func:`eval_transform` take either a PIL RGB
image or a ``(3, H, W)`` uint8 tensor of the same pixels. For a tensor the warp is
``torchvision.transforms.v2.functional.resize`` (bilinear, ``antialias=True``: the same filter
as PIL's, whose bilinear resize widens the kernel when it shrinks) and the flip and the
normalisation run on tensors. Because they declare ``accepts_uint8_tensor``,
:meth:`wildcat.data.base.ImageDataset.__getitem__` hands them the JPEG decoded by
``torchvision.io.decode_jpeg`` on the CPU rather than a PIL image: that is the training default,
with no setting to choose it (a transform without the attribute still gets the PIL image).

Why: read + decode + warp to 448 x 448 + flip + normalise on one core (``torch.set_num_threads(1)``,
as in a DataLoader worker), on a shared 2-core AMD EPYC VM, torch 2.14.1, torchvision 0.29.1,
Pillow 13.0, median of 7 alternating rounds:

======================================================  ================  =================
path                                                    ``dataset[i]``    transform only,
                                                        (throughput.py)   generated / photos
======================================================  ================  =================
PIL decode + PIL ``Warp`` + to tensor + ``Normalize``    124 / s           142 / s, 146 / s
``decode_jpeg`` + tensor warp, flip, normalise           194 / s           252 / s, 254 / s
======================================================  ================  =================

``dataset[i]``: ``benchmarks/throughput.py`` (16 generated 500 x 375 JPEGs of quality 90, 74 kB;
1.56x, the median of the per-round ratios). Transform only: an earlier measurement with the bytes
already in memory, the PIL path being the former ``torchvision.transforms`` (v1) pipeline and the
tensor path the same steps as v2 functional calls, on those JPEGs and on three photographs
(sklearn's ``china.jpg``, ``flower.jpg``, matplotlib's ``grace_hopper.jpg``) resized to
500 x 375 (54 kB): 1.75x. The PIL resize is the slow step (PIL decode + PIL warp +
``pil_to_tensor`` + tensor normalise: 138-142 / s); on tensors, the normalisation is the largest
cost (about 1.8 of 3.6 ms).

How close: ``decode_jpeg`` gives exactly PIL's pixels (both are libjpeg-turbo; max difference 0
on the photographs above and on generated grayscale and CMYK JPEGs); after the warp the two paths
differ by at most 1 grey level of 255 (rounding of the uint8 resize), that is at most 0.0175 after
normalisation (1 / 255 / 0.224): on ``china.jpg`` (640 x 427) warped to 448 px, max 0.0175 on
0.012 % of the values; on ``flower.jpg``, 0. The random flip draws ``torch.rand(1)`` once per
image in both paths, so a seeded run flips the same images as before.

Caveat: torchvision 0.29 deprecates ``torchvision.io``'s image decoding (a ``DeprecationWarning``
points to TorchCodec). If a release removes ``decode_jpeg``, :mod:`wildcat.data.base` falls back
to PIL for every file: slower, same pixels.
"""

from __future__ import annotations

import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Warp", "ImageTransform", "train_transform", "eval_transform"]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


class Warp:
    """Resize an image to ``(image_size_px, image_size_px)``, ignoring its aspect ratio.

    Args:
        image_size_px: the side of the square output, in pixels (448 in the paper).
        interpolation: a PIL resampling filter (bilinear, as the official code).

    A PIL image is resized by PIL; a ``(..., C, H, W)`` tensor by
    ``torchvision.transforms.v2.functional.resize`` with ``antialias=True`` (the same filter, to
    within one grey level on uint8 images).
    """

    def __init__(self, image_size_px: int, interpolation: int = Image.BILINEAR) -> None:
        if int(image_size_px) != image_size_px or image_size_px < 1:
            raise ValueError(f"image_size_px={image_size_px!r} must be a positive integer")
        self.image_size_px = int(image_size_px)
        self.interpolation = interpolation

    def __call__(self, image: Image.Image | Tensor) -> Image.Image | Tensor:
        if isinstance(image, Image.Image):
            return image.resize((self.image_size_px, self.image_size_px), self.interpolation)
        if not isinstance(image, Tensor) or image.ndim < 3:
            raise TypeError(f"Warp takes a PIL image or a (..., C, H, W) tensor, got {type(image).__name__} "
                            f"of shape {tuple(getattr(image, 'shape', ()))}")
        size = [self.image_size_px, self.image_size_px]
        return TF.resize(image, size, interpolation=self.interpolation, antialias=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(image_size_px={self.image_size_px}, interpolation={self.interpolation})"


class ImageTransform(v2.Compose):
    """A ``v2.Compose`` that gives the same float ``(3, H, W)`` tensor, to within 1 / 255 before
    normalisation, for a PIL RGB image and for the ``(3, H, W)`` uint8 tensor of its pixels.

    ``accepts_uint8_tensor`` tells :class:`wildcat.data.base.ImageDataset` to hand it the tensor
    (JPEG files decoded by ``torchvision.io.decode_jpeg``, the faster path: module docstring).
    """

    accepts_uint8_tensor = True


def _steps(image_size_px: int, flip: bool) -> list:
    return [
        Warp(image_size_px),
        *([v2.RandomHorizontalFlip()] if flip else []),
        v2.ToImage(),  # PIL -> uint8 tensor; a tensor passes through
        v2.ToDtype(torch.float32, scale=True),  # uint8 -> [0, 1], as ToTensor
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        v2.ToPureTensor(),
    ]


def train_transform(image_size_px: int) -> ImageTransform:
    """PIL RGB image or uint8 ``(3, H, W)`` tensor -> ``(3, image_size_px, image_size_px)`` float
    tensor, randomly flipped left-right (probability 0.5, one ``torch.rand(1)`` draw)."""
    return ImageTransform(_steps(image_size_px, flip=True))


def eval_transform(image_size_px: int) -> ImageTransform:
    """PIL RGB image or uint8 ``(3, H, W)`` tensor -> ``(3, image_size_px, image_size_px)`` float
    tensor (deterministic)."""
    return ImageTransform(_steps(image_size_px, flip=False))
