"""SBD (Hariharan et al., ICCV 2011) and the 10,582-image ``train_aug`` list of VOC 2012 segmentation.

WILDCAT's segmentation model (paper Table 9) is trained on "VOC 2012 train + SBD extra annotations",
10,582 images, **with image-level labels only**, and tested on VOC 2012 segmentation val (1,449).
The list is built the standard way (mmsegmentation's ``voc_aug`` converter, which asserts the
length 10,582; jiwoon-ahn/irn's ``train_aug.txt``)::

    train_aug = (VOC12 seg train  U  SBD train  U  SBD val)  -  VOC12 seg val        (as sets)

``wildcat download sbd --root ROOT`` puts ``benchmark.tgz`` (torchvision ``sbd.py``: MD5
82b4d87ceb2ed10f6038a1cba92111cb) under ``ROOT/sbd/``; its layout::

    ROOT/sbd/benchmark_RELEASE/dataset/
        train.txt, val.txt          SBD ids (8,498 / 2,857), all VOC 2011 trainval images
        img/<id>.jpg                the same images as VOC2012/JPEGImages (not used here)
        cls/<id>.mat                GTcls.Segmentation (class masks), GTcls.Boundaries (not used for training)
        inst/<id>.mat               instance masks (not used)

Only ``train.txt`` and ``val.txt`` are needed: the ``voc2012`` split ``train_aug`` reads the images
from ``VOC2012/JPEGImages`` and the labels from ``VOC2012/Annotations/<id>.xml`` (every SBD id is a
VOC 2011 trainval image, hence a VOC 2012 trainval image with an XML file: checked, with a clear
error). :func:`read_sbd_mask` reads a ``cls/*.mat`` file for inspection only.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from wildcat.data import DatasetFormatError, dataset_not_found

__all__ = ["SBD_FOLDER", "TRAIN_AUG_COUNT", "sbd_dir", "read_sbd_split", "build_train_aug_ids", "train_aug_ids",
           "read_sbd_mask"]

#: The SBD folder under the data root (``wildcat.data.sources.SOURCES["sbd"].folder``).
SBD_FOLDER = "sbd/benchmark_RELEASE/dataset"
#: Size of the standard train_aug list (mmsegmentation ``tools/dataset_converters/voc_aug.py`` asserts it).
TRAIN_AUG_COUNT = 10582


def sbd_dir(root: str | Path) -> Path:
    """``<root>/sbd/benchmark_RELEASE/dataset``."""
    return Path(root) / SBD_FOLDER


def _read_id_list(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line.split()[0] for line in handle if line.strip()]


def read_sbd_split(root: str | Path, split: str) -> list[str]:
    """The image ids of SBD's ``train.txt`` or ``val.txt``, in file order.

    Raises:
        ValueError: ``split`` is not ``train`` or ``val``.
        DatasetNotFoundError: SBD is not (completely) under ``root``; the message names
            ``wildcat download sbd --root ROOT``.
    """
    from wildcat.data.download import interrupted_extractions

    if split not in ("train", "val"):
        raise ValueError(f"SBD has the splits 'train' and 'val', not {split!r}")
    folder = sbd_dir(root)
    if not folder.is_dir():
        raise dataset_not_found("sbd", root, folder)
    interrupted = interrupted_extractions("sbd", root)
    if interrupted:
        raise dataset_not_found("sbd", root, folder, f"is incomplete (extraction of {interrupted[0]} was interrupted)")
    path = folder / f"{split}.txt"
    if not path.is_file():
        raise dataset_not_found("sbd", root, path, "is incomplete: no list")
    return _read_id_list(path)


def build_train_aug_ids(voc_seg_train: Iterable[str], sbd_train: Iterable[str], sbd_val: Iterable[str],
                        voc_seg_val: Iterable[str]) -> list[str]:
    """``(voc_seg_train | sbd_train | sbd_val) - voc_seg_val``, sorted (ids are ``YYYY_NNNNNN``).

    Pure set arithmetic: duplicates across the lists count once; the order of the inputs does not
    matter. The real lists give :data:`TRAIN_AUG_COUNT` = 10,582 ids.
    """
    return sorted((set(voc_seg_train) | set(sbd_train) | set(sbd_val)) - set(voc_seg_val))


def train_aug_ids(root: str | Path, voc_dir: str | Path | None = None) -> list[str]:
    """The ``train_aug`` ids from the files under ``root`` (VOC 2012 and SBD both needed).

    Args:
        root: the data folder (``--root`` of ``wildcat download``).
        voc_dir: the VOC 2012 folder; default ``<root>/VOCdevkit/VOC2012``.

    Returns:
        Sorted ids, see :func:`build_train_aug_ids`. The caller (the ``voc2012`` dataset) warns
        when their number is not 10,582.

    Raises:
        DatasetNotFoundError: a list is missing (``wildcat download voc2012|sbd --root ROOT``), or
            an id has no ``VOC2012/Annotations/<id>.xml`` (an incomplete VOC 2012 tree: every SBD
            image is a VOC 2011 trainval image, all of which are in VOC 2012 trainval).
    """
    voc_dir = Path(voc_dir) if voc_dir is not None else Path(root) / "VOCdevkit" / "VOC2012"
    seg = voc_dir / "ImageSets" / "Segmentation"
    voc_lists = {}
    for split in ("train", "val"):
        path = seg / f"{split}.txt"
        if not path.is_file():
            raise dataset_not_found("voc2012", root, path, "is incomplete: no list")
        voc_lists[split] = _read_id_list(path)
    ids = build_train_aug_ids(voc_lists["train"], read_sbd_split(root, "train"), read_sbd_split(root, "val"),
                              voc_lists["val"])
    annotations = voc_dir / "Annotations"
    missing = [i for i in ids if not (annotations / f"{i}.xml").is_file()]
    if missing:
        raise dataset_not_found("voc2012", root, annotations,
                                f"is incomplete ({len(missing)} of the {len(ids)} train_aug images have no XML "
                                f"annotation, e.g. {missing[0]}.xml; SBD images are VOC 2011 trainval images, all "
                                "in VOCtrainval_11-May-2012.tar)")
    return ids


def read_sbd_mask(path: str | Path) -> np.ndarray:
    """The class mask ``GTcls.Segmentation`` of an SBD ``cls/<id>.mat`` file, read as torchvision's
    ``SBDataset`` reads it (``loadmat(path)["GTcls"][0]["Segmentation"][0]``).

    Returns:
        ``(H, W) uint8``: 0 background, c + 1 VOC class c (SBD masks have no void label).
        Not used for training (WILDCAT uses image labels only); for inspection.
    """
    from scipy.io import loadmat

    try:
        mask = loadmat(str(path))["GTcls"][0]["Segmentation"][0]
    except (KeyError, IndexError, ValueError) as error:
        raise DatasetFormatError(f"{path}: not an SBD class file (no GTcls.Segmentation: {error})") from None
    return np.asarray(mask, dtype=np.uint8)
