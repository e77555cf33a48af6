"""``wildcat compare``: verdicts on constructed results trees (wildcat.report.compare)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from scipy import stats

from wildcat.cli import main
from wildcat.report.compare import FLOOR, compare, exit_status

SETTINGS = {"backbone": "cnn6", "image_size_px": 96, "num_maps": 4, "kmax": 0.1, "kmin": None, "alpha": 0.7,
            "order": "conv-pool", "scales": [96]}


def _config(seed: int, **changes) -> dict:
    return {"dataset": "synthetic", "epochs": 8, "lr": 0.003, "alpha": 0.7, "seed": seed, "workers": 0,
            "device": "cpu", **changes}


def write_tree(root: Path, values: dict[tuple[str, str], list[float]], config_changes: dict | None = None,
               cpu: str = "CPU A", test_sha: str = "abc") -> Path:
    """A config folder ``root/default`` with one metrics.json per (dataset, method, seed): mAP = value."""
    folder = root / "default"
    for (dataset, method), maps in values.items():
        for seed, value in enumerate(maps):
            path = folder / dataset / method / f"seed{seed}" / "metrics.json"
            path.parent.mkdir(parents=True)
            record = {
                "schema": 2, "config_name": "default", "dataset": dataset, "method": method, "seed": seed,
                "settings": SETTINGS, "metrics": {"map": value, "loc_map": value / 2}, "protocol": {},
                "provenance": {
                    "config": _config(seed, **(config_changes or {})),
                    "training": {"device": {"name": cpu, "threads": 2}},
                    "evaluation": {"device": {"name": cpu, "threads": 2}, "test_split_sha256": test_sha},
                },
            }
            path.write_text(json.dumps(record))
    return folder


GRID = {("synthetic", "wildcat"): [70.0, 72.0, 74.0], ("synthetic", "gap"): [50.0, 51.0, 55.0]}


def test_identical_trees_are_all_reproduced(tmp_path):
    rows, machine = compare(write_tree(tmp_path / "a", GRID), write_tree(tmp_path / "b", GRID))
    assert [(r.method, r.metric, r.verdict) for r in rows] == [
        ("gap", "map", "reproduced"), ("gap", "loc_map", "reproduced"),
        ("wildcat", "map", "reproduced"), ("wildcat", "loc_map", "reproduced")]
    assert all(r.difference == 0 for r in rows) and machine == [] and exit_status(rows) == 0


def test_the_tolerance_is_welchs_t_test_hand_computed(tmp_path):
    candidate = {**GRID, ("synthetic", "wildcat"): [71.0, 75.0, 76.0]}
    rows, _ = compare(write_tree(tmp_path / "a", GRID), write_tree(tmp_path / "b", candidate))
    (row,) = [r for r in rows if r.method == "wildcat" and r.metric == "map"]
    # reference 70, 72, 74: mean 72, variance 4; candidate 71, 75, 76: mean 74, variance 7.
    se2 = 4 / 3 + 7 / 3
    df = se2**2 / ((4 / 3) ** 2 / 2 + (7 / 3) ** 2 / 2)
    assert row.difference == pytest.approx(2.0)
    assert row.tolerance == pytest.approx(stats.t.ppf(0.975, df) * math.sqrt(se2))
    assert row.verdict == "reproduced"  # 2 points, well inside a tolerance of about 6.6
    # The same as scipy's Welch test: not significant at 5%.
    assert stats.ttest_ind([71.0, 75.0, 76.0], [70.0, 72.0, 74.0], equal_var=False).pvalue > 0.05


def test_a_shift_far_beyond_the_spread_differs_and_exits_1(tmp_path, capsys):
    candidate = {**GRID, ("synthetic", "gap"): [80.0, 81.0, 85.0]}
    reference, fresh = write_tree(tmp_path / "a", GRID), write_tree(tmp_path / "b", candidate)
    rows, _ = compare(reference, fresh)
    verdicts = {(r.method, r.metric): r.verdict for r in rows}
    assert verdicts == {("gap", "map"): "differs", ("gap", "loc_map"): "differs",
                        ("wildcat", "map"): "reproduced", ("wildcat", "loc_map"): "reproduced"}
    assert main(["compare", str(reference), str(fresh), "--json", str(tmp_path / "out.json")]) == 1
    out = capsys.readouterr().out
    assert "| synthetic | gap | map | 52.0 ± 2.6 (n=3) | 82.0 ± 2.6 (n=3) | +30.0 |" in out and "differs" in out
    assert json.loads((tmp_path / "out.json").read_text())["rows"][0]["verdict"] == "differs"


def test_equal_seeds_differ_only_beyond_the_floor(tmp_path):
    reference = {("synthetic", "wildcat"): [70.0, 70.0]}
    close, far = {("synthetic", "wildcat"): [70.5, 70.5]}, {("synthetic", "wildcat"): [71.5, 71.5]}
    ref = write_tree(tmp_path / "a", reference)
    rows_close, _ = compare(ref, write_tree(tmp_path / "b", close))
    rows_far, _ = compare(ref, write_tree(tmp_path / "c", far))
    assert rows_close[0].tolerance == FLOOR and rows_close[0].verdict == "reproduced"
    assert rows_far[0].verdict == "differs"


def test_one_seed_is_inconclusive(tmp_path):
    one = {("synthetic", "wildcat"): [70.0]}
    rows, _ = compare(write_tree(tmp_path / "a", one), write_tree(tmp_path / "b", one))
    assert {r.verdict for r in rows} == {"inconclusive"} and exit_status(rows) == 1


def test_a_settings_mismatch_is_not_comparable_and_says_what_differs(tmp_path):
    rows, _ = compare(write_tree(tmp_path / "a", GRID), write_tree(tmp_path / "b", GRID, {"epochs": 4}))
    assert {r.verdict for r in rows} == {"not comparable"}
    assert rows[0].why == "epochs: 8 vs 4"


def test_another_test_split_is_not_comparable(tmp_path):
    rows, _ = compare(write_tree(tmp_path / "a", GRID), write_tree(tmp_path / "b", GRID, test_sha="other"))
    assert {r.verdict for r in rows} == {"not comparable"} and "test split" in rows[0].why


def test_machine_differences_are_shown_not_counted(tmp_path, capsys):
    reference = write_tree(tmp_path / "a", GRID)
    candidate = write_tree(tmp_path / "b", GRID, {"workers": 4, "device": "auto"}, cpu="CPU B")
    rows, machine = compare(reference, candidate)
    assert {r.verdict for r in rows} == {"reproduced"}
    assert "training device name: CPU A (reference) vs CPU B (candidate)" in machine
    assert main(["compare", str(reference), str(candidate)]) == 0
    assert "Expected differences between the machines" in capsys.readouterr().out


def test_a_missing_method_is_missing(tmp_path):
    candidate = {("synthetic", "wildcat"): GRID[("synthetic", "wildcat")]}
    rows, _ = compare(write_tree(tmp_path / "a", GRID), write_tree(tmp_path / "b", candidate))
    assert {(r.method, r.verdict) for r in rows} == {("gap", "missing"), ("wildcat", "reproduced")}


def test_a_folder_without_results_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(write_tree(tmp_path / "a", GRID)), str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wildcat compare: error: no <dataset>/<method>/seed<k>/metrics.json under") and err.count("\n") == 1


def test_results_without_provenance_are_compared_on_their_settings(tmp_path):
    reference = write_tree(tmp_path / "a", GRID)
    for path in reference.glob("*/*/seed*/metrics.json"):  # as written before provenance (schema 1)
        record = json.loads(path.read_text())
        del record["provenance"]
        path.write_text(json.dumps({**record, "schema": 1}))
    rows, machine = compare(reference, write_tree(tmp_path / "b", GRID, {"epochs": 4}))
    assert {r.verdict for r in rows} == {"reproduced"}  # the settings agree; the epochs were not recorded
    assert "training device name: not recorded (reference) vs CPU A (candidate)" in machine
