"""SBD: download of a fake benchmark.tgz with the real layout, the train_aug list (set arithmetic
worked out by hand), image labels from the VOC 2012 XML, and the errors that name the fix."""

from __future__ import annotations

import numpy as np
import pytest

from wildcat.data import DatasetCountWarning, DatasetNotFoundError, get_dataset, sources
from wildcat.data import download as dl
from wildcat.data.sbd import (
    SBD_FOLDER,
    TRAIN_AUG_COUNT,
    build_train_aug_ids,
    read_sbd_mask,
    read_sbd_split,
    train_aug_ids,
)
from wildcat.data.voc import VOC_CLASSES

from helpers import fake_archives as fa

C = {name: i for i, name in enumerate(VOC_CLASSES)}


def voc_row(**labels) -> list[int]:
    row = [-1] * 20
    for name, value in labels.items():
        row[C[name]] = value
    return row


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(dl, "RETRY_DELAYS_S", (0.01, 0.01, 0.01, 0.01))
    monkeypatch.delenv(sources.MIRROR_ENV, raising=False)


def install(name: str, root, archives=None) -> None:
    """Put the fake archives of ``name`` in ``root`` and run download_dataset (no network)."""
    archives = archives if archives is not None else fa.ARCHIVES[name]()
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sources.SOURCES, name, fa.fake_source(name, fa.closed_port_url(), archives=archives))
        for filename, data in archives.items():
            (root / filename).write_bytes(data)
        dl.download_dataset(name, root, progress=False)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    install("voc2012", root)
    install("sbd", root)
    return root


# -- the sources table and the download path -------------------------------------------------

def test_sbd_source_is_torchvisions_archive():
    source = sources.SOURCES["sbd"]
    (remote,) = source.files
    assert remote.filename == "benchmark.tgz" and remote.md5 == "82b4d87ceb2ed10f6038a1cba92111cb"
    assert remote.size_bytes == 1_419_539_633
    assert remote.urls[0] == ("https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/"
                              "semantic_contours/benchmark.tgz")
    assert all(u.endswith("/benchmark.tgz") for u in remote.urls)
    assert source.folder == SBD_FOLDER == "sbd/benchmark_RELEASE/dataset"
    assert sources.EXPECTED_COUNTS[("voc2012", "train_aug")] == TRAIN_AUG_COUNT == 10582


def test_sbd_download_resumes_verifies_and_extracts(tmp_path, monkeypatch, capsys):
    archives = fa.sbd_archives()
    with fa.serve(archives) as server:
        monkeypatch.setitem(sources.SOURCES, "sbd", fa.fake_source("sbd", server.url))
        server.drop_once.add("benchmark.tgz")
        folder = dl.download_dataset("sbd", tmp_path)
        assert [r for n, r in server.requests if n == "benchmark.tgz"] == [None, f"bytes={len(archives['benchmark.tgz']) // 2}-"]
        assert folder == tmp_path / "sbd" / "benchmark_RELEASE" / "dataset"
        assert (folder / "train.txt").read_text().split() == fa.SBD_SPLITS["train"]
        assert sorted(p.stem for p in (folder / "cls").glob("*.mat")) == sorted(set(fa.SBD_SPLITS["train"] + fa.SBD_SPLITS["val"]))
        assert dl.dataset_status("sbd", tmp_path) == "ready"
        assert "benchmark.tgz" in capsys.readouterr().err
        count = len(server.requests)
        assert dl.download_dataset("sbd", tmp_path, progress=False) == folder  # second call: nothing
        assert len(server.requests) == count
    assert read_sbd_split(tmp_path, "val") == fa.SBD_SPLITS["val"]


def test_sbd_checksum_mismatch_and_unsafe_archive(tmp_path, monkeypatch):
    archives = fa.sbd_archives()
    with fa.serve(archives) as server:
        monkeypatch.setitem(sources.SOURCES, "sbd", fa.fake_source("sbd", server.url, wrong_md5=frozenset({"benchmark.tgz"})))
        with pytest.raises(dl.ChecksumError, match="benchmark.tgz.*MD5.*deleted"):
            dl.download_dataset("sbd", tmp_path / "a", progress=False)
    unsafe = {"benchmark.tgz": fa.unsafe_archive_like("benchmark.tgz")}
    with fa.serve(unsafe) as server:
        monkeypatch.setitem(sources.SOURCES, "sbd", fa.fake_source("sbd", server.url, archives=unsafe))
        with pytest.raises(dl.UnsafeArchiveError, match="nothing was extracted"):
            dl.download_dataset("sbd", tmp_path / "b", progress=False)


def test_sbd_manual_archive_needs_no_network(tmp_path, monkeypatch):
    archives = fa.sbd_archives()
    given = tmp_path / "my-copy-of-benchmark.tgz"
    given.write_bytes(archives["benchmark.tgz"])
    monkeypatch.setitem(sources.SOURCES, "sbd", fa.fake_source("sbd", fa.closed_port_url()))
    folder = dl.download_dataset("sbd", tmp_path / "root", archive=given, progress=False)
    assert (folder / "val.txt").is_file() and given.is_file()  # matched by checksum, used in place


def test_sbd_listed_with_its_status(tmp_path):
    rows = {r["name"]: r for r in dl.list_datasets(tmp_path)}
    assert rows["sbd"]["status"] == "missing" and rows["sbd"]["size"] == "1.4 GB"
    assert rows["sbd"]["path"] == str(tmp_path / "sbd" / "benchmark_RELEASE" / "dataset")


def test_fake_mat_files_have_the_structure_torchvision_reads(data_root):
    """The cls/*.mat of the fake are read by torchvision's own SBDataset (segmentation and
    boundaries modes) and by read_sbd_mask, identically."""
    from torchvision.datasets import SBDataset

    folder = data_root / SBD_FOLDER
    tv = SBDataset(str(folder), image_set="train", mode="segmentation")
    assert len(tv) == len(fa.SBD_SPLITS["train"])
    index = fa.SBD_SPLITS["train"].index("2008_000002")
    _, mask = tv[index]
    ours = read_sbd_mask(folder / "cls" / "2008_000002.mat")
    np.testing.assert_array_equal(np.array(mask), ours)
    assert ours.shape == (12, 16) and ours[5, 5] == C["bird"] + 1 and ours[1, 1] == C["cat"] + 1 and ours[0, 0] == 0
    _, boundaries = SBDataset(str(folder), image_set="val", mode="boundaries")[0]
    assert boundaries.shape[0] == 20


# -- train_aug ---------------------------------------------------------------------------------

def test_build_train_aug_ids_is_set_arithmetic():
    seg_train = ["a", "b", "c"]
    sbd_train = ["c", "d", "e", "x"]
    sbd_val = ["e", "f", "b", "y"]
    seg_val = ["x", "y", "z"]  # z is in no training list: removing it changes nothing
    assert build_train_aug_ids(seg_train, sbd_train, sbd_val, seg_val) == ["a", "b", "c", "d", "e", "f"]
    assert build_train_aug_ids(reversed(seg_train), sbd_val, sbd_train, seg_val) == ["a", "b", "c", "d", "e", "f"]
    assert build_train_aug_ids([], [], [], []) == []


def test_train_aug_ids_of_the_fake_tree(data_root):
    assert train_aug_ids(data_root) == fa.SBD_TRAIN_AUG


def test_train_aug_split_labels_from_xml_difficult_included(data_root):
    with pytest.warns(DatasetCountWarning, match="'train_aug' has 5 images, the published count is 10582"):
        dataset = get_dataset("voc2012", data_root, "train_aug")
    assert dataset.ids == ["2008_000001", "2008_000002", "2008_000004", "2010_000010", "2010_000011"]
    np.testing.assert_array_equal(dataset.targets, [
        voc_row(cat=1),
        voc_row(bird=1, cat=1),  # the cat is "difficult": positive here (0 in seg_* and the devkit lists)
        voc_row(sheep=1),
        voc_row(person=1),
        voc_row(person=1),
    ])
    assert dataset.targets.dtype == np.int8 and dataset.labels_known
    # images come from VOC2012/JPEGImages (not SBD's img/)
    assert dataset.load_image(1).size == (16, 12)
    assert str(dataset._image_paths[1]).endswith("VOCdevkit/VOC2012/JPEGImages/2008_000002.jpg")
    # masks: only the VOC segmentation-train mask; never SBD's, never a seg-val one
    assert dataset.mask_for(0) is not None and all(dataset.mask_for(i) is None for i in range(1, 5))
    image, target = dataset[1]
    assert target.tolist() == [float(v) for v in voc_row(bird=1, cat=1)]


def test_train_aug_without_sbd_names_the_download(tmp_path):
    install("voc2012", tmp_path)
    with pytest.raises(DatasetNotFoundError) as error:
        get_dataset("voc2012", tmp_path, "train_aug")
    message = str(error.value)
    assert "\n" not in message and f"wildcat download sbd --root {tmp_path}" in message


def test_train_aug_with_an_interrupted_sbd_extraction(tmp_path):
    install("voc2012", tmp_path)
    install("sbd", tmp_path)
    (tmp_path / dl.MARKER_DIR / "benchmark.tgz.extracting").write_text("")
    with pytest.raises(DatasetNotFoundError, match="interrupted.*wildcat download sbd"):
        get_dataset("voc2012", tmp_path, "train_aug")


def test_sbd_id_without_voc2012_annotation_is_a_clear_error(tmp_path):
    install("voc2012", tmp_path)
    install("sbd", tmp_path, fa.sbd_archives((("train", ("2008_000002", "2011_999999")), ("val", ("2008_000004",)))))
    with pytest.raises(DatasetNotFoundError) as error:
        get_dataset("voc2012", tmp_path, "train_aug")
    message = str(error.value)
    assert "2011_999999.xml" in message and "1 of the 4 train_aug images" in message
    assert f"wildcat download voc2012 --root {tmp_path}" in message


def test_unknown_split_mentions_train_aug(data_root):
    with pytest.raises(ValueError, match="no split 'nope'.*train, val.*train_aug"):
        get_dataset("voc2012", data_root, "nope")
