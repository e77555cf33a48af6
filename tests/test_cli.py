"""Tests for the `wildcat` command line (wildcat.cli)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from wildcat import __version__
from wildcat.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wildcat", *args], capture_output=True, text=True, timeout=120)


def test_help_and_version():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("make-synthetic", "download", "train", "evaluate", "report"):
        assert command in result.stdout
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"wildcat-bench {__version__}"


def test_train_help_lists_every_setting():
    result = run_cli("train", "--help")
    for option in ("--num-maps", "--kmax", "--kmin", "--alpha", "--lrp", "--image-size-px", "--device"):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alpha", "-1"], "config key 'alpha': bad value -1.0; allowed: a finite number >= 0"),
        (["--backbone", "vgg"], "config key 'backbone': bad value 'vgg'; allowed: resnet18 | resnet34"),
        (["--kmax", "top"], "config key 'kmax': bad value 'top'"),
    ],
)
def test_bad_setting_is_one_line_exit_2(tmp_path, capsys, args, message):
    assert main(["train", "--out", str(tmp_path / "run"), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_unknown_key_in_yaml(tmp_path, capsys):
    path = tmp_path / "exp.yaml"
    path.write_text("kmaxx: 3\n")
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    assert f"unknown config key 'kmaxx' in {path}; valid keys:" in capsys.readouterr().err


def test_missing_dataset_says_how_to_get_it(tmp_path, capsys):
    code = main(["train", "--out", str(tmp_path / "run"), "--dataset", "voc2007", "--data-root", str(tmp_path),
                 "--weights", "null", "--backbone", "resnet18", "--device", "cpu"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"wildcat download voc2007 --root {tmp_path}" in err


def test_unfinished_run_cannot_be_evaluated(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["evaluate", "--run", str(tmp_path / "run"), "--out", str(tmp_path / "m.json")]) == 2
    assert "config.yaml" in capsys.readouterr().err


def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    # `wildcat download --list | head -c 0`: the reader has gone before wildcat writes (it starts
    # in a fraction of the time Python takes); no BrokenPipeError traceback.
    command = f"{sys.executable} -m wildcat download --list --root {tmp_path} | head -c 0; exit ${{PIPESTATUS[0]}}"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr
