"""Tiny archives with the real folder layouts of the six datasets, and a local HTTP server.

Used by tests/test_download.py and tests/test_datasets.py (imported as a plain module: pytest
puts tests/ on sys.path). Nothing here reaches the internet: the server listens on 127.0.0.1.

The annotations are written by hand below; the tests repeat the expected labels, boxes and masks
as literals rather than recomputing them from these tables.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import io
import json
import re
import socket
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wildcat.data import download as dl
from wildcat.data import sources
from wildcat.data.palette import voc_palette

# -- images and archive writers --------------------------------------------------------------

def jpeg_bytes(width: int, height: int, value: int = 128, mode: str = "RGB") -> bytes:
    color = value if mode == "L" else (value, 255 - value, (3 * value) % 256)
    buffer = io.BytesIO()
    Image.new(mode, (width, height), color).save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def painted_jpeg_bytes(labels: np.ndarray) -> bytes:
    """A JPEG of ``labels`` (H, W) in the VOC colour map (0 background black, c + 1 the colour of
    class c), with full-resolution chroma (4:4:4) and quality 100, so that every pixel keeps the
    colour of its label to within a few levels."""
    colours = np.array(voc_palette(), np.uint8).reshape(-1, 3)
    buffer = io.BytesIO()
    Image.fromarray(colours[labels]).save(buffer, format="JPEG", quality=100, subsampling=0)
    return buffer.getvalue()


def palette_png_bytes(mask: np.ndarray) -> bytes:
    """A VOC-style palette PNG of class indices (255 = void)."""
    image = Image.fromarray(mask.astype(np.uint8), mode="P")
    palette = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [64, 64, 64] * 252
    image.putpalette(palette[: 255 * 3] + [224, 224, 192])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def tar_bytes(files: dict[str, bytes], extra: list[tarfile.TarInfo] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as handle:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            handle.addfile(info, io.BytesIO(data))
        for info in extra or []:
            handle.addfile(info)
    return buffer.getvalue()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as handle:
        for name, data in files.items():
            handle.writestr(name, data)
    return buffer.getvalue()


def unsafe_archive_like(filename: str, member: str = "../evil.txt") -> bytes:
    """An archive of the same format as ``filename`` with one path-traversal member."""
    files = {"ok.txt": b"fine", member: b"evil"}
    return zip_bytes(files) if filename.endswith(".zip") else tar_bytes(files)


# -- VOC ---------------------------------------------------------------------------------------

def voc_xml(filename: str, size: tuple[int, int], objects: list[dict]) -> bytes:
    """``objects``: dicts with name, box (xmin, ymin, xmax, ymax), difficult (0/1, optional:
    omitted from the XML when None), actions (optional dict action -> 0/1)."""
    parts = [f"<annotation><folder>VOC</folder><filename>{filename}</filename>",
             f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>",
             "<segmented>0</segmented>"]
    for obj in objects:
        parts.append(f"<object><name>{obj['name']}</name><pose>Unspecified</pose><truncated>0</truncated>")
        if obj.get("difficult") is not None:
            parts.append(f"<difficult>{obj['difficult']}</difficult>")
        xmin, ymin, xmax, ymax = obj["box"]
        parts.append(f"<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox>")
        if "actions" in obj:
            parts.append("<actions>" + "".join(f"<{a}>{v}</{a}>" for a, v in obj["actions"].items()) + "</actions>")
        parts.append("</object>")
    parts.append("</annotation>")
    return "".join(parts).encode()


VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")
ACTIONS = ("other", "jumping", "phoning", "playinginstrument", "reading", "ridingbike", "ridinghorse", "running",
           "takingphoto", "usingcomputer", "walking")

#: image id -> (width, height), objects. Hand-written (boxes are VOC 1-based pixels).
VOC2007_IMAGES = {
    # trainval
    "000005": ((20, 16), [dict(name="chair", box=(3, 2, 12, 10), difficult=0),
                          dict(name="chair", box=(1, 1, 4, 4), difficult=1)]),
    "000007": ((18, 14), [dict(name="car", box=(2, 3, 17, 13), difficult=0)]),
    "000009": ((16, 16), [dict(name="horse", box=(1, 2, 9, 15), difficult=1),
                          dict(name="person", box=(5, 4, 12, 16), difficult=0)]),
    # test
    "000001": ((22, 18), [dict(name="dog", box=(2, 8, 10, 17), difficult=0),
                          dict(name="person", box=(1, 1, 21, 18), difficult=None)]),  # no <difficult> tag
    "000002": ((14, 20), [dict(name="train", box=(3, 5, 12, 19), difficult=0)]),
}
VOC2007_SPLITS = {"trainval": ["000005", "000007", "000009"], "test": ["000001", "000002"]}
#: segmentation masks (H, W): 0 background, c + 1 class c, 255 void.
VOC2007_SEG = {"trainval": ["000007"], "test": ["000002"]}
#: The real trainval tar's train and val lists (Main and Segmentation), which
#: ``voc2007_archives(train_val_lists=True)`` adds: the default ``seg_tune_split`` is ``train``.
VOC2007_TRAIN_VAL = {"train": ["000005", "000007"], "val": ["000009"]}
VOC2007_SEG_TRAIN = {"train": ["000007"]}


def _targets(objects: list[dict]) -> dict[str, int]:
    """The devkit's per-class label of an image: 1 / 0 (only difficult) / -1."""
    labels = {c: -1 for c in VOC_CLASSES}
    for obj in objects:
        labels[obj["name"]] = max(labels[obj["name"]], 0 if obj.get("difficult") == 1 else 1)
    return labels


def voc_mask(image_id: str, size: tuple[int, int], objects: list[dict]) -> np.ndarray:
    """A mask painting each object's box with its class index + 1 and a void border of 1 px."""
    width, height = size
    mask = np.zeros((height, width), dtype=np.uint8)
    for obj in objects:
        xmin, ymin, xmax, ymax = obj["box"]
        mask[ymin - 1:ymax, xmin - 1:xmax] = VOC_CLASSES.index(obj["name"]) + 1
    mask[0, :] = 255
    return mask


def painted_labels(image_id: str, size: tuple[int, int], objects: list[dict]) -> np.ndarray:
    """The labels an image of a painted tree shows: its :func:`voc_mask` without the void border."""
    labels = voc_mask(image_id, size, objects)
    labels[labels == 255] = 0
    return labels


def _voc_tree(folder: str, images: dict, splits: dict[str, list[str]], seg: dict[str, list[str]],
              only: list[str] | None = None, painted: bool = False) -> dict[str, bytes]:
    """Files of a VOC tree under ``VOCdevkit/<folder>/`` for the splits ``only`` (all by default).
    The images are plain colours, or with ``painted`` their :func:`painted_labels` in the VOC
    colour map (objects that a stand-in model can see, for oracle tests)."""
    base = f"VOCdevkit/{folder}"
    files: dict[str, bytes] = {}
    for split, ids in splits.items():
        if only is not None and split not in only:
            continue
        files[f"{base}/ImageSets/Main/{split}.txt"] = "".join(f"{i}\n" for i in ids).encode()
        for c in VOC_CLASSES:
            rows = "".join(f"{i} {_targets(images[i][1])[c]:2d}\n" for i in ids)
            files[f"{base}/ImageSets/Main/{c}_{split}.txt"] = rows.encode()
        if split in seg:
            files[f"{base}/ImageSets/Segmentation/{split}.txt"] = "".join(f"{i}\n" for i in seg[split]).encode()
            for i in seg[split]:
                files[f"{base}/SegmentationClass/{i}.png"] = palette_png_bytes(voc_mask(i, *images[i]))
        for k, i in enumerate(ids):
            size, objects = images[i]
            files[f"{base}/JPEGImages/{i}.jpg"] = (painted_jpeg_bytes(painted_labels(i, size, objects)) if painted
                                                   else jpeg_bytes(*size, value=40 + 30 * k))
            files[f"{base}/Annotations/{i}.xml"] = voc_xml(f"{i}.jpg", size, objects)
    return files


@functools.cache
def voc2007_archives(painted: bool = False, train_val_lists: bool = False) -> dict[str, bytes]:
    """The two VOC 2007 tars (``painted``: see :func:`_voc_tree`); ``train_val_lists``: the trainval
    tar also holds the train and val lists (:data:`VOC2007_TRAIN_VAL`), as the real one does."""
    extra = VOC2007_TRAIN_VAL if train_val_lists else {}
    splits = {**extra, **VOC2007_SPLITS}  # trainval last: its images are the ones written
    seg = {**(VOC2007_SEG_TRAIN if train_val_lists else {}), **VOC2007_SEG}
    return {
        "VOCtrainval_06-Nov-2007.tar": tar_bytes(_voc_tree("VOC2007", VOC2007_IMAGES, splits, seg,
                                                           only=[*extra, "trainval"], painted=painted)),
        "VOCtest_06-Nov-2007.tar": tar_bytes(_voc_tree("VOC2007", VOC2007_IMAGES, VOC2007_SPLITS, VOC2007_SEG,
                                                       only=["test"], painted=painted)),
    }


VOC2012_IMAGES = {
    "2008_000001": ((20, 15), [dict(name="cat", box=(2, 2, 10, 12), difficult=0)]),
    "2008_000002": ((16, 12), [dict(name="bird", box=(4, 3, 8, 9), difficult=0),
                               dict(name="cat", box=(1, 1, 3, 3), difficult=1)]),
    "2008_000003": ((18, 18), [dict(name="aeroplane", box=(1, 2, 17, 9), difficult=0),
                               dict(name="tvmonitor", box=(10, 10, 18, 18), difficult=0)]),
    "2008_000004": ((12, 12), [dict(name="sheep", box=(2, 2, 11, 11), difficult=0)]),
    "2008_000005": ((14, 10), [dict(name="bus", box=(2, 2, 13, 9), difficult=1)]),
}
VOC2012_SPLITS = {"train": ["2008_000001", "2008_000002"], "val": ["2008_000003", "2008_000004", "2008_000005"]}
#: 2008_000005 is in segmentation val and in classification val; 2008_000004 is not segmented.
VOC2012_SEG = {"train": ["2008_000001"], "val": ["2008_000003", "2008_000005"]}

#: Action images: persons with per-action labels in the XML (<actions>) and in the lists.
#: image -> (split, size, [(box, {action: label in the lists})]); XML actions: 1 where label is 1.
VOC2012_ACTION = {
    "2010_000010": ("train", (20, 20), [((2, 2, 10, 19), {"jumping": 1, "running": -1}),
                                        ((11, 3, 19, 19), {"jumping": -1, "running": 1})]),
    "2010_000011": ("train", (16, 16), [((1, 1, 15, 15), {"walking": 1})]),
    "2010_000012": ("val", (18, 16), [((3, 1, 12, 16), {"reading": 1, "phoning": 0})]),
    "2010_000013": ("val", (16, 18), [((1, 1, 8, 17), {"walking": 1, "phoning": -1}),
                                      ((9, 2, 16, 18), {"walking": -1, "phoning": 0})]),
}


@functools.cache
def voc2012_archives(painted: bool = False) -> dict[str, bytes]:
    """The VOC 2012 trainval tar, Action lists included (``painted``: the VOC images, see :func:`_voc_tree`)."""
    files = _voc_tree("VOC2012", VOC2012_IMAGES, VOC2012_SPLITS, VOC2012_SEG, painted=painted)
    base = "VOCdevkit/VOC2012"
    for split in ("train", "val"):
        ids = [i for i, (s, _, _) in VOC2012_ACTION.items() if s == split]
        files[f"{base}/ImageSets/Action/{split}.txt"] = "".join(f"{i}\n" for i in ids).encode()
        for action in ACTIONS[1:]:
            rows = []
            for i in ids:
                for person, (_, labels) in enumerate(VOC2012_ACTION[i][2], start=1):
                    rows.append(f"{i} {person} {labels.get(action, -1):2d}\n")
            files[f"{base}/ImageSets/Action/{action}_{split}.txt"] = "".join(rows).encode()
    for k, (i, (_split, size, persons)) in enumerate(VOC2012_ACTION.items()):
        objects = [dict(name="person", box=box, difficult=None,
                        actions={a: int(labels.get(a, -1) == 1) for a in ACTIONS}) for box, labels in persons]
        files[f"{base}/JPEGImages/{i}.jpg"] = jpeg_bytes(*size, value=20 + 40 * k)
        files[f"{base}/Annotations/{i}.xml"] = voc_xml(f"{i}.jpg", size, objects)
    return {"VOCtrainval_11-May-2012.tar": tar_bytes(files)}


# -- SBD and the VOC 2012 test images -------------------------------------------------------

#: SBD's lists, chosen to exercise the set arithmetic of train_aug against VOC2012_SEG:
#: 2008_000003 (SBD train) and 2008_000005 (SBD val) are segmentation-val images (dropped);
#: 2008_000001 is also in segmentation train and 2010_000011 in both SBD lists (counted once).
#: Every id is an image of voc2012_archives() with an XML file, as in the real data.
SBD_SPLITS = {"train": ["2010_000011", "2008_000003", "2008_000002", "2010_000010"],
              "val": ["2008_000004", "2010_000011", "2008_000005", "2008_000001"]}
#: The train_aug list these give, worked out by hand: (seg train | SBD train | SBD val) - seg val.
SBD_TRAIN_AUG = ["2008_000001", "2008_000002", "2008_000004", "2010_000010", "2010_000011"]


def sbd_mat_bytes(mask: np.ndarray) -> bytes:
    """An SBD ``cls/<id>.mat``: struct ``GTcls`` with ``Segmentation`` (H, W) uint8, ``Boundaries``
    (a 20 x 1 cell of sparse (H, W) matrices) and ``CategoriesPresent``, as torchvision reads it."""
    import scipy.io
    import scipy.sparse

    boundaries = np.empty((20, 1), dtype=object)
    for c in range(20):
        edge = (mask == c + 1) & ~np.pad(mask == c + 1, 1)[2:, 1:-1]  # bottom edge of the class region
        boundaries[c, 0] = scipy.sparse.csc_matrix(edge.astype(np.uint8))
    present = np.array([c for c in range(1, 21) if (mask == c).any()], dtype=np.uint8).reshape(-1, 1)
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"GTcls": {"Segmentation": mask.astype(np.uint8), "Boundaries": boundaries,
                                        "CategoriesPresent": present}}, do_compression=True)
    return buffer.getvalue()


def tgz_bytes(files: dict[str, bytes]) -> bytes:
    import gzip

    return gzip.compress(tar_bytes(files), mtime=0)


@functools.cache
def sbd_archives(splits: tuple | None = None) -> dict[str, bytes]:
    """``benchmark.tgz`` with the real layout ``benchmark_RELEASE/dataset/{train,val}.txt, img/, cls/``
    (the real archive also has ``inst/``, which nothing here reads).
    ``splits``: ``((name, (ids...)), ...)`` to replace :data:`SBD_SPLITS`."""
    lists = {k: list(v) for k, v in splits} if splits is not None else SBD_SPLITS
    base = "benchmark_RELEASE/dataset"
    files = {f"{base}/{name}.txt": "".join(f"{i}\n" for i in ids).encode() for name, ids in lists.items()}
    all_images = {**VOC2012_IMAGES, **{i: (size, [dict(name="person", box=box) for box, _ in persons])
                                       for i, (_, size, persons) in VOC2012_ACTION.items()}}
    for k, image_id in enumerate(sorted({i for ids in lists.values() for i in ids})):
        size, objects = all_images.get(image_id, ((10, 8), []))
        mask = voc_mask(image_id, size, objects)
        mask[mask == 255] = 0  # SBD masks have no void label
        files[f"{base}/img/{image_id}.jpg"] = jpeg_bytes(*size, value=30 + 20 * k)
        files[f"{base}/cls/{image_id}.mat"] = sbd_mat_bytes(mask)
    return {"benchmark.tgz": tgz_bytes(files)}


#: VOC 2012 test images (the tar from the evaluation server): ids only, no labels.
VOC2012_TEST_IDS = ["2008_000006", "2008_000011", "2009_000012"]


@functools.cache
def voc2012_test_archive() -> dict[str, bytes]:
    """``VOC2012test.tar``: ``VOCdevkit/VOC2012/ImageSets/Main/test.txt`` and the JPEGs."""
    base = "VOCdevkit/VOC2012"
    files = {f"{base}/ImageSets/Main/test.txt": "".join(f"{i}\n" for i in VOC2012_TEST_IDS).encode()}
    for k, image_id in enumerate(VOC2012_TEST_IDS):
        files[f"{base}/JPEGImages/{image_id}.jpg"] = jpeg_bytes(12 + k, 10, value=60 + 50 * k)
    return {"VOC2012test.tar": tar_bytes(files)}


# -- COCO ------------------------------------------------------------------------------------

#: Categories deliberately out of id order in the JSON: the loader must sort them by id.
COCO_CATEGORIES = [{"id": 90, "name": "toothbrush", "supercategory": "indoor"},
                   {"id": 1, "name": "person", "supercategory": "person"},
                   {"id": 3, "name": "car", "supercategory": "vehicle"}]
#: split -> [(image id, (w, h), [(category id, [x, y, w, h], iscrowd)])]
COCO_IMAGES = {
    "train2014": [(9, (20, 16), [(1, [1.0, 2.0, 5.0, 6.0], 0), (3, [10.0, 4.0, 8.0, 8.0], 0)]),
                  (25, (16, 16), [(90, [0.5, 0.5, 4.0, 2.0], 0)])],
    "val2014": [(42, (18, 14), [(1, [10.0, 20.0, 30.0, 40.0], 0), (1, [0.0, 0.0, 4.0, 4.0], 0)]),
                (73, (14, 14), [(90, [1.5, 2.5, 3.0, 4.0], 1)]),  # crowd only
                (74, (12, 10), [])],  # no annotation at all
}


def coco_file_name(split: str, image_id: int) -> str:
    return f"COCO_{split}_{image_id:012d}.jpg"


@functools.cache
def coco_archives() -> dict[str, bytes]:
    archives, annotation_files = {}, {}
    annotation_id = 1
    for split, images in COCO_IMAGES.items():
        archives[f"{split}.zip"] = zip_bytes({f"{split}/{coco_file_name(split, i)}": jpeg_bytes(*size, value=10 * k + 50)
                                              for k, (i, size, _) in enumerate(images)})
        dataset = {"info": {}, "licenses": [], "categories": COCO_CATEGORIES, "images": [], "annotations": []}
        for i, (width, height), image_annotations in images:
            dataset["images"].append({"id": i, "file_name": coco_file_name(split, i), "width": width, "height": height})
            for category, bbox, crowd in image_annotations:
                dataset["annotations"].append({"id": annotation_id, "image_id": i, "category_id": category, "bbox": bbox,
                                               "area": bbox[2] * bbox[3], "iscrowd": crowd, "segmentation": []})
                annotation_id += 1
        annotation_files[f"annotations/instances_{split}.json"] = json.dumps(dataset).encode()
    archives["annotations_trainval2014.zip"] = zip_bytes(annotation_files)
    return archives


# -- scenes ----------------------------------------------------------------------------------

MIT67_TRAIN = ["kitchen/int1.jpg", "kitchen/int2.jpg", "bar/b_1.jpg", "bar/b_2.jpg",
               "airport_inside/a 1.jpg", "airport_inside/a2.jpg"]
MIT67_TEST = ["bar/b_3.jpg", "kitchen/int3.jpg", "airport_inside/a3.jpg"]


@functools.cache
def mit67_archives() -> dict[str, bytes]:
    images = {f"Images/{name}": jpeg_bytes(12 + k, 10, value=20 * k, mode="L" if k == 0 else "RGB")
              for k, name in enumerate(MIT67_TRAIN + MIT67_TEST)}
    return {
        "indoorCVPR_09.tar": tar_bytes(images),
        "TrainImages.txt": "".join(f"{line}\r\n" for line in MIT67_TRAIN).encode(),  # CRLF as on the MIT site
        "TestImages.txt": "".join(f"{line}\n" for line in MIT67_TEST).encode(),
    }


SCENE15_FOLDERS = ("PARoffice", "kitchen", "MITinsidecity", "MITforest", "MITcoast", "MITstreet", "store",
                   "industrial", "bedroom", "MITmountain", "MIThighway", "MITopencountry", "CALsuburb",
                   "MITtallbuilding", "livingroom")
#: images per folder: 101, 102, 103, 101, ... (more than the 100 training images of the protocol)
SCENE15_COUNTS = {name: 101 + k % 3 for k, name in enumerate(SCENE15_FOLDERS)}


@functools.cache
def scene15_archives() -> dict[str, bytes]:
    tiny = {v: jpeg_bytes(6, 5, value=v, mode="L") for v in range(0, 250, 10)}
    files = {f"{name}/image_{n:04d}.jpg": tiny[(n * 10) % 250]
             for name, count in SCENE15_COUNTS.items() for n in range(1, count + 1)}
    return {"scene_categories.zip": zip_bytes(files)}


ARCHIVES = {
    "voc2007": voc2007_archives,
    "voc2012": voc2012_archives,
    "voc2012_action": voc2012_archives,
    "sbd": sbd_archives,
    "coco2014": coco_archives,
    "mit67": mit67_archives,
    "scene15": scene15_archives,
}


def fake_source(name: str, base_url: str, archives: dict[str, bytes] | None = None,
                wrong_md5: frozenset = frozenset()) -> sources.DatasetSource:
    """The real table entry of ``name`` with URLs on ``base_url`` and the fakes' checksums."""
    archives = archives if archives is not None else ARCHIVES[name]()
    real = sources.SOURCES[name]
    files = []
    for remote in real.files:
        data = archives[remote.filename]
        md5 = "0" * 32 if remote.filename in wrong_md5 else hashlib.md5(data).hexdigest()
        files.append(dataclasses.replace(remote, urls=(f"{base_url}/{remote.filename}",), md5=md5,
                                         sha1=hashlib.sha1(data).hexdigest(), size_bytes=len(data)))
    return dataclasses.replace(real, files=tuple(files))


# -- a local HTTP server with Range support ----------------------------------------------------

class FakeServer:
    """Serves ``files`` (name -> bytes) at ``url/<name>``, one thread per request, with ``Range:
    bytes=N-`` answered 206; ``drop_once`` names are cut after half their bytes on the first
    request; ``ignore_range`` answers 200 with the whole file always; ``chunk_delay_s`` waits after
    each :data:`CHUNK_BYTES` of a body (a slow link, so that two clients' transfers overlap)."""

    CHUNK_BYTES = 8192

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.drop_once: set[str] = set()
        self.ignore_range = False
        self.chunk_delay_s = 0.0
        self.requests: list[tuple[str, str | None]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep the test output clean
                pass

            def do_GET(self) -> None:
                name = self.path.lstrip("/")
                range_header = self.headers.get("Range")
                with server._lock:
                    server.requests.append((name, range_header))
                    drop = name in server.drop_once
                    server.drop_once.discard(name)
                data = server.files.get(name)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
                if match and not server.ignore_range:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if drop:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                for offset in range(0, len(body), server.CHUNK_BYTES):
                    self.wfile.write(body[offset:offset + server.CHUNK_BYTES])
                    if server.chunk_delay_s:
                        self.wfile.flush()
                        time.sleep(server.chunk_delay_s)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def names_requested(self) -> list[str]:
        return [name for name, _ in self.requests]

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def serve(files: dict[str, bytes]) -> Iterator[FakeServer]:
    with FakeServer(files) as server:
        yield server


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def install(name: str, root: Path) -> None:
    """Put the fake archives of ``name`` in ``root`` and run download_dataset (no network)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sources.SOURCES, name, fake_source(name, closed_port_url()))
        for filename, data in ARCHIVES[name]().items():
            (root / filename).write_bytes(data)
        dl.download_dataset(name, root, progress=False)

