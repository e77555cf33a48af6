"""The run grid of a workflow config (wildcat.grid): expansion, merged settings, checks."""

from __future__ import annotations

import copy
import shlex
import subprocess
import sys

import pytest
import torch
import yaml

from wildcat.engine.config import ConfigError
from wildcat.grid import Grid, Run, cli_options

from helpers import ROOT

CONFIG = {
    "data_root": "data",
    "seeds": [0, 1],
    "datasets": {
        "scene15": {
            "experiment": {"dataset": "scene15", "train_split": "train_seed{seed}", "test_split": "test_seed{seed}",
                           "backbone": "cnn6", "weights": None, "image_size_px": 96, "epochs": 3, "lr": 0.1},
            "methods": ["a", ["b"]],
            "method_seeds": {"b": [5]},
            "method_overrides": {"a": {"lr": 0.5}},
            "multiscale": {"method": "ms", "base": {"num_maps": 2}, "scales": [{"image_size_px": 64, "kmax": 2},
                                                                               {"image_size_px": 96, "kmax": 3}],
                           "seeds": [0]},
        },
    },
    "methods": {"a": {"num_maps": 4, "lr": 0.2, "kmax": 0.1}, "b": {"num_maps": 1, "kmax": 1, "kmin": 0}},
}


def test_runs_and_merged_settings_hand_checked():
    grid = Grid(CONFIG)
    assert grid.runs == [Run("scene15", "a", 0), Run("scene15", "a", 1), Run("scene15", "b", 5),
                         Run("scene15", "ms", 0, ("ms_s64", "ms_s96"))]
    # data_root <- experiment <- method <- method_overrides <- seed; {seed} in split names.
    assert grid.settings("scene15", "a", 1) == {
        "data_root": "data", "dataset": "scene15", "train_split": "train_seed1", "test_split": "test_seed1",
        "backbone": "cnn6", "weights": None, "image_size_px": 96, "epochs": 3, "lr": 0.5, "num_maps": 4, "kmax": 0.1,
        "seed": 1}
    assert grid.settings("scene15", "ms_s64", 0)["image_size_px"] == 64  # a member: base + scale
    assert grid.settings("scene15", "ms_s64", 0)["num_maps"] == 2 and grid.combined == ["ms"]


def test_cli_options_round_trip_through_yaml():
    options = shlex.split(cli_options({"kmin": None, "kmax": "all", "seg_background_grid": [0.2, 0.5], "data_root": "my data"}))
    assert options == ["--kmin=null", "--kmax=all", "--seg-background-grid=[0.2, 0.5]", "--data-root=my data"]


def test_a_gpu_dataset_asks_for_cuda_unless_the_config_says_cpu():
    config = copy.deepcopy(CONFIG)
    config["datasets"]["scene15"]["resources"] = {"gpu": 1}
    assert Grid(config).settings("scene15", "a", 0)["device"] == "cuda"
    config["datasets"]["scene15"]["experiment"]["device"] = "cpu"
    assert Grid(config).settings("scene15", "a", 0)["device"] == "cpu"
    assert "device" not in Grid(CONFIG).settings("scene15", "a", 0)  # no GPU asked for: the config's own


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_gpu_job_without_a_visible_gpu_stops_at_once_with_one_line(tmp_path):
    config = copy.deepcopy(CONFIG)
    config["datasets"]["scene15"]["resources"] = {"gpu": 1}
    options = cli_options(Grid(config).settings("scene15", "a", 0))
    result = subprocess.run([sys.executable, "-m", "wildcat", "train", "--quiet", "--out", str(tmp_path / "run"),
                             *shlex.split(options)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "wildcat train: error: device 'cuda' was asked for but torch sees no CUDA device; use --device cpu or auto"]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["methods"]["a"].update(kmax=-3), "methods.a: config key 'kmax': bad value -3"),
        (lambda c: c["datasets"]["scene15"]["method_overrides"]["a"].update(lr=float("nan")),
         "datasets.scene15.method_overrides.a: config key 'lr': bad value nan"),
        (lambda c: c["datasets"]["scene15"]["methods"].append("zz"), "datasets.scene15.methods: unknown method id 'zz'"),
        (lambda c: c["datasets"]["scene15"]["multiscale"]["scales"].append({"image_size_px": 64}),
         "image_size_px values repeat"),
        (lambda c: c["datasets"]["scene15"]["multiscale"].update(base={"num_maps": 2, "bogus": 1}),
         "datasets.scene15.multiscale: unknown config key 'bogus'"),
    ],
)
def test_every_run_is_validated_when_the_grid_is_built(edit, message):
    config = copy.deepcopy(CONFIG)
    edit(config)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        Grid(config)


def test_the_shipped_configs_build():
    for name, runs in (("config.yaml", 18), ("paper.yaml", 238)):
        assert len(Grid(yaml.safe_load((ROOT / "config" / name).read_text())).runs) == runs
