"""Tests for wildcat.data.synthetic: determinism, exact annotations, the VOC layout, content."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from wildcat.cli import build_parser, main
from wildcat.data.palette import voc_palette
from wildcat.data.synthetic import (
    CLASS_NAMES,
    DATASET_DIR,
    GENERATOR_VERSION,
    SHAPES,
    SPLITS,
    SyntheticSpec,
    SyntheticSpecError,
    class_design,
    image_ids,
    make_synthetic,
    render_image,
    segmentation_ids,
)
from wildcat.errors import WildcatError
from wildcat.grid import cli_options

ROOT = Path(__file__).resolve().parents[1]

# 24 images at 64 px, every split non-empty; occlusion raised so that "difficult" objects (and
# 0 labels) show up even in so few images.
SMALL = SyntheticSpec(seed=0, image_size_px=64, num_train=16, num_val=4, num_test=4, num_classes=6,
                      num_shared_pairs=2, occlusion_prob=0.5)


def tree_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def read_objects(xml_path: Path) -> list[dict]:
    """The objects of a VOC XML file (name, difficult, box, modality, part names)."""
    root = ET.parse(xml_path).getroot()
    objects = []
    for obj in root.findall("object"):
        box = obj.find("bndbox")
        objects.append({
            "name": obj.findtext("name"),
            "difficult": int(obj.findtext("difficult")),
            "box": tuple(int(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")),
            "modality": obj.findtext("modality"),
            "parts": [part.findtext("name") for part in obj.findall("part")],
        })
    return objects


def read_list(path: Path) -> list[str]:
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory) -> Path:
    return make_synthetic(tmp_path_factory.mktemp("synthetic"), SMALL)


# -- determinism --------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(small_tree, tmp_path):
    again = make_synthetic(tmp_path, SMALL)
    first, second = tree_hashes(small_tree), tree_hashes(again)
    assert len(first) == 24 * 3 + 2 * 4 + 4 * SMALL.num_classes + 2  # images x3, split lists, labels, meta
    assert first == second


def test_other_seed_gives_other_images(small_tree, tmp_path):
    other = tree_hashes(make_synthetic(tmp_path, SMALL, seed=1))
    first = tree_hashes(small_tree)
    jpegs = [name for name in first if name.endswith(".jpg")]
    assert jpegs and all(first[name] != other[name] for name in jpegs)
    assert first["classes.txt"] == other["classes.txt"]  # the look of the classes does not depend on the seed


def test_an_image_does_not_depend_on_the_other_splits():
    bigger = SyntheticSpec(**{**SMALL.to_dict(), "num_train": 40})
    for split, index in (("test", 2), ("train", 5)):
        a, b = render_image(SMALL, split, index), render_image(bigger, split, index)
        assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask) and a.objects == b.objects
    assert not np.array_equal(render_image(SMALL, "train", 0).image, render_image(SMALL, "test", 0).image)


# -- layout, annotations ------------------------------------------------------------------------


def test_layout_and_split_lists(small_tree):
    assert small_tree == small_tree.parents[1] / DATASET_DIR
    main, seg = small_tree / "ImageSets" / "Main", small_tree / "ImageSets" / "Segmentation"
    lists = {split: read_list(main / f"{split}.txt") for split in SPLITS}
    assert {s: len(ids) for s, ids in lists.items()} == SMALL.num_images
    assert lists == {split: image_ids(SMALL, split) for split in SPLITS}
    every = [i for split in SPLITS for i in lists[split]]
    assert len(set(every)) == len(every)  # the splits partition the ids
    assert sorted(every) == sorted(p.stem for p in (small_tree / "JPEGImages").iterdir())
    assert read_list(main / "trainval.txt") == lists["train"] + lists["val"]
    for split in SPLITS:  # the first ceil(segmentation_fraction * n) ids of each split
        count = math.ceil(SMALL.segmentation_fraction * len(lists[split]))
        assert read_list(seg / f"{split}.txt") == lists[split][:count] == segmentation_ids(SMALL, split)
    assert read_list(seg / "trainval.txt") == segmentation_ids(SMALL, "train") + segmentation_ids(SMALL, "val")
    for image_id in every:
        for folder, suffix in (("Annotations", ".xml"), ("SegmentationClass", ".png")):
            assert (small_tree / folder / f"{image_id}{suffix}").is_file()
    assert not [p for p in small_tree.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left
    umask = os.umask(0)
    os.umask(umask)
    assert small_tree.stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's private 0o700


def test_class_list_and_metadata(small_tree):
    classes = (small_tree / "classes.txt").read_text().splitlines()
    assert classes == list(CLASS_NAMES[:SMALL.num_classes])
    meta = json.loads((small_tree / "synthetic.json").read_text())
    assert meta["generator_version"] == GENERATOR_VERSION
    assert meta["spec"] == SMALL.to_dict()
    assert meta["design"]["classes"] == classes
    assert SyntheticSpec(**meta["spec"]) == SMALL  # the spec round-trips through the JSON


def test_boxes_are_the_bounding_boxes_of_the_mask_pixels(small_tree):
    classes = (small_tree / "classes.txt").read_text().splitlines()
    size = SMALL.image_size_px
    seen_void = False
    for xml_path in sorted((small_tree / "Annotations").glob("*.xml")):
        image_id = xml_path.stem
        with Image.open(small_tree / "SegmentationClass" / f"{image_id}.png") as im:
            assert im.mode == "P" and im.size == (size, size)
            assert im.getpalette()[:3 * 256] == voc_palette()
            mask = np.array(im)
        with Image.open(small_tree / "JPEGImages" / f"{image_id}.jpg") as im:
            assert im.format == "JPEG" and im.mode == "RGB" and im.size == (size, size)
        assert set(np.unique(mask)) <= {0, 255, *range(1, len(classes) + 1)}
        objects = read_objects(xml_path)
        assert objects
        covered = np.zeros_like(mask, dtype=bool)
        for obj in objects:
            xmin, ymin, xmax, ymax = obj["box"]
            assert 1 <= xmin <= xmax <= size and 1 <= ymin <= ymax <= size
            inside = mask[ymin - 1:ymax, xmin - 1:xmax] == classes.index(obj["name"]) + 1
            # Tight: the first and last rows and columns of the box hold pixels of the object.
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
            covered[ymin - 1:ymax, xmin - 1:xmax] |= inside
        labelled = (mask > 0) & (mask < 255)
        assert np.array_equal(covered, labelled)  # no class pixel outside its object's box
        # Void only in a band around the objects.
        void = mask == 255
        seen_void |= bool(void.any())
        near = np.zeros_like(labelled)
        r = SMALL.void_border_px
        padded = np.pad(labelled, r)
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                near |= padded[r + dy:r + dy + size, r + dx:r + dx + size]
        assert not (void & ~near).any()
    assert seen_void


def test_annotations_equal_the_rendered_records(small_tree):
    """Exact check against the generator's instance masks (boxes of the object's own pixels)."""
    classes = (small_tree / "classes.txt").read_text().splitlines()
    for split in SPLITS:
        for index, image_id in enumerate(image_ids(SMALL, split)):
            rendered = render_image(SMALL, split, index)
            objects = read_objects(small_tree / "Annotations" / f"{image_id}.xml")
            assert len(objects) == len(rendered.objects)
            for k, (obj, rec) in enumerate(zip(objects, rendered.objects)):
                ys, xs = np.nonzero(rendered.instance_mask == k)
                assert obj["box"] == rec.box == (xs.min() + 1, ys.min() + 1, xs.max() + 1, ys.max() + 1)
                assert obj["name"] == classes[rec.label] and obj["difficult"] == int(rec.difficult)
                assert obj["parts"] == [role for role, _, _ in rec.parts]
            with Image.open(small_tree / "SegmentationClass" / f"{image_id}.png") as im:
                assert np.array_equal(np.array(im), rendered.mask)
            with Image.open(small_tree / "JPEGImages" / f"{image_id}.jpg") as im:
                decoded = np.asarray(im, dtype=np.float32)
            assert np.abs(decoded - rendered.image).mean() < 4  # JPEG at quality 95, 4:4:4 (noise sigma 4)


def test_label_files_agree_with_the_xml(small_tree):
    classes = (small_tree / "classes.txt").read_text().splitlines()
    main = small_tree / "ImageSets" / "Main"
    zeros = 0
    for split in (*SPLITS, "trainval"):
        ids = read_list(main / f"{split}.txt")
        objects = {i: read_objects(small_tree / "Annotations" / f"{i}.xml") for i in ids}
        for name in classes:
            lines = (main / f"{name}_{split}.txt").read_text().splitlines()
            assert [line.split()[0] for line in lines] == ids
            for line in lines:
                image_id, label = line[:-3], line[-3:]
                assert line == f"{image_id} {int(label):2d}"  # VOC's "%s %2d"
                flags = [o["difficult"] for o in objects[image_id] if o["name"] == name]
                expected = -1 if not flags else 0 if all(flags) else 1
                assert int(label) == expected
                zeros += int(label) == 0
    assert zeros > 0  # the difficult rule was exercised


# -- content: what WILDCAT has to learn ------------------------------------------------------------


def test_class_design():
    for num_classes, num_pairs in ((8, 3), (12, 6), (2, 0), (2, 1), (5, 2)):
        design = class_design(num_classes, num_pairs)
        parts = design.parts
        assert len(set(parts)) == len(parts)
        for a in range(len(parts)):  # distinct parts differ in at least two of shape, texture, colour
            for b in range(a):
                assert sum(getattr(parts[a], f) != getattr(parts[b], f) for f in ("shape", "texture", "colour")) >= 2
        for c in range(num_classes):  # the three parts of a class differ in all three
            looks = [parts[p] for p in (design.emblem[c], design.base[c], design.mark[c])]
            for f in ("shape", "texture", "colour"):
                assert len({getattr(p, f) for p in looks}) == 3
        assert design.shared_pairs == tuple((2 * j, 2 * j + 1) for j in range(num_pairs))
        for y, x in design.shared_pairs:
            assert design.base[x] == design.emblem[y]
            assert design.mark[x] not in {*design.emblem, *design.base, *design.mark[:x], *design.mark[x + 1:]}
        assert not set(design.lone_parts) & set(design.emblem)
        looks = {tuple(row) for row in design.distractor_looks}
        assert not looks & {(p.shape, p.texture, p.colour) for p in parts}
        assert len(looks) == len(SHAPES) * 5 * 8 - len(parts)


def test_content_features_are_present():
    spec = SyntheticSpec(seed=3, image_size_px=64, num_train=300, num_test=0)
    design = class_design(spec.num_classes, spec.num_shared_pairs)
    images = [render_image(spec, "train", i) for i in range(spec.num_train)]
    objects = [o for im in images for o in im.objects]
    counts = np.zeros((spec.num_classes, 2), dtype=int)
    for o in objects:
        counts[o.label, o.modality] += 1
        sizes = [b[2] - b[0] + 1 for b in (o.box,)] + [o.box[3] - o.box[1] + 1]
        assert max(sizes) <= 0.4 * spec.image_size_px  # small objects
    assert (counts >= 5).all()  # every class with each of its modalities
    # Negative evidence: the emblem of y shows alone (a y) and as the base of x (an x).
    for y, x in design.shared_pairs:
        assert counts[y, 0] > 0 and counts[x, 1] > 0
        in_x = [o for o in objects if o.label == x and o.modality == 1 and o.parts and o.parts[0][0] == "base"]
        assert in_x and all(o.parts[0][1] == design.emblem[y] for o in in_x)
    per_image = [len(im.objects) for im in images]
    assert min(per_image) >= 1 and max(per_image) <= 3
    multilabel = np.mean([len({o.label for o in im.objects}) > 1 for im in images])
    assert 0.3 < multilabel < 0.9
    lone = np.mean([bool(im.lone_parts) for im in images])
    assert abs(lone - spec.lone_part_prob) < 0.1
    assert all(p in design.lone_parts for im in images for p in im.lone_parts)
    difficult = np.mean([o.difficult for o in objects])
    assert 0 < difficult < 0.15
    assert np.mean([im.num_distractors for im in images]) >= 2


def test_no_lone_parts_when_the_knob_is_off():
    spec = SyntheticSpec(image_size_px=64, num_train=60, num_test=0, lone_part_prob=0.0)
    assert not any(render_image(spec, "train", i).lone_parts for i in range(60))


# -- regeneration and options -------------------------------------------------------------------


def test_complete_tree_is_kept_and_other_spec_replaces_it(tmp_path):
    spec = SyntheticSpec(image_size_px=48, num_train=3, num_test=2, num_classes=3, num_shared_pairs=1)
    path = make_synthetic(tmp_path, spec)
    probe = path / "JPEGImages" / "train_000001.jpg"
    stamp = probe.stat().st_mtime_ns
    os.utime(probe, ns=(stamp - 10**9, stamp - 10**9))
    assert make_synthetic(tmp_path, spec) == path
    assert probe.stat().st_mtime_ns == stamp - 10**9  # not rewritten
    make_synthetic(tmp_path, spec, seed=5)
    assert json.loads((path / "synthetic.json").read_text())["spec"]["seed"] == 5
    assert [p.name for p in (tmp_path / "VOCdevkit").iterdir()] == [DATASET_DIR.name]
    probe.unlink()  # an incomplete tree is regenerated
    make_synthetic(tmp_path, spec, seed=5)
    assert probe.is_file()


def test_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    foreign = tmp_path / DATASET_DIR
    foreign.mkdir(parents=True)
    (foreign / "mine.txt").write_text("keep me")
    with pytest.raises(WildcatError, match="not written by the synthetic generator"):
        make_synthetic(tmp_path, SyntheticSpec(image_size_px=48, num_train=2, num_test=0))
    assert (foreign / "mine.txt").read_text() == "keep me"


def test_fills_an_empty_folder(tmp_path):
    """Snakemake creates the folder of the rule's output (synthetic.json) before the job runs."""
    (tmp_path / DATASET_DIR).mkdir(parents=True)
    path = make_synthetic(tmp_path, SyntheticSpec(image_size_px=48, num_train=2, num_test=1))
    assert (path / "synthetic.json").is_file()


@pytest.mark.parametrize(
    ("options", "name"),
    [({"image_size_px": 8}, "image_size_px"), ({"num_classes": 13}, "num_classes"),
     ({"num_shared_pairs": 3, "num_classes": 4}, "num_shared_pairs"), ({"lone_part_prob": 1.5}, "lone_part_prob"),
     ({"objects_per_image": (3, 1)}, "objects_per_image"), ({"part_size_frac": (0.1, 0.5)}, "part_size_frac"),
     ({"num_train": 0, "num_test": 0}, "num_train"), ({"seed": -1}, "seed"), ({"num_train": 1.5}, "num_train")],
)
def test_bad_options_say_which(options, name):
    with pytest.raises(SyntheticSpecError, match=name):
        SyntheticSpec(**options)


def test_unknown_option(tmp_path):
    with pytest.raises(SyntheticSpecError, match="unknown synthetic option"):
        make_synthetic(tmp_path, size=64)


# -- loading through the VOC dataset class ----------------------------------------------------------


def test_loads_through_get_dataset(small_tree):
    from wildcat.data import get_dataset

    root = small_tree.parents[1]
    classes = (small_tree / "classes.txt").read_text().splitlines()
    for split in (*SPLITS, "trainval"):
        dataset = get_dataset("synthetic", root, split)
        assert dataset.classes == classes and dataset.task == "multilabel"
        names = [split] if split != "trainval" else ["train", "val"]
        records = [(s, i) for s in names for i in range(SMALL.num_images[s])]
        assert len(dataset) == len(records)
        assert dataset.has_boxes and dataset.has_masks
        for k, (s, i) in enumerate(records):
            rendered = render_image(SMALL, s, i)
            assert dataset.image_id(k) == image_ids(SMALL, s)[i]
            expected = np.full(len(classes), -1, dtype=np.int8)
            for o in rendered.objects:
                expected[o.label] = max(expected[o.label], 0 if o.difficult else 1)
            assert np.array_equal(dataset.targets[k], expected)
            boxes = dataset.boxes_for(k)
            assert boxes["labels"].tolist() == [o.label for o in rendered.objects]
            assert boxes["boxes"].tolist() == [list(map(float, o.box)) for o in rendered.objects]
            assert boxes["difficult"].tolist() == [o.difficult for o in rendered.objects]
            if image_ids(SMALL, s)[i] in segmentation_ids(SMALL, s):
                assert np.array_equal(dataset.mask_for(k), rendered.mask)
            else:  # outside ImageSets/Segmentation: no mask, as for most VOC images
                assert dataset.mask_for(k) is None
            assert dataset.load_image(k).size == (SMALL.image_size_px, SMALL.image_size_px)
        image, target = dataset[0]
        assert target.tolist() == dataset.targets[0].tolist()


# -- the command line, the workflow config, the imports ---------------------------------------------


def spec_of_command(argv: list[str]) -> SyntheticSpec:
    """The spec that ``wildcat make-synthetic <argv>`` builds (what ``_cmd_make_synthetic`` passes on)."""
    args = build_parser().parse_args(["make-synthetic", *argv])
    return SyntheticSpec(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SyntheticSpec)
                            if getattr(args, f.name) is not None})


def test_command_has_one_option_per_field_spelled_as_cli_options_spells_it(tmp_path, capsys):
    # Every field away from its default; the options written by cli_options from the JSON spec.
    spec = SyntheticSpec(seed=7, image_size_px=48, num_train=3, num_val=1, num_test=2, num_classes=5,
                         num_shared_pairs=1, objects_per_image=(2, 4), part_size_frac=(0.12, 0.2), pair_prob=0.7,
                         lone_part_prob=0.6, lone_parts_per_image=(1, 3), distractors_per_image=(0, 3),
                         occlusion_prob=0.4, difficult_visible_frac=0.6, difficult_min_area_frac=0.01,
                         void_border_px=3, jpeg_quality=80, segmentation_fraction=0.5)
    assert all(getattr(spec, f.name) != f.default for f in dataclasses.fields(SyntheticSpec))
    options = shlex.split(cli_options(spec.to_dict()))
    assert "--image-size-px=48" in options and "--objects-per-image=[2, 4]" in options
    assert spec_of_command(["--root", "x", *options]) == spec
    assert main(["make-synthetic", "--quiet", "--root", str(tmp_path), *options]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / DATASET_DIR)
    assert json.loads((tmp_path / DATASET_DIR / "synthetic.json").read_text(encoding="utf-8"))["spec"] == spec.to_dict()
    assert spec_of_command(["--root", "x", "--part-size-frac", "0.1,0.2"]).part_size_frac == (0.1, 0.2)
    assert spec_of_command(["--root", "x"]) == SyntheticSpec()  # an option left out keeps the default


def test_bad_range_option_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["make-synthetic", "--root", "x", "--objects-per-image", "1.5,3"])
    assert exit_info.value.code == 2 and "invalid int range value: '1.5,3'" in capsys.readouterr().err


def test_config_keys_are_the_spec_fields():
    fields = [f.name for f in dataclasses.fields(SyntheticSpec)]
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text(encoding="utf-8"))
    assert list(schema["properties"]["synthetic"]["properties"]) == fields
    for config in ("config/config.yaml", "tests/data/tiny_workflow.yaml"):
        block = yaml.safe_load((ROOT / config).read_text(encoding="utf-8"))["synthetic"]
        assert SyntheticSpec(**block).to_dict() == {**SyntheticSpec().to_dict(), **block}


@pytest.mark.slow
def test_data_rule_passes_the_config_block_as_the_options(tmp_path):
    snakemake = Path(sys.executable).with_name("snakemake")
    result = subprocess.run(
        [str(snakemake), "-n", "-p", "--forceall", "--configfile", str(ROOT / "tests/data/tiny_workflow.yaml"),
         "--directory", str(tmp_path), "data/.wildcat/synthetic.complete"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    [command] = [line for line in result.stdout.splitlines() if " make-synthetic " in line]
    argv = shlex.split(command.split(" make-synthetic ", 1)[1].split(" > ", 1)[0])
    block = yaml.safe_load((ROOT / "tests/data/tiny_workflow.yaml").read_text(encoding="utf-8"))["synthetic"]
    assert spec_of_command(argv) == SyntheticSpec(**block)


def test_generator_imports_neither_torch_nor_torchvision():
    code = ("import sys, wildcat.data.synthetic; "
            "assert 'torch' not in sys.modules and 'torchvision' not in sys.modules, sorted(sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
