"""A run folder only ever continues the same experiment, and a diverged run is never written as done
(wildcat.engine.train: resume checks, non-finite loss; wildcat.engine.config: values that cannot train)."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest
import torch
import yaml

from wildcat.cli import main
from wildcat.engine.config import ConfigError, load_config, make_config, save_config
from wildcat.engine.train import (
    CHECKPOINT,
    FINAL_WEIGHTS,
    CheckpointError,
    DivergenceWarning,
    RunMismatchError,
    TrainingDivergedError,
    train,
)

from helpers import tiny_config


def _losses(run: Path) -> list[str]:
    with open(run / "train_log.csv") as handle:
        return [row["loss"] for row in csv.DictReader(handle)]


def _files(run: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in run.iterdir()}


@pytest.fixture(scope="module")
def finished_run(tiny_data_root, tmp_path_factory) -> Path:
    """A finished 2-epoch run at alpha 0.7 (copied by each test that changes it)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    train(tiny_config(tiny_data_root, epochs=2), run, progress=False)
    return run


def _copy(run: Path, to: Path) -> Path:
    to.mkdir()
    for path in run.iterdir():
        (to / path.name).write_bytes(path.read_bytes())
    return to


def test_a_changed_setting_is_refused_on_an_interrupted_run(tiny_data_root, finished_run, tmp_path):
    run = _copy(finished_run, tmp_path / "run")
    (run / FINAL_WEIGHTS).unlink()  # as if killed after its last checkpoint
    before = _files(run)
    with pytest.raises(RunMismatchError) as raised:
        train(tiny_config(tiny_data_root, epochs=3, alpha=0.0, lr=0.0), run, progress=False)
    message = str(raised.value)
    assert "alpha 0.7 -> 0.0" in message and "lr 0.003 -> 0.0" in message and "epochs 2 -> 3" in message
    assert "--restart" in message and "new --out" in message and "\n" not in message
    assert _files(run) == before  # config.yaml is not rewritten, the checkpoint is untouched


def test_a_changed_setting_is_refused_on_a_finished_run_through_the_cli(tiny_data_root, finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path / "run")
    save_config(tiny_config(tiny_data_root, epochs=2), tmp_path / "exp.yaml")
    before = _files(run)
    assert main(["train", "--config", str(tmp_path / "exp.yaml"), "--alpha", "0.3", "--out", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("wildcat train: error: ") and "alpha 0.7 -> 0.3" in err and len(err.splitlines()) == 1
    assert _files(run) == before


def test_restart_if_changed_trains_the_new_experiment_afresh(tiny_data_root, finished_run, tmp_path):
    run = _copy(finished_run, tmp_path / "run")
    (run / FINAL_WEIGHTS).unlink()
    changed = tiny_config(tiny_data_root, epochs=2, alpha=0.0)
    train(changed, run, progress=False, restart_if_changed=True)
    fresh = tmp_path / "fresh"
    train(changed, fresh, progress=False)
    assert _losses(run) == _losses(fresh) != _losses(finished_run)  # the new experiment's, from scratch
    assert yaml.safe_load((run / "config.yaml").read_text())["alpha"] == 0.0
    assert torch.load(run / CHECKPOINT, weights_only=False)["config"]["alpha"] == 0.0
    for key, value in torch.load(fresh / FINAL_WEIGHTS, weights_only=True).items():
        assert torch.equal(value, torch.load(run / FINAL_WEIGHTS, weights_only=True)[key]), key


def test_restart_if_changed_says_so(tiny_data_root, finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path / "run")
    train(tiny_config(tiny_data_root, epochs=1, alpha=0.0), run, progress=False, restart_if_changed=True)
    err = capsys.readouterr().err
    assert f"{run}: settings differ from the run's (" in err and "alpha 0.7 -> 0.0" in err and "starting afresh" in err
    assert len(_losses(run)) == 1


def test_settings_that_do_not_change_the_weights_may_differ(tiny_data_root, finished_run, tmp_path):
    run = _copy(finished_run, tmp_path / "run")
    weights = torch.load(run / FINAL_WEIGHTS, weights_only=True)
    (run / FINAL_WEIGHTS).unlink()  # Snakemake removes a rule's output before rerunning it
    other = tiny_config(tiny_data_root, epochs=2, crf_iterations=7, workers=1, test_split="train")
    assert train(other, run, progress=False) == run / FINAL_WEIGHTS
    for key, value in torch.load(run / FINAL_WEIGHTS, weights_only=True).items():  # the same model, not retrained
        assert torch.equal(value, weights[key]), key
    assert _losses(run) == _losses(finished_run)
    assert yaml.safe_load((run / "config.yaml").read_text())["crf_iterations"] == 7  # what evaluation reads


def test_a_checkpoint_of_an_older_version_is_checked_against_its_config_yaml(tiny_data_root, finished_run, tmp_path):
    run = _copy(finished_run, tmp_path / "run")
    state = torch.load(run / CHECKPOINT, weights_only=False)
    del state["config"]
    torch.save(state, run / CHECKPOINT)
    with pytest.raises(RunMismatchError, match="num_maps 2 -> 3"):
        train(tiny_config(tiny_data_root, epochs=2, num_maps=3), run, progress=False)
    (run / "config.yaml").unlink()
    with pytest.raises(RunMismatchError, match="not recorded"):
        train(tiny_config(tiny_data_root, epochs=2), run, progress=False)


def test_a_truncated_checkpoint_is_one_line_naming_restart(tiny_data_root, finished_run, tmp_path):
    run = _copy(finished_run, tmp_path / "run")
    (run / FINAL_WEIGHTS).unlink()
    data = (run / CHECKPOINT).read_bytes()
    (run / CHECKPOINT).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as raised:
        train(tiny_config(tiny_data_root, epochs=2), run, progress=False)
    assert str(run / CHECKPOINT) in str(raised.value) and "--restart" in str(raised.value)
    assert "\n" not in str(raised.value)
    train(tiny_config(tiny_data_root, epochs=1), run, resume=False, progress=False)  # --restart gets out of it
    assert len(_losses(run)) == 1 and (run / FINAL_WEIGHTS).exists()


def test_a_non_finite_loss_stops_training_without_model_pt(tiny_data_root, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(TrainingDivergedError, match=r"the loss is (nan|inf) at epoch 1"):
        train(tiny_config(tiny_data_root, epochs=2, lr=1.0e30), run, progress=False)
    assert not (run / FINAL_WEIGHTS).exists()


def test_a_diverging_loss_is_warned_about(tiny_data_root, tmp_path):
    with pytest.warns(DivergenceWarning, match="the run is diverging"):
        train(tiny_config(tiny_data_root, epochs=1, lr=1.0e8), tmp_path / "run", progress=False)


def test_a_learning_run_gives_no_divergence_warning(finished_run):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)
        train(load_config(finished_run / "config.yaml"), finished_run, progress=False)  # finished: returns at once


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"alpha": float("inf")}, "config key 'alpha': bad value inf"),
        ({"lr": float("nan")}, "config key 'lr': bad value nan"),
        ({"kmax": float("inf")}, "config key 'kmax': bad value inf"),
        ({"image_size_px": 1}, "the 1 highest and 1 lowest regions overlap in the class maps of 1x1 = 1 regions"),
        ({"image_size_px": 64, "kmax": 100, "kmin": 0}, "100 regions do not fit the class maps of 8x8 = 64 regions"),
        ({"image_size_px": 64, "kmax": 40}, "the 40 highest and 40 lowest regions overlap"),
        ({"image_size_px": 64, "kmax": 33, "kmin": 32}, "the 33 highest and 32 lowest regions overlap"),
    ],
)
def test_settings_that_cannot_train_are_refused(values, message):
    base = {"dataset": "synthetic", "backbone": "cnn6", "weights": None, "image_size_px": 96, "kmax": 0.1}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_config({**base, **values})


@pytest.mark.parametrize(
    "values",
    [{"image_size_px": 64, "kmax": 32, "kmin": 32}, {"image_size_px": 64, "kmax": 64, "kmin": 0},
     {"image_size_px": 1, "kmax": 1, "kmin": 0}, {"image_size_px": 1, "kmax": 0.1, "alpha": 0.0},
     {"image_size_px": 448, "backbone": "resnet101", "weights": "imagenet", "kmax": 20}],
)
def test_settings_whose_regions_fit_are_accepted(values):
    base = {"dataset": "synthetic", "backbone": "cnn6", "weights": None}
    make_config({**base, **values})


def test_a_key_given_twice_in_a_config_file_is_refused(tmp_path):
    (tmp_path / "exp.yaml").write_text("dataset: synthetic\nalpha: 0.7\nepochs: 2\nalpha: 0.0\n")
    with pytest.raises(ConfigError, match=r"not valid YAML \(line 4\): key 'alpha' is given twice"):
        load_config(tmp_path / "exp.yaml")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_line(tiny_data_root, tmp_path, capsys):
    save_config(dataclasses.replace(tiny_config(tiny_data_root), device="cpu"), tmp_path / "exp.yaml")
    assert main(["train", "--config", str(tmp_path / "exp.yaml"), "--device", "cuda", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "wildcat train: error: device 'cuda' was asked for but torch sees no CUDA device; use --device cpu or auto"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_auto_says_it_falls_back_to_the_cpu(tiny_data_root, tmp_path, capsys):
    train(tiny_config(tiny_data_root, epochs=1, device="auto"), tmp_path / "run", progress=False)
    assert "device auto: torch sees no CUDA device, running on the CPU" in capsys.readouterr().err


def test_more_epochs_continue_a_constant_schedule_but_fewer_are_refused(tiny_data_root, tmp_path):
    constant = dict(schedule="constant", optimizer="sgd", lr=0.01)
    run = tmp_path / "run"
    train(tiny_config(tiny_data_root, epochs=2, **constant), run, progress=False)
    train(tiny_config(tiny_data_root, epochs=3, **constant), run, progress=False)  # epoch 3 continues epochs 1-2
    straight = tmp_path / "straight"
    train(tiny_config(tiny_data_root, epochs=3, **constant), straight, progress=False)
    assert _losses(run) == _losses(straight)
    with pytest.raises(RunMismatchError, match="epochs 3 -> 2"):
        train(tiny_config(tiny_data_root, epochs=2, **constant), run, progress=False)
