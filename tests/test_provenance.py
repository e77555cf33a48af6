"""Provenance of a real CPU run: what train and evaluate record (wildcat.engine.provenance), checked
against independent readings of the same facts."""

from __future__ import annotations

import csv
import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
import torch

from wildcat.engine.train import train
from wildcat.eval.evaluate import evaluate

from helpers import ROOT, tiny_config
from helpers import fake_archives as fa


def _cpu_from_proc() -> str:
    lines = [line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
    return lines[0].split(":", 1)[1].strip()


@pytest.fixture(scope="module")
def evaluated(tiny_data_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("prov")
    config = tiny_config(tiny_data_root, epochs=2)
    train(config, folder / "run", progress=False)
    evaluate(folder / "run", folder / "metrics.json", progress=False)
    return config, folder


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="reads the CPU model from /proc/cpuinfo")
def test_a_cpu_run_records_where_its_numbers_come_from(evaluated):
    config, folder = evaluated
    record = json.loads((folder / "metrics.json").read_text())
    assert record["schema"] == 2
    prov = record["provenance"]
    assert prov["config"] == config.to_dict()  # every setting: epochs, weights, splits, image size, seed...
    training, evaluation = prov["training"], prov["evaluation"]
    assert training == json.loads((folder / "run" / "provenance.json").read_text())
    assert training["config"] == config.to_dict() and training["epochs"] == 2
    with open(folder / "run" / "train_log.csv") as handle:
        seconds = sum(float(row["seconds"]) for row in csv.DictReader(handle))
    assert training["wall_s"] == pytest.approx(seconds, abs=1e-3) and evaluation["wall_s"] > 0
    for part in (training, evaluation):
        assert part["device"] == {"type": "cpu", "name": _cpu_from_proc(), "count": 1, "threads": torch.get_num_threads(),
                                  "precision": "float32"}
        assert part["cpu"] == _cpu_from_proc()
        assert part["versions"] == {"python": platform.python_version(), "torch": metadata.version("torch"),
                                    "torchvision": metadata.version("torchvision"), "numpy": metadata.version("numpy"),
                                    "pydensecrf": metadata.version("pydensecrf2")}
        assert part["lock_sha256"] == hashlib.sha256((ROOT / "requirements" / "lock.txt").read_bytes()).hexdigest()
        assert part["data_checksums"] == "generated"  # the synthetic data is made, not downloaded
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
        if head.returncode == 0:
            assert part["code"]["commit"] == head.stdout.strip() and isinstance(part["code"]["dirty"], bool)


def test_the_split_fingerprints_tell_splits_apart(evaluated, tiny_data_root):
    from wildcat.data import get_dataset
    from wildcat.engine.provenance import dataset_fingerprint

    _, folder = evaluated
    record = json.loads((folder / "metrics.json").read_text())
    test, train_split = get_dataset("synthetic", tiny_data_root, "test"), get_dataset("synthetic", tiny_data_root, "train")
    assert record["provenance"]["evaluation"]["test_split_sha256"] == dataset_fingerprint(test)
    assert record["provenance"]["training"]["train_split_sha256"] == dataset_fingerprint(train_split)
    assert dataset_fingerprint(test) != dataset_fingerprint(train_split)
    test.targets = test.targets.copy()
    test.targets[0, 0] = -test.targets[0, 0] or 1  # one label changed
    assert dataset_fingerprint(test) != record["provenance"]["evaluation"]["test_split_sha256"]


def test_a_checkout_is_dirty_for_code_not_for_the_results_it_writes(tmp_path):
    from wildcat.engine.provenance import code_version

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    for folder, name in (("wildcat", "code.py"), ("results", "metrics.json")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_text("0\n")
    subprocess.run(["git", "-C", str(tmp_path), "add", "."], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c"], check=True)
    assert code_version(tmp_path)["dirty"] is False
    (tmp_path / "results" / "metrics.json").write_text("1\n")  # a run rewrote the cached results
    assert code_version(tmp_path)["dirty"] is False
    (tmp_path / "wildcat" / "code.py").write_text("1\n")
    version = code_version(tmp_path)
    assert version["dirty"] is True and len(version["commit"]) == 40
    assert code_version(tmp_path / "wildcat" / "missing") == {"commit": None, "dirty": None}


def test_a_resumed_run_records_who_trained_which_epochs(tiny_data_root, tmp_path):
    run = tmp_path / "run"
    config = tiny_config(tiny_data_root, epochs=3, schedule="constant", optimizer="sgd", lr=0.01)
    train(config, run, progress=False)
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    state.update(epoch=1, log=state["log"][:1], segments=[{**state["segments"][0], "epochs": [1, 1], "cpu": "another CPU"}])
    torch.save(state, run / "checkpoint.pt")  # as if an earlier process on another machine trained epoch 1
    (run / "model.pt").unlink()
    train(config, run, progress=False)
    record = json.loads((run / "provenance.json").read_text())
    assert [(s["epochs"], s["cpu"]) for s in record["segments"]] == [([1, 1], "another CPU"), ([2, 3], _cpu_from_proc())]
    assert record["cpu"] == _cpu_from_proc() and record["epochs"] == 3
    (run / "model.pt").unlink()  # resumed at its end: no epoch trained, nobody added
    train(config, run, progress=False)
    assert json.loads((run / "provenance.json").read_text())["segments"] == record["segments"]


@pytest.mark.filterwarnings("ignore::wildcat.data.DatasetCountWarning")
def test_data_checksums_sum_up_every_download_a_split_reads(tmp_path):
    from wildcat.data import download as dl
    from wildcat.data import get_dataset
    from wildcat.engine.provenance import data_checksums

    fa.install("voc2012", tmp_path)
    val = get_dataset("voc2012", tmp_path, "val")
    assert data_checksums(val) == dl.dataset_checksums("voc2012", tmp_path) == "official"
    fa.install("sbd", tmp_path)
    train_aug = get_dataset("voc2012", tmp_path, "train_aug")  # VOC 2012 and SBD
    assert data_checksums(train_aug) == "official"
    (tmp_path / dl.MARKER_DIR / "benchmark.tgz.done").unlink()  # SBD in place, never verified
    assert data_checksums(train_aug) == "not checksummed" and data_checksums(val) == "official"
    (tmp_path / "sbd").rename(tmp_path / "sbd_moved")  # SBD gone: not downloaded
    assert data_checksums(train_aug) == "-"
