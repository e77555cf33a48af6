"""Tests for wildcat.report: results/runs/**/metrics.json + results/paper/*.csv -> tables, figures.

Fake run trees are written in tmp_path; expected cells are worked out by hand in the comments.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from wildcat import report
from wildcat.cli import main
from wildcat.engine.config import ConfigError
from wildcat.report import (
    NO_PAPER_VALUE,
    NOT_APPLICABLE,
    NOT_RUN,
    TABLE_NAMES,
    ReportLayout,
    ablation_runs,
    build_tables,
    figures,
    format_ours,
    format_paper,
    load_paper,
    load_runs,
    write_figures,
    write_tables,
)

REPO = Path(__file__).resolve().parents[1]
PAPER_DIR = REPO / "results" / "paper"

# Default-grid settings (docs/contracts.md example) and the paper's single-scale analysis setting.
DEFAULT = {"backbone": "cnn6", "image_size_px": 96, "num_maps": 4, "kmax": 0.1, "kmin": None, "alpha": 0.7,
           "order": "conv-pool", "scales": [96]}
ANALYSIS = {"backbone": "resnet101", "image_size_px": 448, "num_maps": 1, "kmax": 1, "kmin": 1, "alpha": 1.0,
            "order": "conv-pool", "scales": [448]}
# The layout of the fake tree below, which holds runs of both grids: config/config.yaml's report
# block with the paper grid's multi-scale models among the extra rows.
LAYOUT = ReportLayout(methods=("wildcat", "m1", "gmp", "gap"),
                      extra_rows=("wildcat", "wildcat_trainaug", "m1", "gmp", "gap"),
                      ablation_bases=("wildcat", "ss_m1_a1"), paper_ablation_base="ss_m1_a1",
                      labels={"wildcat": "WILDCAT", "wildcat_trainaug": "WILDCAT, trained on train_aug"})


def write_run(root: Path, dataset: str, method: str, seed: int, metrics: dict[str, float],
              settings: dict[str, Any], config: str = "default", **overrides: Any) -> Path:
    """Write one metrics.json as `wildcat evaluate` does (docs/contracts.md)."""
    record = {
        "schema": 1, "config_name": config, "dataset": dataset, "method": method, "seed": seed,
        "settings": {**settings, **overrides}, "metrics": metrics,
        "per_class": {key: {} for key in metrics}, "protocol": {"ap_mode": "voc07", "loc_tolerance_px": 18},
        "num_test_images": 10,
    }
    path = root / config / dataset / method / f"seed{seed}" / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))
    return path


def make_runs(root: Path) -> Path:
    """The fake results tree every test below reads."""
    # Default grid on the synthetic set. gap is the experiment that was not run.
    write_run(root, "synthetic", "wildcat", 0, {"map": 80.0, "loc_map": 70.0}, DEFAULT)
    write_run(root, "synthetic", "wildcat", 1, {"map": 84.0, "loc_map": 70.0}, DEFAULT)
    write_run(root, "synthetic", "m1", 0, {"map": 75.0, "loc_map": 60.0}, DEFAULT, num_maps=1)
    write_run(root, "synthetic", "gmp", 0, {"map": 70.0, "loc_map": 65.0}, DEFAULT, kmax=1, kmin=0)
    # Alpha ablation around wildcat: alpha 0 (2 seeds), alpha 1 (1 seed).
    write_run(root, "synthetic", "wildcat_a0", 0, {"map": 78.0, "loc_map": 50.0}, DEFAULT, alpha=0.0)
    write_run(root, "synthetic", "wildcat_a0", 1, {"map": 79.0, "loc_map": 52.0}, DEFAULT, alpha=0.0)
    write_run(root, "synthetic", "wildcat_a1", 0, {"map": 77.0, "loc_map": 66.0}, DEFAULT, alpha=1.0)
    # Same settings as wildcat: must not be pooled with wildcat's seeds (the base wins).
    write_run(root, "synthetic", "wildcat_a0.7", 0, {"map": 10.0, "loc_map": 10.0}, DEFAULT)
    # alpha 0 but another image size: not part of the ablation (settings differ beyond alpha).
    write_run(root, "synthetic", "decoy_a0", 0, {"map": 1.0, "loc_map": 1.0}, DEFAULT, alpha=0.0, image_size_px=64)
    # A main result and the paper's analysis grid on VOC 2007.
    write_run(root, "voc2007", "wildcat", 0, {"map": 90.0}, DEFAULT, backbone="resnet101", image_size_px=448)
    for seed, value in enumerate([88.0, 89.0, 90.0]):
        write_run(root, "voc2007", "ss_m1_a1", seed, {"map": value}, ANALYSIS)
    write_run(root, "voc2007", "ss_m1_a0.6", 0, {"map": 90.5}, ANALYSIS, alpha=0.6)
    write_run(root, "voc2007", "ss_m4_a1", 0, {"map": 91.0}, ANALYSIS, num_maps=4)
    # VOC 2012 (config/paper.yaml): the multi-scale model on train, its 448 px member, and
    # Table 9's multi-scale model trained on train_aug.
    multi = {**DEFAULT, "backbone": "resnet101", "image_size_px": [224, 448], "scales": [224, 448]}
    write_run(root, "voc2012", "wildcat", 0, {"map": 92.0, "loc_map": 80.0, "seg_miou_argmax": 30.0,
                                              "seg_miou_crf": 33.0}, multi)
    write_run(root, "voc2012", "wildcat_s448", 0, {"map": 91.0}, DEFAULT, image_size_px=448, scales=[448])
    write_run(root, "voc2012", "wildcat_trainaug", 0, {"seg_miou_argmax": 40.0, "seg_miou_crf": 44.0}, multi)
    # Another config: must not leak into the default tables.
    write_run(root, "synthetic", "gap", 0, {"map": 1.0, "loc_map": 1.0}, DEFAULT, config="other", kmax="all", kmin=0)
    return root


@pytest.fixture()
def runs_dir(tmp_path: Path) -> Path:
    return make_runs(tmp_path / "runs")


@pytest.fixture(scope="module")
def paper() -> pd.DataFrame:
    return load_paper(PAPER_DIR)


@pytest.fixture()
def tables(runs_dir: Path, paper: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return build_tables(load_runs(runs_dir), paper, "default", LAYOUT)


def cell(frame: pd.DataFrame, column: str, **where: str) -> str:
    mask = pd.Series(True, index=frame.index)
    for key, value in where.items():
        mask &= frame[key] == value
    hits = frame.loc[mask, column].tolist()
    assert len(hits) == 1, f"{where}: {len(hits)} rows"
    return hits[0]


# ------------------------------------------------------------------------------------------
# Cells


@pytest.mark.parametrize(("values", "expected"), [
    ([], NOT_RUN),
    ([83.14], "83.1 (n=1)"),
    ([80.0, 84.0], "82.0 ± 2.8 (n=2)"),  # mean 82, sample std sqrt(((-2)^2 + 2^2) / 1) = 2.83
    ([88.0, 89.0, 90.0], "89.0 ± 1.0 (n=3)"),  # sample std sqrt((1 + 0 + 1) / 2) = 1
    ([70.0, 70.0], "70.0 ± 0.0 (n=2)"),
])
def test_format_ours(values, expected):
    assert format_ours(values) == expected


@pytest.mark.parametrize(("value", "exact", "expected"), [
    (95.0, True, "95.0"), (90.55, False, "~90.55"), (86.4, False, "~86.4"), (None, True, NO_PAPER_VALUE),
    (float("nan"), True, NO_PAPER_VALUE),
])
def test_format_paper(value, exact, expected):
    assert format_paper(value, exact) == expected


# ------------------------------------------------------------------------------------------
# Loading


def test_load_runs(runs_dir):
    runs = load_runs(runs_dir)
    assert tuple(runs.columns) == report.RUN_COLUMNS
    # 9 synthetic runs x 2 metrics + 1 + 3 + 1 + 1 VOC 2007 runs + 4 + 1 + 2 VOC 2012 metrics + 2 (other config)
    assert len(runs) == 18 + 6 + 7 + 2
    assert runs["seed"].dtype == "int64" and runs["value"].dtype == "float64"
    row = runs[(runs["method"] == "wildcat_a0") & (runs["seed"] == 1) & (runs["metric"] == "loc_map")].iloc[0]
    assert (row["config_name"], row["dataset"], row["value"], row["alpha"], row["num_maps"]) == (
        "default", "synthetic", 52.0, 0.0, 4.0)
    assert row["path"] == "default/synthetic/wildcat_a0/seed1/metrics.json"
    assert row["ap_mode"] == "voc07"
    assert json.loads(row["settings"])["image_size_px"] == 96
    keys = ["config_name", "dataset", "method", "seed", "metric"]
    assert runs[keys].equals(runs.sort_values(keys)[keys].reset_index(drop=True))


def test_load_paper_needs_the_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="results/paper"):
        load_paper(tmp_path)


def test_load_runs_missing_folder_is_empty(tmp_path):
    runs = load_runs(tmp_path / "nothing")
    assert runs.empty and tuple(runs.columns) == report.RUN_COLUMNS


def test_load_runs_rejects_a_file_that_disagrees_with_its_path(tmp_path):
    path = write_run(tmp_path, "synthetic", "wildcat", 0, {"map": 1.0}, DEFAULT)
    record = json.loads(path.read_text())
    record["method"] = "gmp"
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="disagree with its path"):
        load_runs(tmp_path)


def test_load_runs_rejects_unknown_metric_and_bad_schema(tmp_path):
    path = write_run(tmp_path, "synthetic", "wildcat", 0, {"mAP": 1.0}, DEFAULT)
    with pytest.raises(ValueError, match="unknown metric key 'mAP'"):
        load_runs(tmp_path)
    record = json.loads(path.read_text())
    record["schema"] = 3
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="schema"):
        load_runs(tmp_path)


def test_load_runs_reads_exactly_the_listed_files(runs_dir):
    """The workflow lists the metrics.json files of its config: any other file is not read."""
    listed = [runs_dir / "default" / "synthetic" / "wildcat" / f"seed{seed}" / "metrics.json" for seed in (0, 1)]
    runs = load_runs(runs_dir, [*listed, listed[0]])  # a file listed twice is one run
    assert set(runs["path"]) == {"default/synthetic/wildcat/seed0/metrics.json",
                                 "default/synthetic/wildcat/seed1/metrics.json"}
    assert len(runs) == 4
    assert load_runs(runs_dir, []).empty
    with pytest.raises(report.ResultsFormatError, match="no such file"):
        load_runs(runs_dir, [runs_dir / "default" / "synthetic" / "wildcat" / "seed9" / "metrics.json"])
    with pytest.raises(report.ResultsFormatError, match="is not a run of"):
        load_runs(runs_dir / "default", listed)


# ------------------------------------------------------------------------------------------
# Tables


def test_table_names_and_no_blank_cells(tables):
    assert tuple(tables) == TABLE_NAMES
    for name, frame in tables.items():
        assert "config: default" in frame.attrs["title"]
        for value in frame.to_numpy().ravel():
            assert isinstance(value, str) and value.strip(), f"{name}: blank cell"
            assert value not in ("nan", "None", "<NA>"), f"{name}: {value!r}"
        result_columns = [c for c in frame.columns if c in ("paper", "ours", *LAYOUT.methods)]
        for value in frame[result_columns].to_numpy().ravel():
            assert value not in ("0", "0.0"), f"{name}: a zero where a result should be"


def test_classification_side_by_side(tables):
    table = tables["classification"]
    assert tuple(table.columns) == report.SIDE_BY_SIDE_COLUMNS
    # Run once on VOC 2007: the value and n=1, beside the paper's 95.0 (Table 2).
    assert cell(table, "paper", table="Table 2", dataset="voc2007", method="WILDCAT") == "95.0"
    assert cell(table, "ours", table="Table 2", dataset="voc2007", method="WILDCAT") == "90.0 (n=1)"
    assert cell(table, "ours", table="Table 2", dataset="voc2012", method="WILDCAT") == "92.0 (n=1)"
    # Not run: MIT67 (Table 3) and COCO (Table 4).
    assert cell(table, "ours", table="Table 3", dataset="mit67", method="WILDCAT") == NOT_RUN
    assert cell(table, "paper", table="Table 3", dataset="mit67", method="WILDCAT") == "84.0"
    assert cell(table, "ours", table="Table 4", dataset="coco2014", method="WILDCAT") == NOT_RUN
    # Other papers' methods: their number, n/a for ours.
    assert cell(table, "paper", table="Table 2", dataset="voc2007", method="RRSVM") == "92.9"
    assert cell(table, "ours", table="Table 2", dataset="voc2007", method="RRSVM") == NOT_APPLICABLE
    # The paper's order within a table: VOC 2007 rows first, WILDCAT last among the paper's rows.
    voc07 = table[(table["table"] == "Table 2") & (table["dataset"] == "voc2007")]["method"].tolist()
    assert voc07 == ["VGG16", "WELDON", "ResNet-101 (fb.resnet.torch)", "RRSVM", "SPLeaP", "WILDCAT"]
    # The synthetic set is not one of the paper's tables.
    assert "synthetic" not in set(table["dataset"])


def test_localization_and_segmentation(tables):
    loc = tables["localization"]
    assert cell(loc, "ours", dataset="voc2012", method="WILDCAT") == "80.0 (n=1)"
    assert cell(loc, "paper", dataset="voc2012", method="WILDCAT") == "82.9"
    assert cell(loc, "ours", dataset="coco2014", method="WILDCAT") == NOT_RUN
    seg = tables["segmentation"]
    assert cell(seg, "ours", method="WILDCAT (argmax)") == "40.0 (n=1)"
    assert cell(seg, "metric", method="WILDCAT (argmax)") == "seg_miou_argmax"
    assert cell(seg, "ours", method="WILDCAT + FC-CRF") == "44.0 (n=1)"
    assert cell(seg, "paper", method="WILDCAT + FC-CRF") == "43.7"
    assert cell(seg, "ours", method="CCNN + FC-CRF") == NOT_APPLICABLE
    assert cell(seg, "our_method", method="WILDCAT + FC-CRF") == "wildcat_trainaug"
    # The multi-scale model trained on train (Tables 2 and 8) is added below, labelled as such.
    added = seg[seg["our_method"] == "wildcat"]
    assert added["method"].tolist() == ["WILDCAT, multi-scale (224, 448 px)"] * 2
    assert added["paper"].tolist() == [NO_PAPER_VALUE] * 2 and added["ours"].tolist() == ["30.0 (n=1)", "33.0 (n=1)"]


def test_the_single_scale_member_is_reported_beside_the_multiscale_model(tables):
    table = tables["classification"]
    assert cell(table, "ours", table="Table 2", dataset="voc2012", method="WILDCAT") == "92.0 (n=1)"
    member = table[(table["dataset"] == "voc2012") & (table["our_method"] == "wildcat_s448")]
    assert member["method"].tolist() == ["WILDCAT, single scale 448 px (member of the multi-scale model)"]
    assert member["ours"].tolist() == ["91.0 (n=1)"] and member["paper"].tolist() == [NO_PAPER_VALUE]


def test_methods_table(tables):
    methods = tables["methods"]
    assert list(methods.columns) == ["dataset", "metric", "wildcat", "m1", "gmp", "gap"]
    # mean(80, 84) = 82, sample std 2.83; gap was only run in another config.
    assert methods.iloc[0].tolist() == ["synthetic", "map", "82.0 ± 2.8 (n=2)", "75.0 (n=1)", "70.0 (n=1)", NOT_RUN]
    assert methods.iloc[1].tolist() == ["synthetic", "loc_map", "70.0 ± 0.0 (n=2)", "60.0 (n=1)", "65.0 (n=1)",
                                        NOT_RUN]
    assert cell(methods, "m1", dataset="voc2007", metric="map") == NOT_RUN
    assert list(methods["dataset"]) == ["synthetic", "synthetic", "voc2007", "voc2012", "voc2012", "voc2012",
                                        "voc2012"]


def test_ablation_selection_rule(runs_dir):
    runs = load_runs(runs_dir)
    runs = runs[runs["config_name"] == "default"]
    chosen = ablation_runs(runs, "wildcat", "alpha")
    synthetic = chosen[chosen["dataset"] == "synthetic"]
    # wildcat (0.7), wildcat_a0, wildcat_a1; not decoy_a0 (other image size), not wildcat_a0.7
    # (same alpha as the base: the base is kept), not m1 / gmp (other num_maps / kmax).
    assert sorted(set(synthetic["method"])) == ["wildcat", "wildcat_a0", "wildcat_a1"]
    assert set(chosen["base"]) == {"wildcat"}
    # VOC 2007's wildcat has other settings than the ss_* runs: it is alone in its ablation.
    assert set(chosen[chosen["dataset"] == "voc2007"]["method"]) == {"wildcat"}
    by_maps = ablation_runs(runs, "wildcat", "num_maps")
    assert sorted(set(by_maps[by_maps["dataset"] == "synthetic"]["method"])) == ["m1", "wildcat"]
    ss = ablation_runs(runs, "ss_m1_a1", "num_maps")
    assert sorted(set(ss["method"])) == ["ss_m1_a1", "ss_m4_a1"]
    with pytest.raises(ValueError, match="vary"):
        ablation_runs(runs, "wildcat", "kmax")


def test_alpha_ablation_table(tables):
    alpha = tables["alpha_ablation"]
    assert list(alpha.columns) == ["dataset", "metric", "base", "alpha", "method", "paper_source", "paper", "ours"]
    synthetic = alpha[(alpha["dataset"] == "synthetic") & (alpha["metric"] == "map")]
    assert synthetic["alpha"].tolist() == ["0", "0.7", "1"]
    assert synthetic["method"].tolist() == ["wildcat_a0", "wildcat", "wildcat_a1"]
    # mean(78, 79) = 78.5 -> "78.5", sample std 0.707 -> "0.7"
    assert synthetic["ours"].tolist() == ["78.5 ± 0.7 (n=2)", "82.0 ± 2.8 (n=2)", "77.0 (n=1)"]
    assert set(synthetic["paper"]) == {NO_PAPER_VALUE}  # the paper has no synthetic set
    voc = alpha[(alpha["dataset"] == "voc2007") & (alpha["base"] == "ss_m1_a1")]
    assert len(voc) == 11  # Figure 4's alpha grid
    assert cell(voc, "ours", alpha="1") == "89.0 ± 1.0 (n=3)"
    assert cell(voc, "paper", alpha="1") == "89.0"
    assert cell(voc, "ours", alpha="0.6") == "90.5 (n=1)"
    assert cell(voc, "paper", alpha="0.6") == "~90.6"
    assert cell(voc, "ours", alpha="0.3") == NOT_RUN
    assert cell(voc, "paper_source", alpha="0.3") == "Figure 4"
    # The paper's Figure 5 (VOC 2012) with nothing run on that base.
    fig5 = alpha[(alpha["dataset"] == "voc2012") & (alpha["base"] == "ss_m1_a1")]
    assert len(fig5) == 22 and set(fig5["ours"]) == {NOT_RUN}


def test_num_maps_ablation_table(tables):
    table = tables["m_ablation"]
    synthetic = table[(table["dataset"] == "synthetic") & (table["metric"] == "map")]
    assert synthetic[["num_maps", "method", "paper", "ours"]].values.tolist() == [
        ["1", "m1", NO_PAPER_VALUE, "75.0 (n=1)"], ["4", "wildcat", NO_PAPER_VALUE, "82.0 ± 2.8 (n=2)"]]
    voc = table[(table["dataset"] == "voc2007") & (table["base"] == "ss_m1_a1")]
    assert voc["num_maps"].tolist() == ["1", "2", "4", "8", "12", "16"]
    assert cell(voc, "ours", num_maps="4") == "91.0 (n=1)"
    assert cell(voc, "paper", num_maps="4") == "91.6"
    assert cell(voc, "ours", num_maps="8") == NOT_RUN


def test_table7_and_table5_use_the_analysis_ids(tables):
    t7 = tables["alpha_m_ablation"]
    assert cell(t7, "ours", dataset="voc2007", our_method="ss_m1_a1") == "89.0 ± 1.0 (n=3)"
    assert cell(t7, "ours", dataset="voc2007", our_method="ss_m4_a1") == "91.0 (n=1)"
    assert cell(t7, "ours", dataset="voc2007", our_method="ss_m4_a0.7") == NOT_RUN
    t5 = tables["order_ablation"]
    assert cell(t5, "ours", dataset="voc2007", our_method="ss_m1_a1_poolconv") == NOT_RUN


def test_config_filter(runs_dir, paper):
    other = build_tables(load_runs(runs_dir), paper, "other", LAYOUT)
    assert other["methods"]["gap"].tolist() == ["1.0 (n=1)", "1.0 (n=1)"]
    assert cell(other["classification"], "ours", table="Table 2", dataset="voc2007", method="WILDCAT") == NOT_RUN


def test_the_layout_names_the_methods_of_each_table(runs_dir, paper):
    """A new method, or another analysis base, is a change of the config's report block only."""
    layout = ReportLayout(methods=("gmp", "wildcat_a1"), extra_rows=("ss_m4_a1",), ablation_bases=("ss_m4_a1",),
                          labels={"gmp": "GMP"})
    tables = build_tables(load_runs(runs_dir), paper, "default", layout)
    methods = tables["methods"]
    assert list(methods.columns) == ["dataset", "metric", "gmp", "wildcat_a1"]
    assert methods.attrs["title"] == "Our grid: GMP vs wildcat_a1, % (config: default)"
    assert cell(methods, "wildcat_a1", dataset="synthetic", metric="map") == "77.0 (n=1)"
    table = tables["classification"]  # ss_m4_a1 has no row of the paper's Table 2: ours below, by its id
    assert cell(table, "method", table="Table 2", dataset="voc2007", our_method="ss_m4_a1") == "ss_m4_a1"
    assert cell(table, "ours", table="Table 2", dataset="voc2007", our_method="ss_m4_a1") == "91.0 (n=1)"
    assert set(table["our_method"]) - {NOT_APPLICABLE} == {"wildcat", "ss_m4_a1"}  # the paper's rows, then ours
    # The M ablation around ss_m4_a1 (ss_m1_a1 differs from it only in num_maps); no paper base,
    # so no paper number: Table 6 is the paper's ablation around its analysis base.
    m = tables["m_ablation"]
    assert m[["dataset", "base", "num_maps", "method", "paper", "ours"]].values.tolist() == [
        ["voc2007", "ss_m4_a1", "1", "ss_m1_a1", NO_PAPER_VALUE, "89.0 ± 1.0 (n=3)"],
        ["voc2007", "ss_m4_a1", "4", "ss_m4_a1", NO_PAPER_VALUE, "91.0 (n=1)"]]
    assert set(tables["alpha_ablation"]["base"]) == {"ss_m4_a1"}


def test_the_paper_layout_labels_members_by_scale_and_keeps_the_combination_out_of_ablations(tmp_path, paper):
    """config/paper.yaml's report block: each member of the multi-scale model evaluated on its own
    stands below the model, labelled by its scale; the combination, whose members differ in k and
    image size, is in no ablation (the paper's Table 6 is around ss_m1_a1)."""
    multi = {**DEFAULT, "backbone": "resnet101", "image_size_px": [224, 448], "kmax": [3, 20], "scales": [224, 448]}
    write_run(tmp_path, "voc2007", "wildcat", 0, {"map": 92.0}, multi, config="paper")
    for px, kmax, value in ((448, 20, 91.0), (224, 3, 85.0)):
        write_run(tmp_path, "voc2007", f"wildcat_s{px}", 0, {"map": value}, DEFAULT, config="paper",
                  backbone="resnet101", image_size_px=px, kmax=kmax, scales=[px])
    write_run(tmp_path, "voc2007", "ss_m1_a1", 0, {"map": 89.0}, ANALYSIS, config="paper")
    write_run(tmp_path, "voc2007", "ss_m4_a1", 0, {"map": 91.0}, ANALYSIS, config="paper", num_maps=4)
    runs = load_runs(tmp_path)
    layout = ReportLayout.from_workflow_config(REPO / "config" / "paper.yaml")
    tables = build_tables(runs, paper, "paper", layout)
    table = tables["classification"]
    ours = table[(table["dataset"] == "voc2007") & (table["our_method"] != NOT_APPLICABLE)]
    assert ours[["method", "our_method", "ours"]].values.tolist() == [
        ["WILDCAT", "wildcat", "92.0 (n=1)"],
        ["WILDCAT, single scale 224 px (member of the multi-scale model)", "wildcat_s224", "85.0 (n=1)"],
        ["WILDCAT, single scale 448 px (the official code's setting)", "wildcat_s448", "91.0 (n=1)"]]
    for name in ("m_ablation", "alpha_ablation"):
        assert set(tables[name]["base"]) == {"ss_m1_a1"}, name
        assert "wildcat" not in set(tables[name]["method"]), name
    m = tables["m_ablation"]
    assert cell(m, "ours", dataset="voc2007", num_maps="4") == "91.0 (n=1)"
    assert list(tables["methods"].columns) == ["dataset", "metric", "wildcat", "wildcat_s448", "m1"]
    assert report.unused_runs(runs, tables, "paper") == []


def test_empty_runs_give_not_run_everywhere(paper, tmp_path):
    tables = build_tables(load_runs(tmp_path / "none"), paper, "default", LAYOUT)
    for name in ("classification", "localization", "segmentation"):
        frame = tables[name]
        assert set(frame.loc[frame["our_method"] != NOT_APPLICABLE, "ours"]) == {NOT_RUN}
    assert tables["methods"].empty


# ------------------------------------------------------------------------------------------
# Writers


def test_write_tables_formats_and_byte_identical_regeneration(runs_dir, paper, tmp_path):
    runs = load_runs(runs_dir)
    first = write_tables(build_tables(runs, paper, "default", LAYOUT), tmp_path / "a")
    assert {p.name for p in first} == {f"{n}{s}" for n in TABLE_NAMES for s in (".md", ".csv", ".tex")}
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(p.name for p in first)  # no temp files
    # Regenerate from the same results, rows shuffled: same bytes, and rewriting in place too.
    shuffled = runs.sample(frac=1.0, random_state=0).reset_index(drop=True)
    second = write_tables(build_tables(shuffled, paper, "default", LAYOUT), tmp_path / "b")
    again = write_tables(build_tables(load_runs(runs_dir), paper, "default", LAYOUT), tmp_path / "a")
    for a, b, c in zip(first, second, again):
        assert a.read_bytes() == b.read_bytes() == c.read_bytes(), a.name
    md = (tmp_path / "a" / "methods.md").read_text(encoding="utf-8")
    assert md.startswith("# Our grid") and "| 82.0 ± 2.8 (n=2) |" in md and NOT_RUN in md
    tex = (tmp_path / "a" / "alpha_ablation.tex").read_text(encoding="utf-8")
    assert r"82.0 $\pm$ 2.8 (n=2)" in tex and r"$\sim$90.6" in tex and "---" in tex
    assert r"wildcat\_a0" in tex and r"\label{tab:alpha_ablation}" in tex
    back = pd.read_csv(tmp_path / "a" / "classification.csv", dtype=str, keep_default_na=False)
    assert back.equals(build_tables(runs, paper, "default", LAYOUT)["classification"].astype(str))


def test_write_figures(runs_dir, paper, tmp_path):
    written = write_figures(load_runs(runs_dir), paper, tmp_path / "fig", LAYOUT, config_name="default")
    names = sorted(p.name for p in written)
    assert names == ["alpha_synthetic.png", "alpha_voc2007.png", "methods_synthetic.png", "methods_voc2007.png",
                     "methods_voc2012.png"]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "fig").iterdir()) == names  # no temp files left


def test_write_figures_needs_a_config_when_several(runs_dir, paper, tmp_path):
    with pytest.raises(ValueError, match="config_name"):
        write_figures(load_runs(runs_dir), paper, tmp_path, LAYOUT)


# ------------------------------------------------------------------------------------------
# `wildcat report`: a whole report or an error, never a wrong or half report with exit status 0


def report_cli(runs: Path, out: Path, config: str = "default", *options: str) -> int:
    return main(["report", "--runs", str(runs), "--paper", str(PAPER_DIR), "--config-name", config,
                 "--layout", LAYOUT.to_json(), "--out", str(out), *options])


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes (not the marker Snakemake
    leaves in a directory output it made, which git ignores)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".snakemake_timestamp"}


@pytest.fixture()
def old_report(runs_dir: Path, tmp_path: Path) -> Path:
    """A good report of the fake runs in tmp_path/report."""
    out = tmp_path / "report"
    assert report_cli(runs_dir, out) == 0
    return out


def assert_one_line_error(err: str, *words: str) -> None:
    assert err.startswith("wildcat report: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize(("runs", "config", "words"), [
    ("runs", "defualt", ["'defualt'", "configs there: default, other"]),
    ("no_such_folder", "default", ["no_such_folder", "does not exist"]),
])
def test_report_of_no_runs_is_an_error_and_keeps_the_old_report(old_report, tmp_path, capsys, runs, config, words):
    before = snapshot(old_report)
    capsys.readouterr()
    assert report_cli(tmp_path / runs, old_report, config) == 2
    assert_one_line_error(capsys.readouterr().err, str(tmp_path / runs), *words)
    assert snapshot(old_report) == before


def test_interrupted_report_leaves_the_old_one_and_no_temporary_folder(old_report, runs_dir, tmp_path, monkeypatch):
    before = snapshot(old_report)
    write_run(runs_dir, "synthetic", "wildcat", 2, {"map": 90.0, "loc_map": 75.0}, DEFAULT)  # new tables

    def crash(figure: Any, path: Path) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(figures, "_save_png", crash)  # after the tables, before the figures
    with pytest.raises(RuntimeError, match="disk full"):
        report_cli(runs_dir, old_report)
    assert snapshot(old_report) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "runs"]


def test_report_replaces_the_old_folder_whole(old_report, runs_dir, tmp_path):
    assert (old_report / "figures" / "methods_voc2012.png").is_file()
    for path in (runs_dir / "default" / "voc2012").rglob("metrics.json"):
        path.unlink()
    assert report_cli(runs_dir, old_report) == 0
    assert not (old_report / "figures" / "methods_voc2012.png").exists()  # no stale figure beside the tables
    fresh = tmp_path / "fresh"
    assert report_cli(runs_dir, fresh) == 0
    assert snapshot(old_report) == snapshot(fresh)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh", "report", "runs"]


def test_report_refuses_to_replace_a_folder_of_other_files(runs_dir, tmp_path, capsys):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "todo.txt").write_text("keep me")
    assert report_cli(runs_dir, out) == 2
    assert_one_line_error(capsys.readouterr().err, "todo.txt")
    assert snapshot(out) == {"todo.txt": b"keep me"}


@pytest.mark.parametrize(("text", "words"), [
    ("{not json", ["not valid JSON"]),
    (json.dumps({"schema": 1, "config_name": "default", "dataset": "synthetic", "method": "wildcat", "seed": 0,
                 "settings": DEFAULT, "metrics": [80.0]}), ["'metrics' must be a JSON object"]),
    (json.dumps({"schema": 1, "config_name": "default", "dataset": "synthetic", "method": "wildcat", "seed": 0,
                 "settings": DEFAULT, "metrics": {"mAP": 80.0}}), ["unknown metric key 'mAP'"]),
])
def test_bad_metrics_json_is_a_one_line_cli_error(runs_dir, tmp_path, capsys, text, words):
    path = runs_dir / "default" / "synthetic" / "wildcat" / "seed0" / "metrics.json"
    path.write_text(text)
    assert report_cli(runs_dir, tmp_path / "report") == 2
    assert_one_line_error(capsys.readouterr().err, str(path), *words)
    assert not (tmp_path / "report").exists()
    with pytest.raises(ValueError):  # a ResultsFormatError is a ValueError too
        load_runs(runs_dir)


def test_a_copied_seed_is_refused_naming_both_files(runs_dir, tmp_path, capsys):
    seed0 = runs_dir / "default" / "synthetic" / "wildcat" / "seed0" / "metrics.json"
    seed7 = seed0.parents[1] / "seed7" / "metrics.json"
    seed7.parent.mkdir()
    seed7.write_text(json.dumps({**json.loads(seed0.read_text()), "seed": 7}))
    assert report_cli(runs_dir, tmp_path / "report") == 2
    assert_one_line_error(capsys.readouterr().err, str(seed0), str(seed7), "identical apart from")
    with pytest.raises(report.ResultsFormatError):
        load_runs(runs_dir)
    # Another seed with other metrics is a run of its own.
    seed7.write_text(json.dumps({**json.loads(seed0.read_text()), "seed": 7, "metrics": {"map": 81.0}}))
    assert len(load_runs(runs_dir)) == 33 + 1


def test_runs_in_no_table_are_named_on_stderr(runs_dir, paper, tmp_path, capsys):
    # decoy_a0: another image size than wildcat's, so in no ablation; wildcat_a0.7: the same
    # settings as its base wildcat, which the alpha ablation keeps instead. The other config's
    # gap is not part of this report.
    expected = ["default/synthetic/decoy_a0", "default/synthetic/wildcat_a0.7"]
    assert report_cli(runs_dir, tmp_path / "report") == 0
    lines = capsys.readouterr().err.splitlines()
    assert [line.split()[3] for line in lines] == expected
    assert all(line.startswith("wildcat report: note: ") and "in no table" in line for line in lines)
    runs = load_runs(runs_dir)
    assert report.unused_runs(runs, build_tables(runs, paper, "default", LAYOUT), "default") == expected


def test_a_stale_metrics_json_of_a_removed_method_is_not_reported(runs_dir, tmp_path, capsys):
    """gmp was removed from the config: its metrics.json is still in the folder, but the workflow
    lists only the config's files, and the report reads those alone."""
    declared = [p for p in sorted(runs_dir.rglob("metrics.json")) if p.parts[-3] != "gmp"]
    assert report_cli(runs_dir, tmp_path / "report", "default", "--metrics", *map(str, declared)) == 0
    assert "gmp" not in capsys.readouterr().err
    methods = pd.read_csv(tmp_path / "report" / "methods.csv", dtype=str, keep_default_na=False)
    assert set(methods["gmp"]) == {NOT_RUN}  # the stale file says 70.0
    assert cell(methods, "m1", dataset="synthetic", metric="map") == "75.0 (n=1)"
    assert not any("gmp" in p.read_text(encoding="utf-8") for p in (tmp_path / "report").glob("*_ablation.csv"))


@pytest.mark.parametrize(("layout", "words"), [
    ('{"methods": ["wildcat"], "bogus": 1}', ["report: unknown key 'bogus'", "allowed: methods"]),
    ('{"ablation_bases": ["wildcat"], "paper_ablation_base": "ss_m1_a1"}', ["'ss_m1_a1' is not one of"]),
    ('{"methods": "wildcat"}', ["report.methods: expected a list of method ids"]),
    ("{not json", ["not valid JSON"]),
])
def test_a_bad_layout_is_a_one_line_cli_error(runs_dir, tmp_path, capsys, layout, words):
    assert report_cli(runs_dir, tmp_path / "report", "default", "--layout", layout) == 2
    assert_one_line_error(capsys.readouterr().err, *words)
    assert not (tmp_path / "report").exists()


def test_the_default_layout_is_the_default_configs_and_rebuilds_the_committed_report(tmp_path, monkeypatch):
    """`wildcat report` without --layout, from the checkout, reads config/config.yaml's report
    block: the committed results give the committed reports/default, byte for byte."""
    monkeypatch.chdir(REPO)
    out = tmp_path / "default"
    assert main(["report", "--config-name", "default", "--out", str(out)]) == 0
    assert snapshot(out) == snapshot(REPO / "reports" / "default")


def test_a_run_of_another_recipe_never_stands_under_the_papers_ours(tmp_path):
    """A smoke run (1 epoch, cnn6, 48 px) of the paper's config name gets a row of its own that
    says what differs; the runs that follow config/paper.yaml's recipe get the paper row and a
    verdict against the paper's number (Table 5, VOC 2007, WILDCAT conv-pool: 89.0)."""
    from wildcat.engine.config import load_yaml, make_config
    from wildcat.grid import Grid
    from wildcat.report.recipe import PaperRecipes

    recipes = PaperRecipes(REPO / "config" / "paper.yaml")
    grid = Grid(load_yaml(REPO / "config" / "paper.yaml"))
    for seed, value in ((0, 88.0), (1, 89.5)):
        config = make_config(grid.settings("voc2007", "ss_m1_a1", seed)).to_dict()
        path = write_run(tmp_path, "voc2007", "ss_m1_a1", seed, {"map": value}, ANALYSIS, config="paper")
        record = json.loads(path.read_text())
        path.write_text(json.dumps({**record, "schema": 2, "provenance": {"config": config}}))
    smoke = {**make_config(grid.settings("voc2007", "ss_m1_a1", 2)).to_dict(),
             "epochs": 1, "backbone": "cnn6", "weights": None, "image_size_px": 48}
    path = write_run(tmp_path, "voc2007", "ss_m1_a1", 2, {"map": 95.0}, ANALYSIS, config="paper")
    path.write_text(json.dumps({**json.loads(path.read_text()), "schema": 2, "provenance": {"config": smoke}}))

    tables = build_tables(load_runs(tmp_path), load_paper(PAPER_DIR), "paper", LAYOUT, recipes, 2.0)
    table = tables["order_ablation"]
    rows = table[(table["dataset"] == "voc2007") & (table["our_method"] == "ss_m1_a1")]
    assert rows[["ours", "difference", "verdict"]].values.tolist() == [
        ["88.8 ± 1.1 (n=2)", "-0.2", "within ±2"], ["95.0 (n=1)", "—", "not the paper's recipe"]]
    assert rows["method"].iloc[1] == ("conv5 + conv + pooling (WILDCAT): our run of another recipe (backbone 'cnn6' vs "
                                      "'resnet101', weights None vs 'imagenet', image_size_px 48 vs 448, epochs 1 vs 20)")
    assert rows["paper"].tolist() == ["89.0", "—"]
    assert "within ±2 points of the paper's number" in table.attrs["note"]
    # The ablation tables too (Table 6 here): beside the paper's number only the runs of its
    # recipe; the smoke seed is an ablation of its own, its base and method saying so.
    m = tables["m_ablation"]
    m = m[(m["dataset"] == "voc2007") & (m["num_maps"] == "1")]
    assert m[["method", "paper", "ours"]].values.tolist() == [
        ["ss_m1_a1", "89.0", "88.8 ± 1.1 (n=2)"], ["ss_m1_a1", "—", "95.0 (n=1)"]]
    assert m["base"].tolist() == ["ss_m1_a1", "ss_m1_a1 (another recipe: backbone 'cnn6' vs 'resnet101', weights None vs "
                                  "'imagenet', image_size_px 48 vs 448, epochs 1 vs 20)"]


def test_our_own_rows_of_another_recipe_say_so(tmp_path):
    """A smoke config's own method ids on a paper dataset (no such method in config/paper.yaml)
    are held to the dataset's recipe, and our extra rows of such runs say what differs (the bug:
    they counted as the paper's recipe and read like a reproduction, labels aside)."""
    from wildcat.engine.config import load_yaml, make_config
    from wildcat.grid import Grid
    from wildcat.report.recipe import PaperRecipes

    recipes = PaperRecipes(REPO / "config" / "paper.yaml")
    grid = Grid(load_yaml(REPO / "config" / "paper.yaml"))
    smoke = {**make_config(grid.settings("voc2007", "ss_m1_a1", 0)).to_dict(),
             "epochs": 1, "backbone": "cnn6", "weights": None, "image_size_px": 48}
    path = write_run(tmp_path, "voc2007", "tiny_m1", 0, {"map": 50.0}, {**ANALYSIS, "num_maps": 1}, config="paper")
    path.write_text(json.dumps({**json.loads(path.read_text()), "schema": 2, "provenance": {"config": smoke}}))
    assert recipes.recipe("voc2007", "tiny_m1", 0) == recipes.recipe("voc2007", "ss_m1_a1", 0)
    layout = dataclasses.replace(LAYOUT, extra_rows=("tiny_m1",))
    table = build_tables(load_runs(tmp_path), load_paper(PAPER_DIR), "paper", layout, recipes, 2.0)["classification"]
    row = table[table["our_method"] == "tiny_m1"]
    assert row[["method", "ours", "verdict"]].values.tolist() == [[
        "tiny_m1 (another recipe: backbone 'cnn6' vs 'resnet101', weights None vs 'imagenet', image_size_px 48 vs 448, "
        "epochs 1 vs 20)", "50.0 (n=1)", "—"]]


def test_the_recipe_differences_of_a_combination_name_its_scales_and_its_other_keys():
    from wildcat.report.recipe import recipe_differences

    member = {"dataset": "voc2007", "backbone": "resnet101", "weights": "imagenet", "epochs": 20, "train_split": "trainval"}
    paper = json.dumps({"members": [{**member, "image_size_px": 448}, {**member, "image_size_px": 896}]})
    ours = json.dumps({"members": [{**member, "image_size_px": px, "backbone": "cnn6", "epochs": 1} for px in (32, 48)]})
    assert recipe_differences(ours, paper) == "scales [32, 48] vs [448, 896], backbone 'cnn6' vs 'resnet101', epochs 1 vs 20"
    same_scales = json.dumps({"members": [{**member, "image_size_px": px, "epochs": 1} for px in (448, 896)]})
    assert recipe_differences(same_scales, paper) == "epochs 1 vs 20"


def test_claims_are_resolved_only_where_the_difference_clears_the_seeds_noise(tmp_path, paper):
    """The claims table applies `wildcat compare`'s rule to two methods of one grid: hand-computed
    Welch tolerances; one seed is inconclusive; a method that did not run is `not run`."""
    from scipy import stats

    seeds = {"a": [80.0, 82.0, 84.0], "b": [70.0, 71.0, 72.0], "c": [70.0, 90.0, 80.0], "d": [60.0]}
    for method, values in seeds.items():
        for seed, value in enumerate(values):
            write_run(tmp_path, "synthetic", method, seed, {"map": value}, DEFAULT)
    layout = ReportLayout(claims=(("a", "b"), ("c", "b"), ("d", "b"), ("a", "e")), labels={"a": "A", "b": "B"})
    claims = build_tables(load_runs(tmp_path), paper, "default", layout)["claims"]
    rows = {row["claim"]: row for row in claims.to_dict("records")}
    # a - b = 11; se^2 = 4/3 + 1/3; Welch df = (5/3)^2 / ((4/3)^2 / 2 + (1/3)^2 / 2) = 50/17.
    tolerance = stats.t.ppf(0.975, 50 / 17) * (5 / 3) ** 0.5
    assert rows["A vs B"] == {"dataset": "synthetic", "metric": "map", "claim": "A vs B", "a": "82.0 ± 2.0 (n=3)",
                              "b": "71.0 ± 1.0 (n=3)", "difference": "+11.0", "tolerance": f"±{tolerance:.1f}",
                              "verdict": "A > B"}
    # c - b = 9 with c's std of 10: se^2 = 100/3 + 1/3, well above 9 / t.
    assert rows["c vs B"]["difference"] == "+9.0" and rows["c vs B"]["verdict"] == "not resolved"
    assert rows["d vs B"]["tolerance"] == "—" and rows["d vs B"]["verdict"] == "inconclusive (under 2 seeds)"
    assert rows["A vs e"]["b"] == NOT_RUN and rows["A vs e"]["verdict"] == NOT_RUN
    with pytest.raises(ConfigError, match="report.claims"):
        ReportLayout(claims=(("a",),))
