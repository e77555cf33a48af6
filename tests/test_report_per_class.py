"""Tests for the per-class negative-evidence table (wildcat.report.per_class) and the class design
that `wildcat evaluate` records for it (wildcat.data.voc.dataset_design).

Fake run trees are written in tmp_path (test_report's writer, per-class AP added); the expected
cells and Welch tolerances are worked out by hand in the comments.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from wildcat.cli import main
from wildcat.data import DatasetFormatError, get_dataset
from wildcat.data.synthetic import class_design
from wildcat.data.voc import dataset_design
from wildcat.report import ReportLayout, ResultsFormatError, build_tables, load_paper, load_runs
from wildcat.report.per_class import class_roles, load_per_class, per_class_table

from helpers import ROOT, TINY_SPEC, tiny_config

PAPER_DIR = ROOT / "results" / "paper"
DEFAULT = {"backbone": "cnn6", "image_size_px": 96, "num_maps": 4, "kmax": 0.1, "kmin": None, "alpha": 0.7,
           "order": "conv-pool", "scales": [96]}
LAYOUT = ReportLayout(ablation_bases=("wildcat",), labels={"wildcat": "WILDCAT"})
# alfa / bravo: a shared pair (the base of bravo is the emblem of alfa); charlie, delta: controls.
DESIGN = {"classes": ["alfa", "bravo", "charlie", "delta"], "shared_pairs": [{"emblem_of": "alfa", "base_of": "bravo"}]}
# Per-class AP of each seed: (method, alpha) -> class -> seeds.
AP = {
    ("wildcat_a0", 0.0): {"alfa": [50, 52], "bravo": [60, 60], "charlie": [70, 74], "delta": [80, 80]},
    ("wildcat", 0.7): {"alfa": [60, 62], "bravo": [59, 61], "charlie": [71, 75], "delta": [70, 70]},
    ("wildcat_a1", 1.0): {"alfa": [55], "bravo": [65], "charlie": [70], "delta": [85]},
}


def write_per_class_run(root: Path, dataset: str, method: str, seed: int, per_class: dict[str, float | None],
                        design: dict | None, **settings) -> Path:
    """A metrics.json with ``per_class.map`` and ``dataset_design``, as `wildcat evaluate` writes it
    (docs/contracts.md; mAP the mean of the defined APs)."""
    values = [v for v in per_class.values() if v is not None]
    record = {"schema": 1, "config_name": "default", "dataset": dataset, "method": method, "seed": seed,
              "settings": {**DEFAULT, **settings}, "metrics": {"map": sum(values) / len(values)},
              "per_class": {"map": per_class}, "protocol": {"ap_mode": "voc07"}, "num_test_images": 10,
              "dataset_design": design}
    path = root / "default" / dataset / method / f"seed{seed}" / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def write_ablation(root: Path, ap=AP, dataset: str = "synthetic", design: dict | None = DESIGN) -> Path:
    for (method, alpha), classes in ap.items():
        for seed in range(len(next(iter(classes.values())))):
            write_per_class_run(root, dataset, method, seed, {name: values[seed] for name, values in classes.items()},
                                design, alpha=alpha)
    return root


def table_of(root: Path, layout: ReportLayout = LAYOUT) -> pd.DataFrame:
    runs = load_runs(root)
    return per_class_table(runs, load_per_class(runs, root), layout)


def welch_tolerance(var_a: float, var_b: float, n: int = 2) -> float:
    se2 = var_a / n + var_b / n
    df = se2**2 / ((var_a / n) ** 2 / (n - 1) + (var_b / n) ** 2 / (n - 1))
    return max(1.0, stats.t.ppf(0.975, df) * se2**0.5)


def test_class_roles_set_the_shared_pairs_apart_from_the_controls():
    design = class_design(8, 3).to_dict()  # the default: (alfa, bravo), (charlie, delta), (echo, foxtrot)
    assert class_roles(design) == [
        ("alfa", "emblem shared", "emblem = base of bravo"), ("charlie", "emblem shared", "emblem = base of delta"),
        ("echo", "emblem shared", "emblem = base of foxtrot"), ("bravo", "base shared", "base = emblem of alfa"),
        ("delta", "base shared", "base = emblem of charlie"), ("foxtrot", "base shared", "base = emblem of echo"),
        ("golf", "control", "no shared part"), ("hotel", "control", "no shared part")]


def test_per_class_cells_are_the_hand_computed_means_differences_and_verdicts(tmp_path):
    table = table_of(write_ablation(tmp_path))
    assert list(table.columns) == [
        "dataset", "base", "class", "group", "role", "AP, alpha = 0", "AP, alpha = 0.7", "AP, alpha = 1",
        "alpha 0.7 - 0", "verdict, alpha 0.7 vs 0", "alpha 1 - 0", "verdict, alpha 1 vs 0"]
    rows = {row["class"]: row for row in table.to_dict("records")}
    assert list(rows) == ["alfa", "bravo", "charlie", "delta"]  # the pair's classes first, then the controls
    assert [rows[c]["group"] for c in rows] == ["emblem shared", "base shared", "control", "control"]
    assert rows["alfa"]["role"] == "emblem = base of bravo" and rows["bravo"]["role"] == "base = emblem of alfa"
    # alfa: 51 ± sqrt(2) against 61 ± sqrt(2): +10, se^2 = 2/2 + 2/2, Welch df 2 -> tolerance 6.1: raised.
    assert rows["alfa"]["AP, alpha = 0"] == "51.0 ± 1.4 (n=2)" and rows["alfa"]["AP, alpha = 0.7"] == "61.0 ± 1.4 (n=2)"
    assert rows["alfa"]["alpha 0.7 - 0"] == f"+10.0 (tol. {welch_tolerance(2, 2):.1f})" == "+10.0 (tol. 6.1)"
    assert rows["alfa"]["verdict, alpha 0.7 vs 0"] == "raised"
    # bravo: 60 against 60 ± sqrt(2): +0, df 1, tolerance 12.7: not resolved.
    assert rows["bravo"]["alpha 0.7 - 0"] == f"+0.0 (tol. {welch_tolerance(0, 2):.1f})"
    assert rows["bravo"]["verdict, alpha 0.7 vs 0"] == "not resolved"
    # charlie: 72 ± 2.8 against 73 ± 2.8: +1, tolerance t(2) x sqrt(8) = 12.2: not resolved.
    assert rows["charlie"]["alpha 0.7 - 0"] == "+1.0 (tol. 12.2)" and rows["charlie"]["verdict, alpha 0.7 vs 0"] == "not resolved"
    # delta: 80 against 70, no spread: the tolerance is the 1-point floor: lowered.
    assert rows["delta"]["alpha 0.7 - 0"] == "-10.0 (tol. 1.0)" and rows["delta"]["verdict, alpha 0.7 vs 0"] == "lowered"
    # alpha 1 has one seed: a difference, no verdict.
    assert rows["alfa"]["AP, alpha = 1"] == "55.0 (n=1)" and rows["alfa"]["alpha 1 - 0"] == "+4.0"
    assert {row["verdict, alpha 1 vs 0"] for row in rows.values()} == {"inconclusive (under 2 seeds)"}


def test_the_sentence_under_the_table_is_computed_from_the_numbers(tmp_path):
    note = table_of(write_ablation(tmp_path / "a")).attrs["note"]
    assert note.startswith(
        "synthetic, around WILDCAT: alpha = 0.7 gives a higher mean AP than alpha = 0 on 1 of 1 class whose emblem is "
        "another class's base (where negative evidence should help), on 0 of 1 class whose base is another class's "
        "emblem and on 1 of 2 controls (no shared part). The differences that clear the seeds' noise: alfa +10.0 "
        "(raised), delta -10.0 (lowered).\n\n"
        "synthetic, around WILDCAT: alpha = 1 gives a higher mean AP than alpha = 0 on 1 of 1 class whose emblem is "
        "another class's base (where negative evidence should help), on 1 of 1 class whose base is another class's "
        "emblem and on 1 of 2 controls (no shared part). With under 2 seeds a side, no difference can be judged "
        "against the seeds' noise.\n\n")
    # Other numbers, other sentence: delta now gains 10 points, alfa's gain drowns in its seeds' spread.
    ap = {key: dict(classes) for key, classes in AP.items()}
    ap[("wildcat", 0.7)].update(alfa=[40, 80], delta=[90, 90])
    changed = table_of(write_ablation(tmp_path / "b", ap)).attrs["note"]
    assert changed.startswith(
        "synthetic, around WILDCAT: alpha = 0.7 gives a higher mean AP than alpha = 0 on 1 of 1 class whose emblem is "
        "another class's base (where negative evidence should help), on 0 of 1 class whose base is another class's "
        "emblem and on 2 of 2 controls (no shared part). The differences that clear the seeds' noise: delta +10.0 "
        "(raised).\n\n")
    ap[("wildcat", 0.7)].update(delta=[80, 80])
    quiet = table_of(write_ablation(tmp_path / "c", ap)).attrs["note"]
    assert "on 1 of 2 controls (no shared part). No difference clears the seeds' noise." in quiet


def test_a_dataset_without_a_design_has_no_rows_and_is_not_an_error(tmp_path, paper):
    write_ablation(tmp_path)
    for seed in (0, 1):  # VOC 2007's alpha ablation around wildcat: no design recorded (a real dataset)
        write_per_class_run(tmp_path, "voc2007", "wildcat", seed, {"cat": 90.0 + seed}, None)
        write_per_class_run(tmp_path, "voc2007", "wildcat_a0", seed, {"cat": 80.0 + seed}, None, alpha=0.0)
    table = table_of(tmp_path)
    assert set(table["dataset"]) == {"synthetic"} and len(table) == 4
    alone = tmp_path / "voc_only"
    shutil.copytree(tmp_path / "default" / "voc2007", alone / "default" / "voc2007")
    empty = table_of(alone)
    assert empty.empty and empty.attrs["note"].startswith("Not available: no dataset of this config records a class design")
    # build_tables without per-class results (the writer's runs_dir=None): the same empty table.
    tables = build_tables(load_runs(tmp_path), paper, "default", LAYOUT)
    assert tables["per_class"].empty and tables["per_class"].attrs["title"].startswith("Per-class AP, alpha = 0 vs")


def test_only_the_ablations_runs_are_read_and_an_undefined_ap_is_left_out(tmp_path):
    write_ablation(tmp_path)
    # alpha 0 at another image size: not in the ablation (its settings differ beyond alpha).
    write_per_class_run(tmp_path, "synthetic", "decoy_a0", 0, dict.fromkeys(DESIGN["classes"], 1.0), DESIGN,
                        alpha=0.0, image_size_px=64)
    # bravo has no positive test image in wildcat's seed 1 (AP null): its mean is seed 0's alone.
    path = tmp_path / "default/synthetic/wildcat/seed1/metrics.json"
    record = json.loads(path.read_text())
    record["per_class"]["map"]["bravo"] = None
    path.write_text(json.dumps(record))
    rows = {row["class"]: row for row in table_of(tmp_path).to_dict("records")}
    assert rows["alfa"]["AP, alpha = 0"] == "51.0 ± 1.4 (n=2)"
    assert rows["bravo"]["AP, alpha = 0.7"] == "59.0 (n=1)" and rows["bravo"]["verdict, alpha 0.7 vs 0"].startswith("inconclusive")


@pytest.fixture(scope="module")
def paper() -> pd.DataFrame:
    return load_paper(PAPER_DIR)


@pytest.mark.parametrize(("design", "words"), [
    ({"classes": ["alfa"], "shared_pairs": [{"emblem_of": "alfa", "base_of": "zulu"}]}, "\"dataset_design\" must hold"),
    ({"shared_pairs": []}, "\"dataset_design\" must hold"),
])
def test_a_malformed_design_is_a_results_error(tmp_path, design, words):
    write_per_class_run(tmp_path, "synthetic", "wildcat", 0, {"alfa": 1.0}, design)
    with pytest.raises(ResultsFormatError, match=words):
        load_per_class(load_runs(tmp_path), tmp_path)


def test_runs_of_one_dataset_with_different_designs_are_refused(tmp_path):
    write_per_class_run(tmp_path, "synthetic", "wildcat", 0, {"alfa": 1.0}, DESIGN)
    write_per_class_run(tmp_path, "synthetic", "wildcat", 1, {"alfa": 2.0}, {**DESIGN, "shared_pairs": []})
    with pytest.raises(ResultsFormatError, match="record different class designs of synthetic"):
        load_per_class(load_runs(tmp_path), tmp_path)


def test_wildcat_report_writes_the_per_class_table_with_its_sentence(tmp_path):
    write_ablation(tmp_path / "runs")
    out = tmp_path / "report"
    assert main(["report", "--runs", str(tmp_path / "runs"), "--paper", str(PAPER_DIR), "--config-name", "default",
                 "--layout", LAYOUT.to_json(), "--out", str(out)]) == 0
    md = (out / "per_class.md").read_text(encoding="utf-8")
    assert "| synthetic | wildcat | alfa    | emblem shared | emblem = base of bravo |" in md
    assert "The differences that clear the seeds' noise: alfa +10.0 (raised), delta -10.0 (lowered)." in md
    back = pd.read_csv(out / "per_class.csv", dtype=str, keep_default_na=False)
    assert back["class"].tolist() == ["alfa", "bravo", "charlie", "delta"]
    assert back["verdict, alpha 0.7 vs 0"].tolist() == ["raised", "not resolved", "not resolved", "lowered"]
    assert r"\label{tab:per_class}" in (out / "per_class.tex").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------
# The design recorded by `wildcat evaluate`


def test_dataset_design_reads_the_synthetic_trees_design(tiny_data_root, tmp_path):
    test_split = get_dataset("synthetic", tiny_data_root, "test")
    design = dataset_design(test_split)
    assert design == class_design(TINY_SPEC.num_classes, TINY_SPEC.num_shared_pairs).to_dict()
    assert design["shared_pairs"] == [{"emblem_of": "alfa", "base_of": "bravo"}]
    assert dataset_design(object()) is None  # a dataset of another layout (COCO, the scene sets)
    copy = tmp_path / "VOCdevkit" / "VOCsynthetic"
    shutil.copytree(test_split.voc_dir, copy)
    (copy / "synthetic.json").write_text(json.dumps({"design": {"classes": []}}))
    with pytest.raises(DatasetFormatError, match="no class design with a list of shared_pairs.*make-synthetic"):
        dataset_design(get_dataset("synthetic", tmp_path, "test"))
    (copy / "synthetic.json").unlink()  # a VOC tree not written by the generator: no design
    assert dataset_design(get_dataset("synthetic", tmp_path, "test")) is None


@pytest.mark.slow
def test_evaluate_records_the_design_of_the_test_split(tiny_data_root, tmp_path):
    from wildcat.engine.train import train
    from wildcat.eval.evaluate import evaluate

    run = tmp_path / "run"
    train(tiny_config(tiny_data_root, epochs=1), run, progress=False)
    document = evaluate(run, tmp_path / "metrics.json", progress=False)
    written = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert written["dataset_design"] == document["dataset_design"]
    assert written["dataset_design"]["shared_pairs"] == [{"emblem_of": "alfa", "base_of": "bravo"}]
    assert written["dataset_design"]["classes"] == list(written["per_class"]["map"])

