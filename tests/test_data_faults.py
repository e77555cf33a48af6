"""A damaged dataset file (truncated JPEG, malformed XML, mask of the wrong size or with an unknown
class id) is a one-line DatasetFormatError that names the file and the fix, also through the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wildcat.cli import main
from wildcat.data import DatasetFormatError, get_dataset
from wildcat.data.synthetic import SyntheticSpec, make_synthetic
from wildcat.data.transforms import eval_transform

from helpers import fake_archives as fa
from helpers.fake_archives import install

pytestmark = pytest.mark.filterwarnings("ignore::wildcat.data.DatasetCountWarning")

#: Every image has a mask (segmentation_fraction 1), so mask_for reads one for each.
SPEC = SyntheticSpec(seed=0, image_size_px=48, num_train=4, num_val=0, num_test=2, num_classes=2,
                     num_shared_pairs=0, segmentation_fraction=1.0)


@pytest.fixture
def tree(tmp_path) -> Path:
    """A fresh synthetic VOC-layout tree (``<tmp_path>/VOCdevkit/VOCsynthetic``), free to damage."""
    return make_synthetic(tmp_path, SPEC)


def truncate(path: Path) -> None:
    """Keep the first half of the file's bytes."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def assert_names(error: pytest.ExceptionInfo, path: Path, fix: str) -> None:
    """The message is one line with the damaged file's path and the fix command."""
    message = str(error.value)
    assert "\n" not in message and str(path) in message and fix in message, message


def test_truncated_jpeg_names_the_file(tree):
    train = get_dataset("synthetic", tree.parents[1], "train", transform=eval_transform(16))
    path = tree / "JPEGImages" / f"{train.image_id(1)}.jpg"
    truncate(path)
    fix = f"delete {tree} and run `wildcat make-synthetic --root {tree.parents[1]}`"
    for load in (train.load_image, train.load_image_tensor, train.__getitem__):
        with pytest.raises(DatasetFormatError, match="truncated") as error:
            load(1)
        assert_names(error, path, fix)
    assert isinstance(error.value, OSError)  # as PIL's own error was
    assert train[0][0].shape == (3, 16, 16)  # the other images still load


@pytest.mark.parametrize("name, split, extracted", [
    ("voc2007", "trainval", "VOCdevkit/VOC2007"),
    ("coco2014", "val", "coco2014/val2014"),
    ("mit67", "test", "mit67/Images"),
    ("scene15", "train", "scene15"),
])
def test_truncated_jpeg_of_each_loader_says_how_to_put_it_back(tmp_path, name, split, extracted):
    install(name, tmp_path)
    dataset = get_dataset(name, tmp_path, split)
    path = dataset._image_paths[0]
    truncate(path)
    with pytest.raises(DatasetFormatError) as error:
        dataset.load_image_tensor(0)
    assert_names(error, path, f"delete {tmp_path / extracted} and run `wildcat download {name} --root {tmp_path}`")


def test_malformed_xml_names_the_file(tree):
    train = get_dataset("synthetic", tree.parents[1], "train")
    path = tree / "Annotations" / f"{train.image_id(2)}.xml"
    path.write_text("<annotation><object>")
    fix = f"wildcat make-synthetic --root {tree.parents[1]}"
    with pytest.raises(DatasetFormatError, match="not a well-formed XML file") as error:
        train.boxes_for(2)
    assert_names(error, path, fix)
    with pytest.raises(DatasetFormatError) as error:  # seg_* splits read every XML for their targets
        get_dataset("synthetic", tree.parents[1], "seg_train")
    assert_names(error, path, fix)


def test_mask_of_another_size_names_the_mask_and_its_image(tree):
    train = get_dataset("synthetic", tree.parents[1], "train")
    path = tree / "SegmentationClass" / f"{train.image_id(0)}.png"
    side = SPEC.image_size_px
    path.write_bytes(fa.palette_png_bytes(np.zeros((side, side + 8), np.uint8)))
    wrong_size = rf"mask is {side + 8}x{side} pixels but its image .* is {side}x{side};"
    with pytest.raises(DatasetFormatError, match=wrong_size) as error:
        train.mask_for(0)
    assert_names(error, path, f"wildcat make-synthetic --root {tree.parents[1]}")
    assert str(train._image_paths[0]) in str(error.value)
    assert train.mask_for(1).shape == (side, side)


def test_mask_with_an_unknown_class_id_names_the_mask(tree):
    train = get_dataset("synthetic", tree.parents[1], "train")
    path = tree / "SegmentationClass" / f"{train.image_id(3)}.png"
    mask = train.mask_for(3)
    assert set(np.unique(mask)) <= {0, 1, 2, 255}  # a good mask: background, the 2 classes, void
    mask[5, 7] = 77
    path.write_bytes(fa.palette_png_bytes(mask))
    with pytest.raises(DatasetFormatError, match=r"mask value 77 is no class id \(0 background, 1\.\.2 ") as error:
        train.mask_for(3)
    assert_names(error, path, f"wildcat make-synthetic --root {tree.parents[1]}")


def test_cli_train_on_a_truncated_jpeg_is_one_line_exit_2(tree, tmp_path, capsys):
    root = tree.parents[1]
    path = tree / "JPEGImages" / f"{get_dataset('synthetic', root, 'train').image_id(0)}.jpg"
    truncate(path)
    code = main(["train", "--out", str(tmp_path / "run"), "--quiet", "--dataset", "synthetic", "--data-root", str(root),
                 "--train-split", "train", "--image-size-px", "48", "--backbone", "cnn6", "--weights", "null",
                 "--kmax", "0.1", "--epochs", "1", "--batch-size", "4", "--workers", "0", "--device", "cpu",
                 "--amp", "false"])
    err = capsys.readouterr().err
    assert code == 2, err
    last = err.splitlines()[-1]  # any warnings come before the error
    assert "Traceback" not in err and last.startswith("wildcat train: error: ") and str(path) in last, err
