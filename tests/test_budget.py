"""Tests for the compute budget (wildcat.budget) against hand-computed hours."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest
import torch
import yaml

from wildcat.budget import PLACEHOLDER, Throughput, budget_table, format_budget, load_throughput, run_hours
from wildcat.errors import WildcatError

from helpers import ROOT

# 2 training images/s and evaluation 3x faster: the hand-computed figures below.
TWO_PER_SECOND = Throughput(2.0, 6.0, "a test")

COLUMNS = "table,method,our_method,dataset,metric,value,exact,scale,num_maps,kmax,kmin,alpha,order,check,source,note"


def test_run_hours_hand_computed():
    # 2 epochs x 3600 images at 2 images/s = 3600 s; 1800 test images at 2 x 3 images/s = 300 s.
    assert run_hours(2, 3600, 1800, [448], TWO_PER_SECOND) == pytest.approx((1.0, 300 / 3600))
    # 224 px costs a quarter of 448 px: scales (224, 448) cost 1.25 times one 448 px run.
    assert run_hours(2, 3600, 1800, [224, 448], TWO_PER_SECOND) == pytest.approx((1.25, 1.25 * 300 / 3600))
    with pytest.raises(WildcatError, match="must be > 0"):
        Throughput(0.0, 6.0)


@pytest.fixture
def tiny_grid(tmp_path):
    paper = tmp_path / "paper"
    paper.mkdir()
    (paper / "supp_table1_datasets.csv").write_text("table,dataset,train_images,test_images\nS1,toy,3600,1800\n")
    (paper / "supp_table2_scales.csv").write_text("table,image_size_px,kmax\nS2,224,3\nS2,448,20\n")
    (paper / "table2_x.csv").write_text(
        f"{COLUMNS}\nTable 2,A,a,toy,map,1,true,448,,,,,,,,\nTable 2,other paper,,toy,map,1,true,,,,,,,,,\n"
        "Table 2,A,a,elsewhere,map,1,true,448,,,,,,,,\n")  # a dataset the config does not cover: skipped
    (paper / "table3_x.csv").write_text(f"{COLUMNS}\nTable 3,WILDCAT,ms,toy,map,1,true,multi,,,,,,,,\nTable 3,A,a,toy,acc,1,true,448,,,,,,,,\n")
    (paper / "figure4_x.csv").write_text(f"{COLUMNS}\nFigure 4,B,b,toy,map,1,true,448,,,,,,,,\n")
    config = {
        "seeds": [0, 1],
        "datasets": {"toy": {
            "experiment": {"epochs": 2, "image_size_px": 448},
            "methods": ["a", ["c"]],  # a YAML alias inside the list loads as a nested list
            "multiscale": {"method": "ms", "scales": [{"image_size_px": 224}, {"image_size_px": 448}], "seeds": [0]},
        }},
        "methods": {"a": {"num_maps": 1}, "c": {}},  # every listed id defined, as the workflow requires
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, paper


def test_budget_table_hand_computed(tiny_grid):
    config, paper = tiny_grid
    table = budget_table(config, TWO_PER_SECOND, paper_dir=paper).set_index("table")
    # Table 2: `a` at 448 px, 2 seeds: 2 x 1 h training, 2 x 300 s evaluation.
    assert table.loc["Table 2"].to_dict() == {"runs": 2, "train_gpu_hours": 2.0, "eval_gpu_hours": 0.17,
                                              "gpu_hours": 2.17, "not_in_config": 0}
    # Table 3: multi-scale `ms` (224 + 448 px, 1 seed: 1.25 h + 375 s) plus `a` again.
    assert table.loc["Table 3"].to_dict() == {"runs": 4, "train_gpu_hours": 3.25, "eval_gpu_hours": 0.27,
                                              "gpu_hours": 3.52, "not_in_config": 0}
    # Figure 4: `b` is not in the config's methods: counted with the dataset's experiment, and flagged.
    assert table.loc["Figure 4"].to_dict() == {"runs": 2, "train_gpu_hours": 2.0, "eval_gpu_hours": 0.17,
                                               "gpu_hours": 2.17, "not_in_config": 1}
    # All tables: a, ms, b once each.
    assert table.loc["all tables"].to_dict() == {"runs": 6, "train_gpu_hours": 5.25, "eval_gpu_hours": 0.44,
                                                 "gpu_hours": 5.69, "not_in_config": 0}
    assert list(table.index) == ["Table 2", "Table 3", "Figure 4", "all tables"]


def test_budget_output_says_the_throughput_is_an_input(tiny_grid):
    config, paper = tiny_grid
    table = budget_table(config, paper_dir=paper)
    assert "PLACEHOLDER" in format_budget(table, PLACEHOLDER)
    measured = format_budget(table, Throughput(250.0, 700.0, "NVIDIA H100, benchmarks/throughput.py"))
    assert "PLACEHOLDER" not in measured and "NVIDIA H100" in measured and "700 evaluation" in measured


def test_paper_grid_has_every_table():
    table = budget_table(ROOT / "config" / "paper.yaml", paper_dir=ROOT / "results" / "paper")
    assert {"Table 2", "Table 9", "Figure 5", "all tables"} <= set(table["table"])
    assert (table["gpu_hours"] > 0).all()


def test_a_list_of_multiscale_models_is_found_by_method(tiny_grid):
    """VOC 2012 in config/paper.yaml has two multi-scale models (train and train_aug): each
    paper row is costed with the scales of its own model."""
    config, paper = tiny_grid
    grid = yaml.safe_load(config.read_text())
    ms = grid["datasets"]["toy"]["multiscale"]
    grid["datasets"]["toy"]["multiscale"] = [ms, {"method": "ms_aug", "scales": [{"image_size_px": 224}], "seeds": [0]}]
    config.write_text(yaml.safe_dump(grid))
    (paper / "table9_x.csv").write_text(f"{COLUMNS}\nTable 9,WILDCAT,ms_aug,toy,seg,1,true,multi,,,,,,,,\n")
    table = budget_table(config, TWO_PER_SECOND, paper_dir=paper).set_index("table")
    # Table 3 unchanged (`ms`: 224 + 448 px, plus `a`); Table 9: `ms_aug` at 224 px only, 1 seed:
    # 2 epochs x 3600 images x 0.25 / 2 per s = 900 s, evaluation 1800 x 0.25 / 6 = 75 s.
    assert table.loc["Table 3", "train_gpu_hours"] == 3.25
    assert table.loc["Table 9"].to_dict() == {"runs": 1, "train_gpu_hours": 0.25, "eval_gpu_hours": 0.02,
                                              "gpu_hours": 0.27, "not_in_config": 0}


def _throughput_benchmark():
    spec = importlib.util.spec_from_file_location("throughput_benchmark", ROOT / "benchmarks" / "throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record(bench, size_px=448, bfloat16=False):
    float32 = {bench.BARE: [4.0, 5.0, 6.0], bench.WILDCAT: [3.0, 5.0, 4.0], bench.EVALUATION: [12.0, 15.0, 9.0]}
    precisions = {"float32": float32}
    if bfloat16:
        precisions["bfloat16_channels_last"] = {bench.BARE: [10.0], bench.WILDCAT: [8.0]}
    return bench.throughput_record(torch.device("cpu"), size_px, 2, precisions, {"decode_jpeg": [200.0, 210.0]})


def test_throughput_record_round_trip(tmp_path):
    """What the benchmark writes is what the budget reads: medians, and the device that measured them."""
    bench = _throughput_benchmark()
    path = tmp_path / "card.json"
    path.write_text(json.dumps(_record(bench)))
    throughput = load_throughput(path)
    assert (throughput.train_images_per_second, throughput.eval_images_per_second) == (4.0, 12.0)
    assert throughput.source.startswith(bench.device_name(torch.device("cpu"))) and "float32" in throughput.source
    # On CUDA the benchmark also measures wildcat train's default (bfloat16 + channels_last):
    # training is costed in it, evaluation stays float32 as `wildcat evaluate` runs it.
    path.write_text(json.dumps(_record(bench, bfloat16=True)))
    throughput = load_throughput(path)
    assert (throughput.train_images_per_second, throughput.eval_images_per_second) == (8.0, 12.0)
    assert "bfloat16_channels_last" in throughput.source


@pytest.mark.parametrize("content, message", [
    (None, "no throughput file"),
    ("not json", "is not a throughput record"),
    ('{"precisions": {}}', "is not a throughput record"),
])
def test_load_throughput_errors(tmp_path, content, message):
    path = tmp_path / "card.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(WildcatError, match=message):
        load_throughput(path)


def test_load_throughput_refuses_another_size(tmp_path):
    bench = _throughput_benchmark()
    path = tmp_path / "card.json"
    path.write_text(json.dumps(_record(bench, size_px=224)))
    with pytest.raises(WildcatError, match="measured at 224 px; the budget needs 448 px"):
        load_throughput(path)


@pytest.mark.slow
def test_benchmark_json_feeds_the_budget_command(tmp_path):
    """End to end on this CPU: the benchmark's shortest run at 448 px writes its JSON, and
    `wildcat budget --throughput` costs the paper grid from it and names the device."""
    path = tmp_path / "cpu.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--device", "cpu", "--batch-size", "1",
                    "--steps", "1", "--rounds", "1", "--jpegs", "2", "--pipeline-rounds", "1", "--json", str(path)],
                   check=True, capture_output=True, text=True, cwd=ROOT)
    record = json.loads(path.read_text())
    assert record["size_px"] == 448 and set(record["precisions"]) == {"float32"}
    measured = load_throughput(path)
    out = subprocess.run([sys.executable, "-m", "wildcat", "budget", "--throughput", str(path)],
                         check=True, capture_output=True, text=True, cwd=ROOT).stdout
    assert "PLACEHOLDER" not in out and record["device"] in out
    assert f"{measured.train_images_per_second:g} training" in out
    # Hours scale with 1 / throughput: against the placeholder's 100 training images/s.
    hours = budget_table(ROOT / "config" / "paper.yaml", measured, ROOT / "results" / "paper").set_index("table")
    placeholder = budget_table(ROOT / "config" / "paper.yaml", paper_dir=ROOT / "results" / "paper").set_index("table")
    assert hours.loc["all tables", "train_gpu_hours"] == pytest.approx(
        placeholder.loc["all tables", "train_gpu_hours"] * 100.0 / measured.train_images_per_second, rel=1e-3)


def test_budget_reads_the_paper_tables_from_the_folder_it_is_given_not_from_the_package(tmp_path):
    """A non-editable install has no results/ beside the package: `wildcat budget` reads the paper's
    tables from --paper (default: results/paper under the working directory)."""
    paper = tmp_path / "elsewhere"
    subprocess.run(["cp", "-r", str(ROOT / "results" / "paper"), str(paper)], check=True)
    args = [sys.executable, "-m", "wildcat", "budget", "--config", str(ROOT / "config" / "paper.yaml")]
    given = subprocess.run([*args, "--paper", str(paper)], capture_output=True, text=True, cwd=tmp_path)
    assert given.returncode == 0, given.stderr
    assert "all tables" in given.stdout
    missing = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path)
    assert missing.returncode != 0 and "supp_table1_datasets.csv" in missing.stderr
