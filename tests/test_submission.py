"""VOC 2012 evaluation-server files for a tiny fake test set: names, line format, tar layout,
round trip; the test split with unknown labels."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest

from wildcat.data import DatasetNotFoundError, get_dataset, sources
from wildcat.data import download as dl
from wildcat.data.voc import VOC_CLASSES
from wildcat.eval.submission import (
    SubmissionError,
    read_voc_classification_submission,
    read_voc_test_ids,
    write_voc_classification_submission,
)

from helpers import fake_archives as fa

pytestmark = pytest.mark.filterwarnings("ignore::wildcat.data.DatasetCountWarning")


@pytest.fixture(scope="module")
def test_root(tmp_path_factory):
    """A VOC 2012 tree with the trainval archive and the test tar extracted into it."""
    root = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sources.SOURCES, "voc2012", fa.fake_source("voc2012", fa.closed_port_url()))
        for filename, data in fa.voc2012_archives().items():
            (root / filename).write_bytes(data)
        dl.download_dataset("voc2012", root, progress=False)
    tar = root / "VOC2012test.tar"
    tar.write_bytes(fa.voc2012_test_archive()["VOC2012test.tar"])
    dl.safe_extract(tar, root)
    return root


def scores_for(n: int) -> np.ndarray:
    """Hand-chosen scores: negative, large, many decimals, exact ties."""
    base = np.array([-3.25, 0.0, 12.5, 1e-7, 0.1234567, -0.0000004], dtype=np.float64)
    return np.array([[base[(i + c) % len(base)] + c for c in range(20)] for i in range(n)])


def test_test_split_has_the_server_images_with_unknown_labels(test_root):
    dataset = get_dataset("voc2012", test_root, "test")
    assert dataset.ids == fa.VOC2012_TEST_IDS == read_voc_test_ids(test_root)
    assert dataset.labels_known is False and not dataset.has_boxes and not dataset.has_masks
    assert dataset.targets.shape == (3, 20) and not dataset.targets.any()  # 0 = ignored
    image, target = dataset[2]
    assert image.size == (14, 10) and target.tolist() == [0.0] * 20
    assert get_dataset("voc2012", test_root, "val").labels_known  # the other splits are untouched


def test_test_split_without_the_test_tar_points_to_the_server(tmp_path):
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sources.SOURCES, "voc2012", fa.fake_source("voc2012", fa.closed_port_url()))
        for filename, data in fa.voc2012_archives().items():
            (tmp_path / filename).write_bytes(data)
        dl.download_dataset("voc2012", tmp_path, progress=False)
    with pytest.raises(ValueError, match="evaluation server.*VOC2012test.tar"):
        get_dataset("voc2012", tmp_path, "test")
    with pytest.raises(DatasetNotFoundError, match="VOC2012test.tar.*host.robots.ox.ac.uk:8080"):
        read_voc_test_ids(tmp_path)


def test_submission_files_names_lines_and_layout(test_root, tmp_path):
    ids = read_voc_test_ids(test_root)
    scores = scores_for(len(ids))
    out = write_voc_classification_submission(scores, ids, list(VOC_CLASSES), tmp_path / "wildcat.tar.gz",
                                              expected_ids=ids)
    assert out == tmp_path / "wildcat.tar.gz"
    assert out.read_bytes()[:2] == b"\x1f\x8b"  # gzip
    with tarfile.open(out, "r:gz") as tar:
        names = tar.getnames()
        files = {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers() if m.isfile()}
    assert names[:3] == ["results", "results/VOC2012", "results/VOC2012/Main"]
    assert sorted(files) == sorted(f"results/VOC2012/Main/comp2_cls_test_{c}.txt" for c in VOC_CLASSES)
    # hand-written expected content for two classes
    assert files["results/VOC2012/Main/comp2_cls_test_aeroplane.txt"] == (
        "2008_000006 -3.250000\n2008_000011 0.000000\n2009_000012 12.500000\n")
    assert files["results/VOC2012/Main/comp2_cls_test_bicycle.txt"] == (
        "2008_000006 1.000000\n2008_000011 13.500000\n2009_000012 1.000000\n")
    assert files["results/VOC2012/Main/comp2_cls_test_tvmonitor.txt"].splitlines()[0] == "2008_000006 19.000000"
    assert not list(tmp_path.glob(".*.tmp"))  # atomic: no temporary left


def test_submission_round_trip_and_determinism(tmp_path):
    ids = ["2008_000006", "2008_000011", "2009_000012"]
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(3, 20)) * 5
    a = write_voc_classification_submission(scores, ids, list(VOC_CLASSES), tmp_path / "a.tar.gz", competition="comp1")
    back, back_ids, classes, year, comp = read_voc_classification_submission(a)
    assert back_ids == ids and classes == list(VOC_CLASSES) and year == "2012" and comp == "comp1"
    np.testing.assert_allclose(back, scores, atol=5e-7)
    b = write_voc_classification_submission(scores, ids, list(VOC_CLASSES), tmp_path / "b.tgz", competition="comp1")
    assert a.read_bytes() == b.read_bytes()  # same scores, same bytes
    # a subset of classes, in another order, is allowed by the devkit
    c = write_voc_classification_submission(scores[:, :2], ids, ["dog", "cat"], tmp_path / "c.tar.gz")
    back, _, classes, _, comp = read_voc_classification_submission(c)
    assert classes == ["cat", "dog"] and comp == "comp2"
    np.testing.assert_allclose(back, scores[:, [1, 0]], atol=5e-7)


@pytest.mark.parametrize("kwargs, match", [
    (dict(scores=np.zeros((3, 19))), r"\(N, C\) = \(3, 20\).*\(3, 19\)"),
    (dict(scores=np.full((3, 20), np.nan)), "finite"),
    (dict(image_ids=["a", "a", "b"]), "appears twice"),
    (dict(image_ids=["a", "b c", "d"]), "white space"),
    (dict(classes=list(VOC_CLASSES[:19]) + ["person2"]), "not a VOC class"),
    (dict(competition="comp3"), "comp1 or comp2"),
    (dict(out_path="x.zip"), r"\.tar\.gz"),
    (dict(expected_ids=["a", "b", "c", "d"]), "1 test images have no score"),
])
def test_submission_input_errors(tmp_path, kwargs, match):
    args = dict(scores=np.zeros((3, 20)), image_ids=["a", "b", "c"], classes=list(VOC_CLASSES),
                out_path="out.tar.gz")
    args.update(kwargs)
    args["out_path"] = tmp_path / args["out_path"]
    with pytest.raises(SubmissionError, match=match):
        write_voc_classification_submission(**args)
    assert not args["out_path"].exists()


def test_reader_refuses_a_foreign_layout(tmp_path):
    data = fa.tar_bytes({"VOC2012/Main/comp2_cls_test_cat.txt": b"a 1.0\n"})
    path = tmp_path / "bad.tar.gz"
    import gzip

    path.write_bytes(gzip.compress(data))
    with pytest.raises(SubmissionError, match="unexpected member"):
        read_voc_classification_submission(path)


def test_evaluate_on_the_test_split_writes_the_server_archive(test_root, tmp_path):
    """`wildcat evaluate` on VOC 2012 test (labels unknown) writes the submission, not metrics."""
    import torch

    from wildcat.engine.config import make_config, save_config
    from wildcat.eval.evaluate import evaluate
    from wildcat.nn.model import WildcatNet

    run = tmp_path / "run"
    config = make_config(dict(dataset="voc2012", data_root=str(test_root), train_split="train", test_split="test",
                              backbone="cnn6", weights=None, image_size_px=32, kmax=0.1, device="cpu", workers=0, batch_size=2))
    save_config(config, run / "config.yaml")
    torch.manual_seed(0)
    torch.save(WildcatNet(20, backbone="cnn6", num_maps=4, kmax=0.1).state_dict(), run / "model.pt")
    result = evaluate(run, tmp_path / "metrics.json", progress=False)
    assert result["metrics"] == {}
    archive = tmp_path / result["protocol"]["server_submission"]
    scores, ids, classes, year, competition = read_voc_classification_submission(archive)
    assert ids == list(fa.VOC2012_TEST_IDS) and len(classes) == 20 and (year, competition) == ("2012", "comp2")
    assert scores.shape == (len(ids), 20) and np.isfinite(scores).all()
