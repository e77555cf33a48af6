"""Image transforms as in the official WILDCAT code (durandtibo/wildcat.pytorch, ``engine.py``,
``Engine.init_learning``; ``util.py``, ``Warp``):

* train: ``Warp(image_size)`` (PIL ``resize((s, s), BILINEAR)``: the whole image is warped to a
  square, no crop, aspect ratio not kept), ``RandomHorizontalFlip()``, ``ToTensor()``,
  ``Normalize(mean, std)`` with the ImageNet statistics of the ResNet backbone
  (``models.py``: ``image_normalization_mean = [0.485, 0.456, 0.406]``, ``std = [0.229, 0.224, 0.225]``);
* eval: the same without the flip.

The paper (Sec. 4) also says images are warped to a square ("we warp the image to a square").
"""

from __future__ import annotations

from PIL import Image
from torchvision import transforms

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Warp", "train_transform", "eval_transform"]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


class Warp:
    """Resize a PIL image to ``(image_size_px, image_size_px)``, ignoring its aspect ratio.

    Args:
        image_size_px: the side of the square output, in pixels (448 in the paper).
        interpolation: a PIL resampling filter (bilinear, as the official code).
    """

    def __init__(self, image_size_px: int, interpolation: int = Image.BILINEAR) -> None:
        if int(image_size_px) != image_size_px or image_size_px < 1:
            raise ValueError(f"image_size_px={image_size_px!r} must be a positive integer")
        self.image_size_px = int(image_size_px)
        self.interpolation = interpolation

    def __call__(self, image: Image.Image) -> Image.Image:
        return image.resize((self.image_size_px, self.image_size_px), self.interpolation)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(image_size_px={self.image_size_px}, interpolation={self.interpolation})"


def train_transform(image_size_px: int) -> transforms.Compose:
    """PIL RGB image -> ``(3, image_size_px, image_size_px)`` float tensor, randomly flipped."""
    return transforms.Compose([
        Warp(image_size_px),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def eval_transform(image_size_px: int) -> transforms.Compose:
    """PIL RGB image -> ``(3, image_size_px, image_size_px)`` float tensor (deterministic)."""
    return transforms.Compose([
        Warp(image_size_px),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
