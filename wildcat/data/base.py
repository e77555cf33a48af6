"""The part of the dataset interface (docs/contracts.md) that every loader shares: images on
disk listed in ``_image_paths`` with ids ``ids`` and targets ``targets``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset


class ImageDataset(Dataset):
    """Base of the VOC, COCO and scene loaders. A subclass sets ``task`` (``"multilabel"`` or
    ``"multiclass"``), ``ids``, ``_image_paths``, ``targets`` and ``transform``."""

    task: str
    ids: list[str]
    targets: np.ndarray
    _image_paths: list[Path]
    transform: Optional[Callable[[Any], Any]]

    def __len__(self) -> int:
        return len(self.ids)

    def image_id(self, index: int) -> str:
        return self.ids[index]

    def load_image(self, index: int) -> Image.Image:
        """The image as RGB (grayscale and palette images are converted), at its original size."""
        with Image.open(self._image_paths[index]) as image:
            return image.convert("RGB")

    def __getitem__(self, index: int):
        """``(transform(image), target)``: a float ``(C,)`` tensor of 1 / 0 / -1 for multi-label
        sets, the class index for single-label ones."""
        image = self.load_image(index)
        if self.transform is not None:
            image = self.transform(image)
        if self.task == "multilabel":
            return image, torch.from_numpy(self.targets[index].astype(np.float32))
        return image, int(self.targets[index])
