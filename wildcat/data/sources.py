"""Where the real datasets come from: one table of URLs, mirrors, checksums, sizes and terms.

Each fact carries its source in a comment; docs/datasets.md repeats the table for users.
Abbreviations used below:

* [tv]     torchvision 0.29.1, ``torchvision/datasets/voc.py`` (``DATASET_YEAR_DICT``): VOC URLs
           (``thor.robots.ox.ac.uk``) and MD5s.
* [wc]     durandtibo/wildcat.pytorch (the paper's official code), ``wildcat/voc.py`` and
           ``wildcat/mit67.py``: the original URLs on host.robots.ox.ac.uk / csail.mit.edu and
           the folder layouts (MIT67: ``Images/`` at the top of the tar).
* [issue]  the MD5s listed in this project's issue 5, checked against the sources below.
* [lavis]  salesforce/LAVIS COCO builders: COCO 2014 zip URLs with MD5s in comments; the same
           MD5s are used by download scripts that check them (``md5sum -c``) and by PaddleNLP
           (annotations).
* [bw]     bwhite/vision_data (``_indoor09.py``, ``_fifteen_scene.py``): MD5s it records but never
           checks (``# TODO: ... check hash`` in ``_base.py``).
* [nevis]  deepmind/dm_nevis ``handlers/scenes15.py``: Scene 15 archive on the Wayback Machine
           with the same MD5 as [bw], and the 15 folder names.
* [vipy]   visym/vipy ``vipy/data/mit67.py``: SHA1 of ``indoorCVPR_09.tar``, checked by its
           ``download_and_unpack(..., sha1=...)``.
* [logs]   public wget/Keras download logs (``Length: 1999639040``, ``451020800/451020800``,
           ``Length: 13510573713``, ...) and an S3 HEAD record (``252872794`` bytes, ETag equal to
           the annotations MD5): exact byte sizes. Sizes are shown by ``wildcat download --list``
           and checked before hashing.
* [yolo]   YOLO download scripts (e.g. Lxrd-AJ/YOLO_V1 ``data/download_voc.sh``, ``wget -c
           https://pjreddie.com/media/files/VOCtrainval_06-Nov-2007.tar``): the VOC mirror of the
           darknet author. Mirrors are only as good as the checksum check that follows.
* [tvsbd]  torchvision 0.29.1, ``torchvision/datasets/sbd.py`` (``SBDataset``): the SBD URL
           (``www2.eecs.berkeley.edu``), MD5 and layout (``benchmark_RELEASE/dataset/`` with ``img/``,
           ``cls/<id>.mat`` (``GTcls.Segmentation``), ``inst/``, ``train.txt``, ``val.txt``).
* [tv8471] pytorch/vision issue 8471 (June 2024): a download log of that URL
           (``1419539633/1419539633`` bytes) and the report that ``train_noval.txt`` is gone from its
           host. The older ``www.eecs.berkeley.edu`` URL is the one of earlier code (SEC-MXNet, fblib,
           pytorch-fcn).

Set the environment variable ``WILDCAT_DATA_MIRROR`` to a base URL to try
``<mirror>/<filename>`` before the URLs below (an institutional mirror, or a local server).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RemoteFile", "DatasetSource", "SOURCES", "EXPECTED_COUNTS", "MIRROR_ENV", "get_source"]

#: Environment variable naming a base URL tried first for every file.
MIRROR_ENV = "WILDCAT_DATA_MIRROR"


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch.

    Attributes:
        filename: the name it is stored under in ``root`` (and looked for there, or given with
            ``--archive``).
        urls: where to get it, tried in order (the official host first, then mirrors).
        md5, sha1: hex digests; every digest given is checked.
        size_bytes: the exact size when known (display, and a cheap check before hashing).
        dest: the folder under ``root`` it is extracted into (archives) or copied into (plain
            files).
        extract: True for tar/zip archives, False for plain files (copied to ``dest``).
        provides: paths under ``root`` that exist once this file is in place; a file whose
            ``provides`` all exist is not fetched again.
    """

    filename: str
    urls: tuple[str, ...]
    md5: str | None = None
    sha1: str | None = None
    size_bytes: int | None = None
    dest: str = "."
    extract: bool = True
    provides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (self.md5 or self.sha1):
            raise ValueError(f"{self.filename}: a source file needs an MD5 or a SHA1")


@dataclass(frozen=True)
class DatasetSource:
    """A downloadable dataset: its files and where it lands under ``root``."""

    name: str
    title: str
    files: tuple[RemoteFile, ...]
    folder: str  # the dataset folder under root (what download_dataset returns)
    homepage: str
    license_url: str
    license: str
    notes: str = ""
    mirrors_note: str = ""
    required: tuple[str, ...] = field(default=())  # extra paths that must exist when complete

    @property
    def size_bytes(self) -> int | None:
        sizes = [f.size_bytes for f in self.files]
        return None if any(s is None for s in sizes) else sum(sizes)

    @property
    def all_required(self) -> tuple[str, ...]:
        paths = [p for f in self.files for p in f.provides] + list(self.required)
        return tuple(dict.fromkeys(paths))


_VOC07 = "VOCdevkit/VOC2007"
_VOC12 = "VOCdevkit/VOC2012"

_VOC2007_TRAINVAL = RemoteFile(
    filename="VOCtrainval_06-Nov-2007.tar",
    urls=(
        "https://thor.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtrainval_06-Nov-2007.tar",  # [tv]
        "http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtrainval_06-Nov-2007.tar",  # [wc]
        "https://pjreddie.com/media/files/VOCtrainval_06-Nov-2007.tar",  # mirror [yolo]
    ),
    md5="c52e279531787c972589f7e41ab4ae64",  # [tv] = [issue]
    size_bytes=460_032_000,  # [logs]
    provides=(f"{_VOC07}/ImageSets/Main/trainval.txt", f"{_VOC07}/JPEGImages", f"{_VOC07}/Annotations"),
)
_VOC2007_TEST = RemoteFile(
    filename="VOCtest_06-Nov-2007.tar",
    urls=(
        "https://thor.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtest_06-Nov-2007.tar",  # [tv]
        "http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtest_06-Nov-2007.tar",  # [wc]
        "https://pjreddie.com/media/files/VOCtest_06-Nov-2007.tar",  # mirror [yolo]
    ),
    md5="b6e924de25625d8de591ea690078ad9f",  # [tv] = [issue]
    size_bytes=451_020_800,  # [logs]
    provides=(f"{_VOC07}/ImageSets/Main/test.txt", f"{_VOC07}/ImageSets/Main/aeroplane_test.txt"),
)
_VOC2012_TRAINVAL = RemoteFile(
    filename="VOCtrainval_11-May-2012.tar",
    urls=(
        "https://thor.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",  # [tv]
        "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",  # [wc]
        "https://pjreddie.com/media/files/VOCtrainval_11-May-2012.tar",  # mirror [yolo]
    ),
    md5="6cd6e144f989b92b3379bac3b3de84fd",  # [tv] = [issue]
    size_bytes=1_999_639_040,  # [logs]
    provides=(
        f"{_VOC12}/ImageSets/Main/train.txt",
        f"{_VOC12}/ImageSets/Main/val.txt",
        f"{_VOC12}/ImageSets/Segmentation/val.txt",
        f"{_VOC12}/ImageSets/Action/train.txt",
        f"{_VOC12}/ImageSets/Action/val.txt",
        f"{_VOC12}/SegmentationClass",
        f"{_VOC12}/JPEGImages",
        f"{_VOC12}/Annotations",
    ),
)

_SBD_DIR = "sbd/benchmark_RELEASE/dataset"

_SBD = RemoteFile(
    filename="benchmark.tgz",
    urls=(
        "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/benchmark.tgz",  # [tvsbd]
        "http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/benchmark.tgz",  # [tv8471]
    ),
    md5="82b4d87ceb2ed10f6038a1cba92111cb",  # [tvsbd]
    size_bytes=1_419_539_633,  # [tv8471]
    dest="sbd",
    provides=(f"{_SBD_DIR}/train.txt", f"{_SBD_DIR}/val.txt", f"{_SBD_DIR}/cls"),
)

_VOC_TERMS = ("images from flickr: use must respect flickr's terms of use; annotations by the PASCAL VOC "
              "project (see the page)")
_VOC_MIRRORS = ("host.robots.ox.ac.uk has been unreliable for years (it now redirects to thor.robots.ox.ac.uk); "
                "pjreddie.com/media/files serves the same tars; checksums are verified whatever the host")

_COCO_MIRROR = "https://s3.amazonaws.com/images.cocodataset.org"  # the bucket behind images.cocodataset.org [logs]

SOURCES: dict[str, DatasetSource] = {
    "voc2007": DatasetSource(
        name="voc2007",
        title="PASCAL VOC 2007 (classification: trainval 5,011 / test 4,952)",
        files=(_VOC2007_TRAINVAL, _VOC2007_TEST),
        folder=_VOC07,
        homepage="http://host.robots.ox.ac.uk/pascal/VOC/voc2007/",
        license_url="http://host.robots.ox.ac.uk/pascal/VOC/voc2007/",
        license=_VOC_TERMS,
        mirrors_note=_VOC_MIRRORS,
    ),
    "voc2012": DatasetSource(
        name="voc2012",
        title="PASCAL VOC 2012 (classification train 5,717 / val 5,823; segmentation val 1,449)",
        files=(_VOC2012_TRAINVAL,),
        folder=_VOC12,
        homepage="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
        license_url="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
        license=_VOC_TERMS,
        notes="VOC 2012 test labels are not public: test is scored only by the PASCAL evaluation server",
        mirrors_note=_VOC_MIRRORS,
    ),
    "voc2012_action": DatasetSource(
        name="voc2012_action",
        title="PASCAL VOC 2012 Action (image-level, train 2,296 / val 2,292; same archive as voc2012)",
        files=(_VOC2012_TRAINVAL,),
        folder=_VOC12,
        homepage="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
        license_url="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
        license=_VOC_TERMS,
        mirrors_note=_VOC_MIRRORS,
    ),
    "sbd": DatasetSource(
        name="sbd",
        title="Semantic Boundaries Dataset (SBD; train 8,498 / val 2,857 VOC 2011 images): builds voc2012 train_aug",
        files=(_SBD,),
        folder=_SBD_DIR,
        homepage="http://home.bharathh.info/pubs/codes/SBD/download.html",
        license_url="http://home.bharathh.info/pubs/codes/SBD/download.html",
        license="research use, no explicit licence; images are PASCAL VOC 2011 images (flickr terms)",
        notes=("only train.txt / val.txt are used (the voc2012 'train_aug' split, 10,582 images, image labels "
               "from the VOC 2012 XML); the cls/*.mat masks are not needed"),
        mirrors_note=("the Berkeley host has been intermittently unreachable; no mirror with a confirmed layout is "
                      "known: place benchmark.tgz by hand (--archive) or set WILDCAT_DATA_MIRROR; the MD5 is checked"),
    ),
    "coco2014": DatasetSource(
        name="coco2014",
        title="MS COCO 2014 (train2014 82,783 / val2014 40,504; 80 classes)",
        files=(
            RemoteFile(
                filename="train2014.zip",
                urls=("http://images.cocodataset.org/zips/train2014.zip", f"{_COCO_MIRROR}/zips/train2014.zip"),
                md5="0da8c0bd3d6becc4dcb32757491aca88",  # [lavis] = [issue]
                size_bytes=13_510_573_713,  # [logs]
                dest="coco2014",
                provides=("coco2014/train2014",),
            ),
            RemoteFile(
                filename="val2014.zip",
                urls=("http://images.cocodataset.org/zips/val2014.zip", f"{_COCO_MIRROR}/zips/val2014.zip"),
                md5="a3d79f5ed8d289b7a7554ce06a5782b3",  # [lavis] = [issue]
                size_bytes=6_645_013_297,  # [logs]
                dest="coco2014",
                provides=("coco2014/val2014",),
            ),
            RemoteFile(
                filename="annotations_trainval2014.zip",
                urls=("http://images.cocodataset.org/annotations/annotations_trainval2014.zip",
                      f"{_COCO_MIRROR}/annotations/annotations_trainval2014.zip"),
                md5="0a379cfc70b0e71301e0f377548639bd",  # [lavis] = [issue] = S3 ETag [logs]
                size_bytes=252_872_794,  # [logs]
                dest="coco2014",
                provides=("coco2014/annotations/instances_train2014.json", "coco2014/annotations/instances_val2014.json"),
            ),
        ),
        folder="coco2014",
        homepage="https://cocodataset.org/#download",
        license_url="https://cocodataset.org/#termsofuse",
        license="annotations CC BY 4.0; images under their flickr licences (see the terms of use)",
    ),
    "mit67": DatasetSource(
        name="mit67",
        title="MIT Indoor 67 (TrainImages 5,360 / TestImages 1,340)",
        files=(
            RemoteFile(
                filename="indoorCVPR_09.tar",
                urls=("http://groups.csail.mit.edu/vision/LabelMe/NewImages/indoorCVPR_09.tar",),  # [wc] [bw] [vipy]
                # MD5 5d176e5f0e56624a453f2fe0d8b19ff7 is recorded by [bw] (never checked there): not
                # used; the SHA1 is the one [vipy] checks on every download.
                sha1="0b252516e746ba428b96af408d2e8162d9b08ac5",  # [vipy]
                dest="mit67",
                provides=("mit67/Images",),
            ),
            RemoteFile(
                filename="TrainImages.txt",
                urls=("http://web.mit.edu/torralba/www/TrainImages.txt",),  # [wc] [bw]
                md5="fd987513d0f623c424252770fac3f354",  # [bw] only (unconfirmed elsewhere)
                dest="mit67",
                extract=False,
                provides=("mit67/TrainImages.txt",),
            ),
            RemoteFile(
                filename="TestImages.txt",
                urls=("http://web.mit.edu/torralba/www/TestImages.txt",),  # [wc] [bw]
                md5="f00bef137f39d51e4894303a7bf4c2d4",  # [bw] only (unconfirmed elsewhere)
                dest="mit67",
                extract=False,
                provides=("mit67/TestImages.txt",),
            ),
        ),
        folder="mit67",
        homepage="http://web.mit.edu/torralba/www/indoor.html",
        license_url="http://web.mit.edu/torralba/www/indoor.html",
        license="research use; no explicit licence on the page",
    ),
    "scene15": DatasetSource(
        name="scene15",
        title="15 Scene categories (Lazebnik et al. 2006; 4,485 grayscale images)",
        files=(
            RemoteFile(
                filename="scene_categories.zip",
                urls=(
                    "http://www-cvr.ai.uiuc.edu/ponce_grp/data/scene_categories/scene_categories.zip",  # [bw]
                    "https://web.archive.org/web/20070829035029/http://www-cvr.ai.uiuc.edu/ponce_grp/data/"
                    "scene_categories/scene_categories.zip",  # [nevis]
                ),
                md5="58828019197b2ad0a7efb472e7a85c2a",  # [bw] = [nevis]
                dest="scene15",
                provides=("scene15/bedroom", "scene15/MITcoast", "scene15/PARoffice"),
            ),
        ),
        folder="scene15",
        homepage="http://www-cvr.ai.uiuc.edu/ponce_grp/data/",
        license_url="http://www-cvr.ai.uiuc.edu/ponce_grp/data/",
        license="research use; no explicit licence on the page",
        mirrors_note=("the UIUC host is often down: the Wayback Machine copy has the same MD5; a figshare "
                      "copy (item 7007177) exists but its layout is unconfirmed: place it by hand"),
    ),
}

#: Image counts of the splits as published (WILDCAT supplementary Table 1; VOC devkit docs;
#: COCO download page). Loaders warn (``DatasetCountWarning``) when a split differs.
EXPECTED_COUNTS: dict[tuple[str, str], int] = {
    ("voc2007", "trainval"): 5011,
    ("voc2007", "test"): 4952,
    ("voc2012", "train"): 5717,
    ("voc2012", "val"): 5823,
    ("voc2012", "trainval"): 11540,
    ("voc2012", "seg_train"): 1464,
    ("voc2012", "seg_val"): 1449,
    ("voc2012", "train_aug"): 10582,  # (seg train + SBD train + SBD val) - seg val; mmsegmentation's voc_aug asserts it
    ("voc2012", "test"): 10991,  # ImageSets/Main/test.txt of VOC2012test.tar (SSD paper; weiliu89/caffe issue 551)
    ("sbd", "train"): 8498,
    ("sbd", "val"): 2857,
    ("voc2012_action", "train"): 2296,
    ("voc2012_action", "val"): 2292,
    ("coco2014", "train"): 82783,
    ("coco2014", "val"): 40504,
    ("mit67", "train"): 5360,
    ("mit67", "test"): 1340,
    ("scene15", "train"): 1500,
    ("scene15", "test"): 2985,
}


def get_source(name: str) -> DatasetSource:
    """The table entry of dataset ``name``.

    Raises:
        UnknownDatasetError (a ``ValueError``): ``name`` is not a downloadable dataset.
    """
    from wildcat.data import UnknownDatasetError

    if name == "synthetic":
        raise UnknownDatasetError("the synthetic dataset is generated, not downloaded: run `wildcat make-synthetic --root DIR`")
    if name not in SOURCES:
        raise UnknownDatasetError(f"unknown dataset {name!r}: choose one of {', '.join(SOURCES)} (or 'all')")
    return SOURCES[name]
