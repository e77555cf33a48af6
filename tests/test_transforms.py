"""wildcat.data.transforms and the two decode paths of ImageDataset: PIL and
torchvision.io.decode_jpeg give the same pixels, the tensor warp matches PIL's to one grey level,
the flip is a left-right flip drawn as before, non-JPEG files still load."""

from __future__ import annotations

import functools
import io

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.v2.functional import pil_to_tensor

from wildcat.data.base import ImageDataset
from wildcat.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Warp, eval_transform, train_transform

MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)
ONE_GREY_LEVEL = 1 / 255 / min(IMAGENET_STD)  # the largest normalised difference of 1 / 255


def photo_like(width: int = 50, height: int = 30, seed: int = 0) -> Image.Image:
    """Smooth colours plus grain: it compresses and resizes like a photograph."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (height // 5, width // 5, 3), dtype=np.uint8))
    grain = rng.normal(0, 6, (height, width, 3))
    pixels = np.asarray(coarse.resize((width, height), Image.BICUBIC), np.float64) + grain
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


class Folder(ImageDataset):
    """An ImageDataset over given files (multilabel, 2 classes); counts load_image calls."""

    task = "multilabel"

    def __init__(self, paths, transform=None) -> None:
        self._image_paths = list(paths)
        self.ids = [p.stem for p in self._image_paths]
        self.targets = np.ones((len(self._image_paths), 2), np.int8)
        self.transform = transform
        self.pil_loads = 0

    def load_image(self, index: int) -> Image.Image:
        self.pil_loads += 1
        return super().load_image(index)


@pytest.fixture
def files(tmp_path):
    """A colour JPEG, a grayscale JPEG, an RGBA PNG, a palette PNG and a PNG named .jpg."""
    image = photo_like()
    paths = {
        "jpeg": tmp_path / "a.jpg", "gray_jpeg": tmp_path / "b.jpg", "rgba_png": tmp_path / "c.png",
        "palette_png": tmp_path / "d.png", "png_named_jpg": tmp_path / "e.jpg",
    }
    image.save(paths["jpeg"], format="JPEG", quality=90)
    image.convert("L").save(paths["gray_jpeg"], format="JPEG", quality=90)
    image.convert("RGBA").save(paths["rgba_png"], format="PNG")
    image.convert("P").save(paths["palette_png"], format="PNG")
    image.save(paths["png_named_jpg"], format="PNG")
    return paths


# -- Warp ------------------------------------------------------------------------------------

def test_warp_of_a_tensor_matches_pil_to_one_grey_level():
    image = photo_like(50, 30)
    warp = Warp(16)
    from_pil = pil_to_tensor(warp(image))
    from_tensor = warp(pil_to_tensor(image))
    assert from_tensor.shape == from_pil.shape == (3, 16, 16) and from_tensor.dtype == torch.uint8
    assert (from_tensor.int() - from_pil.int()).abs().max() <= 1  # shrink 50 -> 16 and stretch 30 -> 16


def test_warp_of_a_tensor_keeps_the_whole_image():
    pixels = torch.zeros(3, 20, 40, dtype=torch.uint8)
    pixels[2, :, :20] = 255  # left half blue
    pixels[0, :, 20:] = 255  # right half red
    out = Warp(8)(pixels)
    assert out[:, 4, 0].tolist() == [0, 0, 255] and out[:, 4, 7].tolist() == [255, 0, 0]


def test_warp_rejects_what_is_not_an_image():
    with pytest.raises(TypeError, match="PIL image or a"):
        Warp(8)(np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="image_size_px"):
        Warp(2.5)


# -- train / eval transforms on both inputs --------------------------------------------------

def test_both_inputs_give_the_same_tensor_to_one_grey_level():
    image = photo_like(50, 30)
    from_pil = eval_transform(24)(image)
    from_tensor = eval_transform(24)(pil_to_tensor(image))
    assert type(from_pil) is type(from_tensor) is torch.Tensor  # plain tensors, not tv_tensors
    assert from_pil.shape == from_tensor.shape == (3, 24, 24) and from_tensor.dtype == torch.float32
    assert (from_pil - from_tensor).abs().max() <= ONE_GREY_LEVEL + 1e-6


def test_normalisation_is_imagenet_on_both_inputs():
    image = Image.new("RGB", (6, 4), (255, 128, 0))
    expected = (torch.tensor([255, 128, 0]).view(3, 1, 1) / 255 - MEAN) / STD
    for inp in (image, pil_to_tensor(image)):
        torch.testing.assert_close(eval_transform(5)(inp), expected.expand(3, 5, 5))


@pytest.mark.parametrize("as_tensor", [False, True])
def test_train_flip_is_a_left_right_flip(as_tensor):
    image = photo_like(40, 20)
    inp = pil_to_tensor(image) if as_tensor else image
    unflipped = eval_transform(16)(inp)
    assert not torch.equal(unflipped, unflipped.flip(-1))  # the test can tell the two apart
    seen = set()
    torch.manual_seed(0)
    for _ in range(20):
        out = train_transform(16)(inp)
        if torch.equal(out, unflipped):
            seen.add("same")
        else:
            torch.testing.assert_close(out, unflipped.flip(-1), rtol=0, atol=0)
            seen.add("flipped")
    assert seen == {"same", "flipped"}


def test_both_inputs_flip_the_same_images_for_a_seed():
    image = photo_like(40, 20)
    unflipped = eval_transform(16)(image)

    def flips(inp) -> list[bool]:
        torch.manual_seed(3)
        return [bool((train_transform(16)(inp) - unflipped.flip(-1)).abs().max() <= ONE_GREY_LEVEL + 1e-6)
                for _ in range(12)]

    assert flips(image) == flips(pil_to_tensor(image)) and len(set(flips(image))) == 2


# -- ImageDataset: decode_jpeg for JPEG files, PIL for the rest ------------------------------

def test_decode_jpeg_gives_the_pixels_of_pil(files):
    paths = [files[k] for k in ("jpeg", "gray_jpeg")]
    dataset = Folder(paths)
    for index in range(len(paths)):
        tensor = dataset.load_image_tensor(index)
        assert tensor.shape == (3, 30, 50) and tensor.dtype == torch.uint8
        assert torch.equal(tensor, pil_to_tensor(Image.open(paths[index]).convert("RGB")))
    assert dataset.pil_loads == 0  # decoded by torchvision, not through load_image


def test_non_jpeg_files_load_through_pil(files):
    paths = [files[k] for k in ("rgba_png", "palette_png", "png_named_jpg")]
    dataset = Folder(paths)
    for index in range(len(paths)):
        tensor = dataset.load_image_tensor(index)
        assert tensor.shape == (3, 30, 50) and tensor.dtype == torch.uint8
        assert torch.equal(tensor, pil_to_tensor(dataset.load_image(index)))
    assert dataset.pil_loads == 2 * len(paths)  # found by their first bytes, not their names


def test_getitem_uses_the_tensor_path_for_the_default_transforms(files):
    paths = [files[k] for k in ("jpeg", "rgba_png")]
    dataset = Folder(paths, transform=train_transform(24))
    image, target = dataset[0]
    assert image.shape == (3, 24, 24) and target.tolist() == [1.0, 1.0]
    assert dataset.pil_loads == 0
    image, _ = dataset[1]  # a PNG still loads
    assert image.shape == (3, 24, 24) and dataset.pil_loads == 1
    with Image.open(paths[0]) as pil:
        from_pil = eval_transform(24)(pil.convert("RGB"))
    dataset.transform = eval_transform(24)
    assert (dataset[0][0] - from_pil).abs().max() <= ONE_GREY_LEVEL + 1e-6


def test_getitem_gives_pil_images_to_other_transforms_and_none(files):
    seen = []
    dataset = Folder([files["jpeg"]], transform=lambda image: seen.append(image) or 0)
    dataset[0]
    assert len(seen) == 1 and isinstance(seen[0], Image.Image) and seen[0].mode == "RGB"
    dataset.transform = None
    assert isinstance(dataset[0][0], Image.Image) and dataset[0][0].size == (50, 30)


def test_getitem_reads_through_a_cache_of_load_image_tensor(files):
    """wildcat.engine.train's cache_images wraps load_image_tensor in an lru_cache on the instance: the
    second read of an image comes from the cache."""
    dataset = Folder([files["rgba_png"]], transform=eval_transform(24))  # a PNG: decoded by load_image
    dataset.load_image_tensor = functools.lru_cache(maxsize=None)(dataset.load_image_tensor)
    first, _ = dataset[0]
    second, _ = dataset[0]
    assert dataset.pil_loads == 1 and torch.equal(first, second)
    assert dataset.load_image_tensor.cache_info().hits == 1


def test_a_truncated_jpeg_fails_with_an_error(tmp_path):
    path = tmp_path / "broken.jpg"
    buffer = io.BytesIO()
    photo_like().save(buffer, format="JPEG")
    path.write_bytes(buffer.getvalue()[:200])
    with pytest.raises(OSError):
        Folder([path]).load_image_tensor(0)
