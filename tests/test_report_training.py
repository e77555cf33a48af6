"""Tests for the training curves (wildcat.report.training) and the workflow rule that keeps each
run's train_log.csv in results/ (workflow/rules/train.smk, keep_train_log).

Logs are written by hand beside fake metrics.json files in tmp_path; the figure is checked through
the matplotlib Figure it is drawn on (lines, colours, legend), then as the PNG written.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

import wildcat.report.training as training
from wildcat.cli import main
from wildcat.report import ReportLayout, ResultsFormatError, load_runs
from wildcat.report.training import load_train_logs, write_training_figures

from helpers import ROOT
from helpers.workflow import TINY, snakemake

LAYOUT = ReportLayout(methods=("wildcat", "gmp"), labels={"wildcat": "WILDCAT", "gmp": "GMP"})
SETTINGS = {"backbone": "cnn6", "image_size_px": 96, "num_maps": 4, "kmax": 0.1, "kmin": None, "alpha": 0.7,
            "order": "conv-pool", "scales": [96]}


def write_run_with_log(root: Path, method: str, seed: int, losses: list[float] | None,
                       lrs: list[float] | None = None, **settings) -> Path:
    """A metrics.json (docs/contracts.md) and, unless ``losses`` is None, the train_log.csv beside it."""
    run = root / "default" / "synthetic" / method / f"seed{seed}"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({
        "schema": 1, "config_name": "default", "dataset": "synthetic", "method": method, "seed": seed,
        "settings": {**SETTINGS, **settings}, "metrics": {"map": 50.0 + seed}, "per_class": {}}))
    if losses is not None:
        lrs = lrs or [0.001, 0.003, 0.001][:len(losses)]
        rows = [f"{epoch},{loss},{lr},12.5,40.0" for epoch, (loss, lr) in enumerate(zip(losses, lrs), start=1)]
        (run / "train_log.csv").write_text("epoch,loss,lr,seconds,images_per_s\n" + "\n".join(rows) + "\n")
    return run


@pytest.fixture()
def runs_dir(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    write_run_with_log(root, "wildcat", 0, [0.6, 0.4, 0.3])
    write_run_with_log(root, "wildcat", 1, [0.62, 0.41, 0.28])
    write_run_with_log(root, "gmp", 0, [0.7, 0.6, 0.55], num_maps=1, kmax=1, kmin=0, alpha=0.0)
    write_run_with_log(root, "gmp", 1, [0.71, 0.58, 0.5], num_maps=1, kmax=1, kmin=0, alpha=0.0)
    write_run_with_log(root, "ms", 0, None, scales=[64, 96])  # a multi-scale combination: no log of its own
    return root


def drawn_figures(logs, monkeypatch, tmp_path) -> dict[str, object]:
    """The Figure of each PNG that write_training_figures writes, by file name."""
    figures = {}
    save = training._save_png

    def keep(figure, path):
        figures[path.name] = figure
        save(figure, path)

    monkeypatch.setattr(training, "_save_png", keep)
    write_training_figures(logs, tmp_path / "figures", LAYOUT)
    return figures


def test_load_train_logs_reads_the_log_beside_each_metrics_json(runs_dir):
    logs = load_train_logs(load_runs(runs_dir), runs_dir)
    assert list(logs.columns) == ["dataset", "method", "seed", "epoch", "curve", "value"]
    assert set(logs["method"]) == {"wildcat", "gmp"}  # ms has no log
    assert set(logs["curve"]) == {"loss", "lr"}  # seconds and images_per_s measure the machine: not drawn
    loss = logs[(logs["method"] == "gmp") & (logs["seed"] == 1) & (logs["curve"] == "loss")]
    assert loss["epoch"].tolist() == [1, 2, 3] and loss["value"].tolist() == [0.71, 0.58, 0.5]


def test_a_training_figure_has_a_panel_per_curve_a_colour_per_method_and_a_line_per_seed(runs_dir, tmp_path,
                                                                                           monkeypatch):
    figures = drawn_figures(load_train_logs(load_runs(runs_dir), runs_dir), monkeypatch, tmp_path)
    assert list(figures) == ["training_synthetic.png"]
    assert (tmp_path / "figures/training_synthetic.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    figure = figures["training_synthetic.png"]
    loss_panel, lr_panel = figure.axes
    assert loss_panel.get_title().startswith("training loss") and loss_panel.get_xlabel() == "epoch"
    lines = [line for line in loss_panel.get_lines() if len(line.get_xdata()) == 3]
    assert len(lines) == 4  # 2 methods x 2 seeds
    assert sorted(list(line.get_ydata()) for line in lines) == sorted(
        [[0.6, 0.4, 0.3], [0.62, 0.41, 0.28], [0.7, 0.6, 0.55], [0.71, 0.58, 0.5]])
    colours = {tuple(line.get_ydata())[0]: line.get_color() for line in lines}
    assert colours[0.6] == colours[0.62] != colours[0.7] == colours[0.71]  # a colour per method
    (legend,) = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == ["WILDCAT", "GMP"]  # the layout's order and labels
    # Every run logged the same learning rates: one black line instead of four hiding each other.
    (lr_line,) = lr_panel.get_lines()
    assert list(lr_line.get_ydata()) == [0.001, 0.003, 0.001] and lr_line.get_color() == "black"


def test_runs_with_their_own_learning_rates_get_a_line_each(runs_dir, tmp_path, monkeypatch):
    shutil.rmtree(runs_dir / "default/synthetic/gmp/seed1")
    write_run_with_log(runs_dir, "gmp", 1, [0.71, 0.58, 0.5], [0.002, 0.002, 0.002], num_maps=1, kmax=1, kmin=0,
                       alpha=0.0)
    figures = drawn_figures(load_train_logs(load_runs(runs_dir), runs_dir), monkeypatch, tmp_path)
    lr_panel = figures["training_synthetic.png"].axes[1]
    assert len([line for line in lr_panel.get_lines() if len(line.get_xdata()) == 3]) == 4


@pytest.mark.parametrize(("text", "words"), [
    ("step,cost\n1,0.5\n", "expected the columns of `wildcat train`'s train_log.csv"),
    ("epoch,loss,lr\n1,nan-ish,0.1\n", "is not a number"),
])
def test_a_malformed_log_is_a_results_error(runs_dir, text, words):
    (runs_dir / "default/synthetic/wildcat/seed0/train_log.csv").write_text(text)
    with pytest.raises(ResultsFormatError, match=re.escape(words)):
        load_train_logs(load_runs(runs_dir), runs_dir)


def test_wildcat_report_draws_the_curves_from_the_results_only(runs_dir, tmp_path):
    out = tmp_path / "report"
    args = ["report", "--runs", str(runs_dir), "--paper", str(ROOT / "results" / "paper"), "--config-name", "default",
            "--layout", LAYOUT.to_json(), "--out", str(out)]
    assert main(args) == 0
    assert (out / "figures" / "training_synthetic.png").is_file()
    for log in runs_dir.rglob("train_log.csv"):  # results without logs: no curves, no error
        log.unlink()
    assert main(args) == 0
    assert not (out / "figures" / "training_synthetic.png").exists()


# ------------------------------------------------------------------------------------------
# The workflow keeps the logs in results/


def _jobs(output: str, rule: str) -> list[str]:
    return [job for job in output.split("\n\n") if f"rule {rule}:" in job]


@pytest.mark.slow
def test_the_default_dry_run_keeps_every_single_model_runs_log_for_the_report():
    result = snakemake("-n", "--forceall")
    assert result.returncode == 0, result.stderr
    runs = [(dataset, method, seed) for dataset, spec in yaml.safe_load((ROOT / "config/config.yaml").read_text())[
        "datasets"].items() for method in spec["methods"] for seed in (0, 1, 2)]
    kept = _jobs(result.stdout, "keep_train_log")
    assert len(kept) == len(runs) == 18
    (job,) = [j for j in kept if "output: results/runs/default/synthetic/wildcat_a0/seed2/train_log.csv" in j]
    assert "input: runs/default/synthetic/wildcat_a0/seed2/train_log.csv" in job
    (report,) = _jobs(result.stdout, "report")
    (inputs,) = re.findall(r"^\s+input: (.+)$", report, re.MULTILINE)
    assert {f"results/runs/default/{d}/{m}/seed{s}/train_log.csv" for d, m, s in runs} <= set(inputs.split(", "))
    shell = report.split("Shell command:", 1)[1]  # the report finds the logs beside the metrics.json it is given
    assert " results/runs/default/synthetic/gap/seed0/metrics.json " in shell and "train_log.csv" not in shell


@pytest.mark.slow
def test_keep_train_log_copies_the_runs_log_into_results(tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["datasets"]["synthetic"]["methods"] = ["gmp"]
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    work = tmp_path / "work"
    work.mkdir()
    target = "results/runs/tiny/synthetic/gmp/seed0/train_log.csv"
    result = snakemake("--cores", "1", "--configfile", str(tmp_path / "tiny.yaml"), "--directory", str(work), target)
    assert result.returncode == 0, result.stderr[-3000:]
    kept = (work / target).read_bytes()
    assert kept == (work / "runs/tiny/synthetic/gmp/seed0/train_log.csv").read_bytes()
    assert kept.decode().splitlines()[0] == "epoch,loss,lr,seconds,images_per_s"
