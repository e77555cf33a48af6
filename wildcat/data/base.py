"""The part of the dataset interface (docs/contracts.md) that every loader shares: images on
disk listed in ``_image_paths`` with ids ``ids`` and targets ``targets``."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms.v2.functional import pil_to_tensor

from wildcat.data import DatasetFormatError, download_command

try:  # deprecated since torchvision 0.29 (for TorchCodec); if a release drops it, PIL decodes all
    from torchvision.io import ImageReadMode, decode_jpeg
except ImportError:  # pragma: no cover
    decode_jpeg = None
# Its DeprecationWarning (every call) says what the comment above says: not repeated per image.
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision are deprecated",
                        category=DeprecationWarning)

JPEG_MAGIC = b"\xff\xd8\xff"  # SOI marker + the first byte of the next marker


class UnreadableImageError(DatasetFormatError, OSError):
    """An image file that PIL cannot open or decode; still an ``OSError``, as PIL's own error was."""


class ImageDataset(Dataset):
    """Base of the VOC, COCO and scene loaders. A subclass sets ``task`` (``"multilabel"`` or
    ``"multiclass"``), ``ids``, ``_image_paths``, ``targets`` and ``transform``; a loader of a
    dataset of :func:`wildcat.data.get_dataset` also sets ``name``, ``root`` and ``extracted_dir``
    (the fix that :meth:`damaged_file` gives)."""

    task: str
    ids: list[str]
    targets: np.ndarray
    _image_paths: list[Path]
    transform: Callable[[Any], Any] | None
    name: str
    root: Path
    #: The folder to delete so that ``wildcat download`` (``make-synthetic``) puts a damaged file
    #: back: one that a single archive (or the generator) provides. None: no such command.
    extracted_dir: Path | None = None
    #: The names of the object modalities that :meth:`modalities_for` numbers (empty: none labelled).
    modality_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.ids)

    def image_id(self, index: int) -> str:
        return self.ids[index]

    def damaged_file(self, path: Path, problem: str,
                     error: type[DatasetFormatError] = DatasetFormatError) -> DatasetFormatError:
        """The one-line ``error`` for a file of the dataset that is on disk but damaged: its path,
        ``problem`` and the fix."""
        if self.extracted_dir is None:
            fix = "replace it with a good copy"
        else:
            fix = f"delete {self.extracted_dir} and run `{download_command(self.name, self.root)}` to put it back"
        return error(f"{path}: {problem}; {fix}")

    @contextmanager
    def open_image(self, path: Path) -> Iterator[Image.Image]:
        """``Image.open(path)`` (lazy: ``size`` and ``mode`` without decoding); a file that PIL cannot
        open or decode in the ``with`` block (truncated, not an image) raises
        :class:`UnreadableImageError`."""
        try:
            with Image.open(path) as image:
                yield image
        except (OSError, SyntaxError) as error:  # PIL: OSError (truncated, unidentified), SyntaxError (broken PNG)
            raise self.damaged_file(path, f"not a readable image ({error})", UnreadableImageError) from None

    def load_image(self, index: int) -> Image.Image:
        """The image as RGB (grayscale and palette images are converted), at its original size."""
        with self.open_image(self._image_paths[index]) as image:
            return image.convert("RGB")

    def load_image_tensor(self, index: int) -> torch.Tensor:
        """The image as a ``(3, H, W)`` uint8 RGB tensor, at its original size: the pixels of
        :meth:`load_image`. A JPEG file (found by its first bytes, not its name) is decoded by
        ``torchvision.io.decode_jpeg`` on the CPU (libjpeg-turbo, as PIL: the same pixels, and
        faster with the tensor warp, see :mod:`wildcat.data.transforms`); any other file (PNG,
        GIF, ...) or a JPEG that decoder refuses goes through :meth:`load_image`. A subclass
        whose ``load_image`` changes the pixels must override this method too."""
        data = Path(self._image_paths[index]).read_bytes()
        if decode_jpeg is not None and data.startswith(JPEG_MAGIC):
            try:
                return decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
            except RuntimeError:  # truncated, or a variant this build rejects: PIL decodes or raises its error
                pass
        return pil_to_tensor(self.load_image(index))

    def modalities_for(self, index: int) -> np.ndarray:
        """``(K,) int64``: the modality of each object of ``boxes_for(index)``, an index into
        :attr:`modality_names`, -1 where the dataset does not say (here: every object)."""
        return np.full(len(self.boxes_for(index)["labels"]), -1, dtype=np.int64)

    def __getitem__(self, index: int):
        """``(transform(image), target)``: a float ``(C,)`` tensor of 1 / 0 / -1 for multi-label
        sets, the class index for single-label ones.

        ``image`` is the PIL image of :meth:`load_image`, except for a transform with a true
        ``accepts_uint8_tensor`` attribute (:func:`wildcat.data.transforms.train_transform` and
        ``eval_transform``): it gets the uint8 tensor of :meth:`load_image_tensor` (the same
        pixels, decoded faster; ``wildcat.engine.train`` caches that method for ``cache_images``)."""
        if self.transform is None:
            image = self.load_image(index)
        elif getattr(self.transform, "accepts_uint8_tensor", False):
            image = self.transform(self.load_image_tensor(index))
        else:
            image = self.transform(self.load_image(index))
        if self.task == "multilabel":
            return image, torch.from_numpy(self.targets[index].astype(np.float32))
        return image, int(self.targets[index])
