"""get_dataset on tiny fake copies of every dataset: labels, boxes and masks of hand-written
annotations (tests/fake_archives.py), split names, errors, transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from wildcat.data import DATASET_NAMES, DatasetCountWarning, DatasetNotFoundError, get_dataset
from wildcat.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform, train_transform
from wildcat.data.voc import VOC_ACTION_CLASSES, VOC_CLASSES, VOCDataset

from helpers import fake_archives as fa
from helpers.fake_archives import install

pytestmark = pytest.mark.filterwarnings("ignore::wildcat.data.DatasetCountWarning")

C = {name: i for i, name in enumerate(VOC_CLASSES)}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for name in ("voc2007", "voc2012", "coco2014", "mit67", "scene15"):
        install(name, root)
    return root


def voc_row(**labels) -> list[int]:
    row = [-1] * 20
    for name, value in labels.items():
        row[C[name]] = value
    return row


# -- VOC 2007 --------------------------------------------------------------------------------

def test_voc2007_targets_from_the_devkit_lists(data_root):
    trainval = get_dataset("voc2007", data_root, "trainval")
    assert trainval.classes == list(VOC_CLASSES) and trainval.task == "multilabel"
    assert [trainval.image_id(i) for i in range(3)] == ["000005", "000007", "000009"]
    assert trainval.targets.dtype == np.int8 and trainval.targets.shape == (3, 20)
    np.testing.assert_array_equal(trainval.targets, [voc_row(chair=1), voc_row(car=1), voc_row(horse=0, person=1)])
    image, target = trainval[2]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (16, 16)
    assert target.dtype == torch.float32 and target[C["horse"]] == 0 and target[C["person"]] == 1

    test = get_dataset("voc2007", data_root, "test")
    np.testing.assert_array_equal(test.targets, [voc_row(dog=1, person=1), voc_row(train=1)])


def test_voc2007_boxes_as_written(data_root):
    trainval = get_dataset("voc2007", data_root, "trainval")
    assert trainval.has_boxes
    boxes = trainval.boxes_for(0)
    np.testing.assert_array_equal(boxes["labels"], [C["chair"], C["chair"]])
    np.testing.assert_array_equal(boxes["boxes"], [[3, 2, 12, 10], [1, 1, 4, 4]])
    np.testing.assert_array_equal(boxes["difficult"], [False, True])
    assert boxes["labels"].dtype == np.int64 and boxes["boxes"].dtype == np.float64 and boxes["difficult"].dtype == bool
    test = get_dataset("voc2007", data_root, "test")
    np.testing.assert_array_equal(test.boxes_for(0)["difficult"], [False, False])  # no <difficult> tag = 0


def test_voc2007_masks_only_for_the_same_split_segmentation_list(data_root):
    trainval = get_dataset("voc2007", data_root, "trainval")
    assert trainval.has_masks
    assert trainval.mask_for(0) is None and trainval.mask_for(2) is None
    mask = trainval.mask_for(1)  # 000007: car at (2, 3, 17, 13), 1-based inclusive; void first row
    assert mask.dtype == np.uint8 and mask.shape == (14, 18)
    assert (mask[0] == 255).all()
    assert mask[5, 5] == C["car"] + 1 and mask[13, 0] == 0 and mask[2, 1] == C["car"] + 1 and mask[2, 0] == 0


# -- VOC 2012 --------------------------------------------------------------------------------

def test_voc2012_train_val_and_segmentation_val(data_root):
    train = get_dataset("voc2012", data_root, "train")
    np.testing.assert_array_equal(train.targets, [voc_row(cat=1), voc_row(bird=1, cat=0)])
    val = get_dataset("voc2012", data_root, "val")
    assert [val.image_id(i) for i in range(len(val))] == ["2008_000003", "2008_000004", "2008_000005"]
    np.testing.assert_array_equal(val.targets, [voc_row(aeroplane=1, tvmonitor=1), voc_row(sheep=1), voc_row(bus=0)])
    assert val.has_masks
    assert val.mask_for(1) is None  # not in ImageSets/Segmentation/val.txt
    mask = val.mask_for(0)
    assert mask.shape == (18, 18) and mask[5, 3] == C["aeroplane"] + 1 and mask[15, 15] == C["tvmonitor"] + 1
    assert set(np.unique(mask)) == {0, C["aeroplane"] + 1, C["tvmonitor"] + 1, 255}

    seg_val = get_dataset("voc2012", data_root, "seg_val")
    assert [seg_val.image_id(i) for i in range(len(seg_val))] == ["2008_000003", "2008_000005"]
    np.testing.assert_array_equal(seg_val.targets, [voc_row(aeroplane=1, tvmonitor=1), voc_row(bus=0)])
    assert all(seg_val.mask_for(i) is not None for i in range(len(seg_val)))
    # a train image is never given a segmentation-val mask
    assert train.mask_for(1) is None and train.mask_for(0) is not None

    trainval = get_dataset("voc2012", data_root, "trainval")  # no trainval list in the fake: train + val
    assert len(trainval) == 5


def test_voc2012_test_split_points_to_the_evaluation_server(data_root):
    with pytest.raises(ValueError, match="evaluation server"):
        get_dataset("voc2012", data_root, "test")
    with pytest.raises(ValueError, match="no split 'nope'.*train, val"):
        get_dataset("voc2012", data_root, "nope")


# -- VOC 2012 Action -------------------------------------------------------------------------

def test_voc2012_action_image_level_labels(data_root):
    train = get_dataset("voc2012_action", data_root, "train")
    assert train.classes == list(VOC_ACTION_CLASSES) and len(train.classes) == 10 and "other" not in train.classes
    a = {name: i for i, name in enumerate(VOC_ACTION_CLASSES)}

    def row(**labels):
        r = [-1] * 10
        for name, value in labels.items():
            r[a[name]] = value
        return r

    # 2010_000010: person 1 jumps, person 2 runs; 2010_000011: walking
    np.testing.assert_array_equal(train.targets, [row(jumping=1, running=1), row(walking=1)])
    val = get_dataset("voc2012_action", data_root, "val")
    # 2010_000012: reading 1, phoning 0 (ignored); 2010_000013: walking 1 (one of two persons),
    # phoning: persons -1 and 0 -> 0 (ignored: no person is 1, one is 0)
    np.testing.assert_array_equal(val.targets, [row(reading=1, phoning=0), row(walking=1, phoning=0)])
    assert not val.has_masks and val.mask_for(0) is None
    boxes = train.boxes_for(0)
    np.testing.assert_array_equal(boxes["labels"], [a["jumping"], a["running"]])
    np.testing.assert_array_equal(boxes["boxes"], [[2, 2, 10, 19], [11, 3, 19, 19]])
    with pytest.raises(ValueError, match="evaluation server"):
        get_dataset("voc2012_action", data_root, "test")


# -- COCO ------------------------------------------------------------------------------------

def test_coco_classes_targets_and_boxes(data_root):
    val = get_dataset("coco2014", data_root, "val")
    assert val.classes == ["person", "car", "toothbrush"]  # category id order 1, 3, 90
    assert [val.image_id(i) for i in range(3)] == [f"COCO_val2014_{i:012d}" for i in (42, 73, 74)]
    # crowd-only toothbrush counts as present; the image without annotations is all -1
    np.testing.assert_array_equal(val.targets, [[1, -1, -1], [-1, -1, 1], [-1, -1, -1]])
    boxes = val.boxes_for(0)
    np.testing.assert_array_equal(boxes["boxes"], [[10, 20, 40, 60], [0, 0, 4, 4]])  # xywh -> xyxy
    np.testing.assert_array_equal(boxes["labels"], [0, 0])
    crowd = val.boxes_for(1)
    np.testing.assert_allclose(crowd["boxes"], [[1.5, 2.5, 4.5, 6.5]])
    np.testing.assert_array_equal(crowd["difficult"], [True])
    assert val.boxes_for(2)["boxes"].shape == (0, 4)
    assert not val.has_masks and val.mask_for(0) is None
    train = get_dataset("coco2014", data_root, "train2014")
    np.testing.assert_array_equal(train.targets, [[1, 1, -1], [-1, -1, 1]])
    image, target = train[0]
    assert image.size == (20, 16) and target.tolist() == [1.0, 1.0, -1.0]


# -- MIT67 -----------------------------------------------------------------------------------

def test_mit67_lists_and_sorted_classes(data_root):
    train = get_dataset("mit67", data_root, "train")
    assert train.classes == ["airport_inside", "bar", "kitchen"] and train.task == "multiclass"
    assert train.targets.dtype == np.int64
    np.testing.assert_array_equal(train.targets, [2, 2, 1, 1, 0, 0])
    assert train.image_id(4) == "airport_inside/a 1"
    image, target = train[0]
    assert image.mode == "RGB" and target == 2  # a grayscale file, converted
    test = get_dataset("mit67", data_root, "test")
    np.testing.assert_array_equal(test.targets, [1, 2, 0])
    assert not test.has_boxes and not test.has_masks and test.mask_for(0) is None
    with pytest.raises(NotImplementedError):
        test.boxes_for(0)


# -- 15 Scene --------------------------------------------------------------------------------

def test_scene15_seeded_splits(data_root):
    train = get_dataset("scene15", data_root, "train")
    test = get_dataset("scene15", data_root, "test")
    assert len(train.classes) == 15 and train.classes[0] == "bedroom"
    assert np.bincount(train.targets).tolist() == [100] * 15
    counts = [fa.SCENE15_COUNTS[c] - 100 for c in train.classes]
    assert np.bincount(test.targets).tolist() == counts
    assert not set(train.ids) & set(test.ids)
    assert len(set(train.ids) | set(test.ids)) == sum(fa.SCENE15_COUNTS.values())
    again = get_dataset("scene15", data_root, "train_seed0")
    assert again.ids == train.ids
    other = get_dataset("scene15", data_root, "test_seed3")
    assert other.ids != test.ids and np.bincount(other.targets).tolist() == counts
    image, label = train[0]
    assert image.mode == "RGB" and label == 0  # grayscale on disk
    with pytest.raises(ValueError, match="train_seed<k>"):
        get_dataset("scene15", data_root, "val")


# -- synthetic (the VOC layout the generator writes) ---------------------------------------------

def write_synthetic(root) -> None:
    base = root / "VOCdevkit" / "VOCsynthetic"
    for sub in ("JPEGImages", "Annotations", "SegmentationClass", "ImageSets/Main", "ImageSets/Segmentation"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    classes = ["disk", "square", "triangle"]
    (base / "classes.txt").write_text("".join(f"{c}\n" for c in classes))
    images = {"train": {"s0": [("disk", (1, 1, 4, 4))], "s1": [("square", (2, 2, 6, 6)), ("disk", (5, 5, 8, 8))]},
              "val": {"s2": [("triangle", (1, 2, 3, 4))]},
              "test": {"s3": [("square", (3, 3, 7, 7))], "s4": []}}
    for split, items in images.items():
        (base / f"ImageSets/Main/{split}.txt").write_text("".join(f"{i}\n" for i in items))
        (base / f"ImageSets/Segmentation/{split}.txt").write_text("".join(f"{i}\n" for i in items))
        for c in classes:
            rows = "".join(f"{i} {1 if any(o == c for o, _ in objs) else -1}\n" for i, objs in items.items())
            (base / f"ImageSets/Main/{c}_{split}.txt").write_text(rows)
        for i, objs in items.items():
            (base / "JPEGImages" / f"{i}.jpg").write_bytes(fa.jpeg_bytes(8, 8))
            objects = [dict(name=o, box=b, difficult=0) for o, b in objs]
            (base / "Annotations" / f"{i}.xml").write_bytes(fa.voc_xml(f"{i}.jpg", (8, 8), objects))
            mask = np.zeros((8, 8), np.uint8)
            for o, (x0, y0, x1, y1) in objs:
                mask[y0 - 1:y1, x0 - 1:x1] = classes.index(o) + 1
            (base / "SegmentationClass" / f"{i}.png").write_bytes(fa.palette_png_bytes(mask))


def test_synthetic_loads_through_the_voc_class(tmp_path):
    write_synthetic(tmp_path)
    train = get_dataset("synthetic", tmp_path, "train")
    assert type(train) is VOCDataset and train.classes == ["disk", "square", "triangle"]
    np.testing.assert_array_equal(train.targets, [[1, -1, -1], [1, 1, -1]])
    np.testing.assert_array_equal(train.boxes_for(1)["labels"], [1, 0])
    mask = train.mask_for(1)
    assert mask[3, 3] == 2 and mask[7, 7] == 1 and mask[0, 0] == 0
    test = get_dataset("synthetic", tmp_path, "test")
    np.testing.assert_array_equal(test.targets, [[-1, 1, -1], [-1, -1, -1]])
    assert test.boxes_for(1)["boxes"].shape == (0, 4)
    trainval = get_dataset("synthetic", tmp_path, "trainval")  # train + val lists
    assert trainval.ids == ["s0", "s1", "s2"] and trainval.mask_for(2) is not None
    assert len(get_dataset("synthetic", tmp_path, "seg_val")) == 1


def test_synthetic_missing_says_make_synthetic(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"wildcat make-synthetic --root"):
        get_dataset("synthetic", tmp_path, "train")


# -- errors ----------------------------------------------------------------------------------

def test_unknown_dataset_name(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        get_dataset("imagenet", tmp_path, "train")
    assert DATASET_NAMES == ("synthetic", "voc2007", "voc2012", "voc2012_action", "coco2014", "mit67", "scene15")


@pytest.mark.parametrize("name, split, victim", [
    ("voc2007", "test", "VOCdevkit/VOC2007/JPEGImages/000002.jpg"),
    ("coco2014", "val", "coco2014/val2014/COCO_val2014_000000000074.jpg"),
    ("mit67", "test", "mit67/Images/bar/b_3.jpg"),
    ("scene15", "train", "scene15/store"),
])
def test_incomplete_dataset_is_one_line_with_the_fix(tmp_path, name, split, victim):
    install(name, tmp_path)
    target = tmp_path / victim
    if target.is_dir():
        for path in target.iterdir():
            path.unlink()
        target.rmdir()
    else:
        target.unlink()
    with pytest.raises(DatasetNotFoundError) as error:
        get_dataset(name, tmp_path, split)
    message = str(error.value)
    assert "\n" not in message and "incomplete" in message and f"wildcat download {name} --root {tmp_path}" in message


def test_count_warning_on_a_partial_copy_is_one_line_once(data_root):
    """A split loaded again in the same process (training, tuning, test) is not warned about again."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            get_dataset("voc2007", data_root, "test")
    counts = [w for w in caught if issubclass(w.category, DatasetCountWarning)]
    assert [str(w.message) for w in counts] == ["voc2007 split 'test' has 2 images, the published count is 4952"]


# -- transforms ------------------------------------------------------------------------------

def test_transforms_warp_flip_and_normalize():
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue, right half red
    expected_blue = (torch.tensor([0.0, 0.0, 1.0]) - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    out = eval_transform(8)(image)
    assert out.shape == (3, 8, 8) and out.dtype == torch.float32
    torch.testing.assert_close(out[:, 4, 0], expected_blue)  # warped (not cropped): left column blue
    torch.testing.assert_close(eval_transform(8)(image), out)
    torch.manual_seed(0)
    flips = {bool(torch.allclose(train_transform(8)(image)[:, 4, 0], expected_blue)) for _ in range(20)}
    assert flips == {True, False}
    with pytest.raises(ValueError, match="image_size_px"):
        eval_transform(0)


def test_dataset_with_transform_returns_tensors(data_root):
    dataset = get_dataset("voc2007", data_root, "test", transform=eval_transform(16))
    image, target = dataset[0]
    assert image.shape == (3, 16, 16) and target.shape == (20,)
    loader = torch.utils.data.DataLoader(dataset, batch_size=2)
    images, targets = next(iter(loader))
    assert images.shape == (2, 3, 16, 16) and targets.shape == (2, 20)


def test_voc2007_without_the_test_archive_is_incomplete_not_a_bad_split(tmp_path):
    install("voc2007", tmp_path)
    (tmp_path / "VOCdevkit/VOC2007/ImageSets/Main/test.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"incomplete.*wildcat download voc2007"):
        get_dataset("voc2007", tmp_path, "test")
    with pytest.raises(ValueError, match=r"no split 'tset'.*lists found: trainval"):
        get_dataset("voc2007", tmp_path, "tset")
