"""Tests for maps.npz (wildcat.eval.maps_record) and its collection by `wildcat evaluate`
(wildcat.eval.map_recorder), and the modality labels of the VOC-layout reader."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil

import numpy as np
import pytest
import torch

import wildcat.engine.train as train_module
from wildcat.data import DatasetFormatError, get_dataset
from wildcat.data.synthetic.render import render_image
from wildcat.data.transforms import eval_transform
from wildcat.data.voc import VOCDataset
from wildcat.engine.config import load_config
from wildcat.engine.train import load_trained, train
from wildcat.eval.evaluate import evaluate, peak_points
from wildcat.eval.map_recorder import MapRecorder, initial_model
from wildcat.eval.maps_record import (
    MAPS_FILE,
    Example,
    GalleryImage,
    MapsFormatError,
    MapsRecord,
    ObjectPeaks,
    box_peaks,
    example_objects,
    example_window,
    gallery_indices,
    read_maps,
    region_centres,
    write_maps,
)
from wildcat.eval.metrics.localization import point_hits_box

from helpers import TINY_SPEC, tiny_config


def make_record(num_maps: int = 2) -> MapsRecord:
    """A hand-built record: one 8 x 6 gallery image (with and without segmentations), two objects
    of known modality and one example."""
    rng = np.random.default_rng(0)
    image = GalleryImage(
        index=3, image_id="test_000004", image=rng.integers(0, 256, (6, 8, 3), dtype=np.uint8),
        box_labels=np.array([0, 1]), boxes=np.array([[1.0, 1.0, 3.0, 3.0], [5.0, 2.0, 8.0, 6.0]]),
        classes=np.array([0, 1]), maps=rng.normal(size=(2, 3, 4)).astype(np.float16),
        points=np.array([[1.0, 1.0], [7.0, 5.0]]), hits=np.array([True, False]),
        seg_argmax=np.zeros((6, 8), np.uint8), seg_crf=np.ones((6, 8), np.uint8), mask=np.full((6, 8), 255, np.uint8))
    bare = dataclasses.replace(image, index=5, image_id="test_000006", seg_argmax=None, seg_crf=None, mask=None)
    objects = ObjectPeaks(image=np.array([3, 3]), label=np.array([0, 1]), modality=np.array([0, 1]),
                          difficult=np.array([False, True]), box=image.boxes.copy(),
                          trained=rng.normal(size=(2, num_maps)).astype(np.float32),
                          untrained=rng.normal(size=(2, num_maps)).astype(np.float32))
    example = Example(object=0, crop=image.image[0:4, 0:4], window=np.array([0, 0, 4, 4]), image_size=np.array([8, 6]),
                      maps=rng.normal(size=(num_maps, 3, 4)).astype(np.float16))
    return MapsRecord(classes=("alfa", "bravo"), modality_names=("single", "pair"), num_maps=num_maps,
                      loc_tolerance_px=4.0, seg_background=0.5, gallery=(image, bare), objects=objects,
                      examples=(example,))


def assert_same_record(a: MapsRecord, b: MapsRecord) -> None:
    for field in dataclasses.fields(MapsRecord):
        left, right = getattr(a, field.name), getattr(b, field.name)
        if field.name in ("gallery", "examples"):
            assert len(left) == len(right)
            for x, y in zip(left, right):
                for f in dataclasses.fields(x):
                    u, v = getattr(x, f.name), getattr(y, f.name)
                    assert (u is None and v is None) or np.array_equal(u, v), f"{field.name}.{f.name}"
                    assert u is None or np.asarray(u).dtype == np.asarray(v).dtype, f"{field.name}.{f.name}"
        elif field.name == "objects":
            for f in dataclasses.fields(ObjectPeaks):
                assert np.array_equal(getattr(left, f.name), getattr(right, f.name)), f.name
        else:
            assert left == right, field.name


def test_maps_npz_round_trip(tmp_path):
    record = make_record()
    write_maps(tmp_path / MAPS_FILE, record)
    assert [p.name for p in tmp_path.iterdir()] == [MAPS_FILE]  # no temporary file left
    back = read_maps(tmp_path / MAPS_FILE)
    assert_same_record(record, back)
    assert back.gallery[1].mask is None and back.gallery[0].mask is not None


def test_a_file_of_another_schema_or_not_an_npz_is_a_one_line_error(tmp_path):
    record = make_record()
    write_maps(tmp_path / "maps.npz", record)
    with np.load(tmp_path / "maps.npz") as data:
        arrays = dict(data)
    arrays["schema"] = np.int64(99)
    np.savez(tmp_path / "old.npz", **arrays)
    with pytest.raises(MapsFormatError, match="schema 1.*got schema 99"):
        read_maps(tmp_path / "old.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(MapsFormatError, match="not a readable maps.npz"):
        read_maps(tmp_path / "text.npz")


def test_region_centres_are_those_of_peak_points():
    # A 3 x 4 map over a 40 x 30 image: region (row 2, col 1) has its centre at (15, 25).
    centres = region_centres(3, 4, 40, 30)
    assert centres.shape == (12, 2)
    assert np.allclose(centres[2 * 4 + 1], [15.0, 25.0])
    maps = torch.zeros(1, 1, 3, 4)
    maps[0, 0, 2, 1] = 1.0
    assert np.allclose(peak_points(maps, torch.tensor([[40, 30]]))[0, 0], centres[2 * 4 + 1])


def test_box_peaks_take_the_regions_whose_centre_is_in_the_box():
    # 4 x 4 regions over a 40 x 40 image: centres at 5, 15, 25, 35 on each axis.
    maps = np.arange(32, dtype=np.float32).reshape(2, 4, 4)  # map 0: value = 4 * row + col
    maps[1] = -maps[1]  # map 1: highest at the top left
    boxes = np.array([
        [0.0, 0.0, 20.0, 20.0],  # centres x, y in {5, 15}: rows/cols 0-1; map 0 peak at (1, 1) = 5; map 1: -16
        [15.0, 5.0, 25.0, 5.0],  # y = 5 (border included), x in {15, 25}: row 0, cols 1-2 -> 2 and -17
        [26.0, 26.0, 28.0, 28.0],  # no centre inside: the region holding its centre (27, 27): (2, 2) -> 10, -26
    ])
    peaks = box_peaks(maps, boxes, 40, 40)
    assert peaks.tolist() == [[5.0, -16.0], [2.0, -17.0], [10.0, -26.0]]


def test_gallery_takes_the_first_images_with_two_classes_or_more():
    labels = [np.array(classes, dtype=np.int64) for classes in ([0], [1, 1], [0, 2], [], [3, 1, 3], [2, 0], [1, 2], [0, 1])]
    assert gallery_indices(labels) == [2, 4, 5, 6]  # image 1 has two boxes of one class
    assert gallery_indices(iter(labels), size=2) == [2, 4]
    assert gallery_indices(labels[:3]) == [2]  # fewer if the split has fewer


def test_examples_are_the_first_non_difficult_objects_of_each_class_and_modality():
    labels = np.array([0, 0, 0, 0, 1, 0, 1])
    modality = np.array([0, 0, 1, 0, -1, 1, -1])
    difficult = np.array([False, True, False, False, False, False, False])
    # class 0 single: rows 0, 3 (row 1 is difficult); class 0 pair: rows 2, 5; class 1 unknown: 4, 6
    assert example_objects(labels, modality, difficult, per_group=2) == [0, 2, 3, 4, 5, 6]
    assert example_objects(labels, modality, difficult, per_group=1) == [0, 2, 4]


def test_example_window_is_a_square_twice_the_box_clipped_to_the_image():
    # The 1-based box 11..20 x 31..35 covers the pixel edges 10..20 x 30..35: 10 x 5, centre (15, 32.5).
    assert example_window(np.array([11.0, 31.0, 20.0, 35.0]), 96, 96).tolist() == [5, 22, 25, 43]
    # 1..10 x 90..96 -> edges 0..10 x 89..96, centre (5, 92.5), half side 10: [-5, 82.5, 15, 102.5], clipped.
    assert example_window(np.array([1.0, 90.0, 10.0, 96.0]), 96, 96).tolist() == [0, 82, 15, 96]


# ------------------------------------------------------------------------------------------
# The dataset's modality labels


def test_synthetic_objects_carry_the_generators_modalities(tiny_data_root):
    dataset = get_dataset("synthetic", tiny_data_root, "test")
    assert dataset.modality_names == ("single", "pair")
    for index in range(10):
        drawn = render_image(TINY_SPEC, "test", index).objects
        assert dataset.modalities_for(index).tolist() == [o.modality for o in drawn]
        assert dataset.boxes_for(index)["labels"].tolist() == [o.label for o in drawn]
    # The counts per class and modality are the generator's statistics of the split.
    stats = json.loads((tiny_data_root / "VOCdevkit" / "VOCsynthetic" / "synthetic.json").read_text())
    counts = np.zeros((len(dataset.classes), 2), np.int64)
    for index in range(len(dataset)):
        np.add.at(counts, (dataset.boxes_for(index)["labels"], dataset.modalities_for(index)), 1)
    assert counts.tolist() == stats["statistics"]["test"]["objects_per_class_modality"]


def test_a_dataset_without_modality_labels_gives_minus_one(tiny_data_root, tmp_path):
    voc_dir = tiny_data_root / "VOCdevkit" / "VOCsynthetic"
    classes = (voc_dir / "classes.txt").read_text().split()
    unlabelled = VOCDataset("synthetic", tiny_data_root, voc_dir, "test", classes)  # as VOC: no modality names
    assert unlabelled.modality_names == ()
    assert unlabelled.modalities_for(0).tolist() == [-1] * len(unlabelled.boxes_for(0)["labels"])
    # A copy of the tree whose first test image's objects lose their tag, then get an unknown one.
    shutil.copytree(tiny_data_root / "VOCdevkit", tmp_path / "VOCdevkit")
    xml = tmp_path / "VOCdevkit" / "VOCsynthetic" / "Annotations" / "test_000001.xml"
    original = xml.read_text(encoding="utf-8")
    assert original.count("<modality>") == len(unlabelled.boxes_for(0)["labels"])
    xml.write_text(re.sub(r"\s*<modality>[a-z]+</modality>", "", original), encoding="utf-8")
    assert get_dataset("synthetic", tmp_path, "test").modalities_for(0).tolist() == [-1] * original.count("<modality>")
    xml.write_text(re.sub(r"<modality>[a-z]+</modality>", "<modality>triple</modality>", original), encoding="utf-8")
    with pytest.raises(DatasetFormatError, match="modality 'triple' is not one of single, pair"):
        get_dataset("synthetic", tmp_path, "test").modalities_for(0)


# ------------------------------------------------------------------------------------------
# `wildcat evaluate` writes maps.npz


@pytest.fixture(scope="module")
def trained_run(tiny_data_root, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    train(tiny_config(tiny_data_root, epochs=1), run, progress=False)
    return run


@pytest.mark.slow
def test_the_model_before_training_is_the_one_train_starts_from(tiny_data_root, tmp_path, monkeypatch):
    """An oracle: the weights that `wildcat train` builds (caught at build_model) are those of
    initial_model with the run's seed, and building it leaves torch's generator as it was."""
    built = []

    def catching(config, num_classes):
        model = build_model(config, num_classes)
        built.append({key: value.clone() for key, value in model.state_dict().items()})
        return model

    build_model = train_module.build_model
    monkeypatch.setattr(train_module, "build_model", catching)
    config = tiny_config(tiny_data_root, epochs=1, seed=3)
    train(config, tmp_path / "run", progress=False)
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    model = initial_model(load_config(tmp_path / "run" / "config.yaml"), 4, torch.device("cpu"))
    assert torch.equal(torch.rand(1), expected_next)
    assert not model.training
    state = model.state_dict()
    assert state.keys() == built[0].keys()
    assert all(torch.equal(state[key], built[0][key]) for key in state)


@pytest.mark.slow
def test_evaluate_writes_maps_npz_beside_metrics_json(trained_run, tiny_data_root, tmp_path):
    out = tmp_path / "metrics.json"
    document = evaluate(trained_run, out, progress=False)
    with np.load(tmp_path / MAPS_FILE) as data:
        keys = set(data.files)
    documented = {"schema", "classes", "modality_names", "num_maps", "loc_tolerance_px", "seg_background",
                  "gallery_index", "gallery_id", "object_image", "object_label", "object_modality", "object_difficult",
                  "object_box", "object_trained", "object_untrained", "example_object", "example_window",
                  "example_image_size", "example_maps"}
    per_image = {"image", "box_labels", "boxes", "classes", "maps", "points", "hits", "seg_argmax", "seg_crf"}
    assert documented <= keys
    record = read_maps(tmp_path / MAPS_FILE)
    dataset = get_dataset("synthetic", tiny_data_root, "test")
    assert {f"gallery{g}_{name}" for g in range(len(record.gallery)) for name in per_image} <= keys
    assert all(f"example{e}_crop" in keys for e in range(len(record.examples)))
    # The gallery: the rule's images, in order, each with its classes' maps and the localization rule's hits.
    boxes = [dataset.boxes_for(i) for i in range(len(dataset))]
    assert [g.index for g in record.gallery] == gallery_indices(t["labels"] for t in boxes) and len(record.gallery) == 4
    assert record.classes == tuple(dataset.classes) and record.num_maps == 2
    assert record.seg_background == document["protocol"]["seg_background"]
    assert record.loc_tolerance_px == document["protocol"]["loc_tolerance_px"]
    for image in record.gallery:
        target = boxes[image.index]
        assert image.classes.tolist() == sorted(set(target["labels"].tolist())) and len(image.classes) >= 2
        assert image.maps.shape == (len(image.classes), 8, 8) and image.maps.dtype == np.float16  # 64 px / stride 8
        assert image.image.shape == (64, 64, 3) and image.seg_crf.shape == (64, 64)
        assert np.array_equal(image.mask, dataset.mask_for(image.index))
        for position, c in enumerate(image.classes):
            boxes_c = target["boxes"][target["labels"] == c]
            expected = point_hits_box(np.repeat(image.points[position][None], len(boxes_c), 0), boxes_c, 3.0).any()
            assert image.hits[position] == expected
    # The objects: every box of the split, in order, with its modality, and a finite peak per map.
    objects = record.objects
    assert len(objects) == sum(len(t["labels"]) for t in boxes)
    assert objects.label.tolist() == np.concatenate([t["labels"] for t in boxes]).tolist()
    assert objects.modality.tolist() == np.concatenate([dataset.modalities_for(i) for i in range(len(dataset))]).tolist()
    assert objects.trained.shape == objects.untrained.shape == (len(objects), 2)
    assert np.isfinite(objects.trained).all() and np.isfinite(objects.untrained).all()
    assert not np.allclose(objects.trained, objects.untrained)
    # Examples: the rule's objects, each with its class's 2 maps and a crop of its window.
    assert [e.object for e in record.examples] == example_objects(objects.label, objects.modality, objects.difficult)
    for example in record.examples:
        x0, y0, x1, y1 = example.window.tolist()
        assert example.crop.shape == (y1 - y0, x1 - x0, 3) and example.maps.shape == (2, 8, 8)
    # The peaks are those of the transfer layer's maps of the object's class (channels c M .. c M + M - 1),
    # recomputed here for the first images' objects, trained and before training.
    config = load_config(trained_run / "config.yaml")
    for model, peaks in ((load_trained(trained_run, config, 4, torch.device("cpu")), objects.trained),
                         (initial_model(config, 4, torch.device("cpu")), objects.untrained)):
        for index in range(3):
            image = eval_transform(config.image_size_px)(dataset.load_image_tensor(index))
            with torch.no_grad():
                transfer = model.transfer(model.features(image[None]))[0].numpy()
            for row in np.flatnonzero(objects.image == index):
                c = objects.label[row]
                expected = box_peaks(transfer[2 * c:2 * c + 2], objects.box[row][None], 64, 64)[0]
                assert np.allclose(peaks[row], expected, atol=1e-5)


class Scenes:
    """A stand-in test split without boxes (as 15 Scene and MIT Indoor): 3 images of 2 classes."""

    classes = ["coast", "forest"]
    modality_names = ()
    has_boxes = has_masks = False

    def __len__(self) -> int:
        return 3


def test_a_dataset_without_boxes_records_no_gallery_no_objects(tmp_path):
    recorder = MapRecorder(Scenes(), tiny_config(tmp_path), None)
    maps, scores = torch.zeros(3, 2, 4, 4), torch.zeros(3, 2)
    recorder.add([0, 1, 2], maps, scores, np.zeros((3, 2, 2)), torch.tensor([[64, 64]] * 3), torch.zeros(3, 4, 4, 4))
    assert recorder.num_objects == 0
    write_maps(tmp_path / MAPS_FILE, recorder.gathered())
    record = read_maps(tmp_path / MAPS_FILE)
    assert (record.gallery, record.examples, len(record.objects)) == ((), (), 0)
    assert record.objects.trained.shape == (0, 2) and record.classes == ("coast", "forest")
    assert math.isnan(record.seg_background)
