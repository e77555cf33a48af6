"""Tests for the report's parts drawn from maps.npz: the modality measure and table
(wildcat.report.modalities) and the gallery (wildcat.report.gallery), from hand-built records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import wildcat.report.gallery as gallery_module
import wildcat.report.modalities as modalities_module
from wildcat.cli import main
from wildcat.eval.maps_record import MAPS_FILE, write_maps
from wildcat.report import ReportLayout
from wildcat.report.gallery import gallery_figures
from wildcat.report.modalities import MEAN_ROW, modalities_figures, modalities_table, specialisation

from helpers.maps import CLASSES, OBJECTS_PER_GROUP, fake_maps_record

REPO = Path(__file__).resolve().parents[1]
LAYOUT = ReportLayout(methods=("wildcat", "m1"), labels={"wildcat": "WILDCAT", "m1": "M = 1"})


def test_nmi_is_0_for_one_map_1_for_a_map_per_modality_and_undefined_for_one_modality():
    modality = np.array([0, 0, 1, 1, 0, 1])
    one_map = np.random.default_rng(0).normal(size=(6, 1))
    assert specialisation(one_map, modality) == 0.0  # one map always wins
    perfect = np.eye(2)[modality] * 3.0 - 1.0  # map m peaks on modality m
    assert specialisation(perfect, modality) == pytest.approx(1.0)
    assert specialisation(perfect[:, ::-1], modality) == pytest.approx(1.0)  # the maps' order does not matter
    assert math.isnan(specialisation(perfect[:2], modality[:2]))  # one modality only
    # modality 0 0 1 1, winner 0 0 0 1: MI = 0.5 ln(4/3) + 0.25 ln(2/3) + 0.25 ln 2 = 0.215762 nats,
    # H(modality) = ln 2, H(winner) = -(0.75 ln 0.75 + 0.25 ln 0.25) = 0.562335: NMI = MI / mean = 0.343711.
    partial = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert specialisation(partial, np.array([0, 0, 1, 1])) == pytest.approx(0.343711, abs=1e-6)


def test_the_chance_level_is_the_score_with_the_modalities_shuffled():
    """Perfectly specialised maps score 1, but the same winners against shuffled modalities score
    well below 1 and above 0 (12 objects: NMI of unrelated labels is not 0 on finitely many)."""
    record = fake_maps_record(2)
    assert modalities_module.class_specialisation(record).tolist() == pytest.approx([1.0, 1.0])
    chance = modalities_module.chance_specialisation(record, shuffles=200)
    assert ((chance > 0.02) & (chance < 0.5)).all()
    # By hand for 6 objects, 3 per modality, winners = modality: a shuffle keeps k of the 3
    # singles among the first 3 with P(k) = C(3,k)C(3,3-k)/20; NMI(k) is 1 for k in {0, 3} and
    # 0.0817 for k in {1, 2} (MI = 2 (k/6) ln(2k/3) + ..., H = ln 2 each): E = 0.1 + 0.9 * 0.0817.
    expected = 0.1 * 1.0 + 0.9 * specialisation(np.eye(2)[[0, 0, 1, 1, 1, 0]], np.array([0, 0, 0, 1, 1, 1]))
    assert chance.mean() == pytest.approx(expected, abs=0.05)
    assert modalities_module.chance_specialisation(fake_maps_record(1)).tolist() == [0.0, 0.0]


def runs_maps(**overrides):
    """WILDCAT (M = 2) seeds 0 and 1, the maps swapped in seed 1, and M = 1 seed 0, on synthetic."""
    return {("default", "synthetic", "wildcat", 0): fake_maps_record(2, **overrides),
            ("default", "synthetic", "wildcat", 1): fake_maps_record(2, swap_maps=True, **overrides),
            ("default", "synthetic", "m1", 0): fake_maps_record(1, **overrides),
            ("other", "synthetic", "wildcat", 0): fake_maps_record(2, specialised=False, **overrides)}


def row(frame: pd.DataFrame, method: str, name: str) -> pd.Series:
    hits = frame[(frame["method"] == method) & (frame["class"] == name)]
    assert len(hits) == 1
    return hits.iloc[0]


def test_modalities_table():
    table = modalities_table(runs_maps(), "default", LAYOUT)
    assert list(table.columns) == ["dataset", "method", "num_maps", "class", "objects", "nmi_trained", "nmi_trained_seeds",
                                   "nmi_chance", "nmi_before_training", "nmi_before_training_seeds",
                                   "mean_peaks_single", "mean_peaks_pair"]
    # M = 1: the mean row only (every class is 0 by construction).
    assert table["class"].tolist() == [*CLASSES, MEAN_ROW, MEAN_ROW] and set(table["dataset"]) == {"synthetic"}
    wildcat = row(table, "WILDCAT", "alfa")
    assert wildcat["num_maps"] == "2" and wildcat["objects"] == f"single {OBJECTS_PER_GROUP}, pair {OBJECTS_PER_GROUP}"
    # Each modality has its map in both seeds (other maps in seed 1): 100; before training map 0 always wins: 0.
    assert wildcat["nmi_trained"] == "100.0 ± 0.0 (n=2)"
    assert wildcat["nmi_trained_seeds"] == "seed 0: 100.0, seed 1: 100.0"
    assert wildcat["nmi_before_training"] == "0.0 ± 0.0 (n=2)"
    # Seed 0: map 1 at 2 on singles, map 2 at 2 on pairs.
    assert (wildcat["mean_peaks_single"], wildcat["mean_peaks_pair"]) == ("seed 0: 2.00 / 0.00", "seed 0: 0.00 / 2.00")
    mean = row(table, "WILDCAT", MEAN_ROW)
    assert mean["nmi_trained"] == "100.0 ± 0.0 (n=2)" and mean["objects"] == f"{4 * OBJECTS_PER_GROUP} in all"
    assert mean["mean_peaks_single"] == "—"
    one = row(table, "M = 1", MEAN_ROW)  # the sanity check: one map, NMI 0 by construction
    assert (one["nmi_trained"], one["nmi_chance"], one["nmi_before_training"]) == ("0.0 (n=1)", "0.0 (n=1)", "0.0 (n=1)")
    assert table.attrs["note"].endswith(modalities_module.NOTE)


def test_the_note_says_whether_the_score_clears_its_chance_level():
    """Computed from the numbers: specialised maps in both seeds clear the chance level; maps
    where map 0 always wins score 0 against a chance level of 0: nothing shown (M = 1 gets no
    sentence, its 0 is by construction)."""
    note = modalities_table(runs_maps(), "default", LAYOUT).attrs["note"]
    (sentence,) = [line for line in note.split("\n\n") if line.startswith("synthetic, ")]
    assert sentence.startswith("synthetic, WILDCAT: mean NMI x 100 over the classes 100.0 ± 0.0 (n=2) against its chance")
    assert "(above it in 2 of 2 seeds)" in sentence and "the maps specialise beyond chance" in sentence
    flat = {("default", "synthetic", "wildcat", seed): fake_maps_record(2, specialised=False) for seed in (0, 1)}
    other = modalities_table(flat, "default", LAYOUT).attrs["note"]
    assert ("against its chance level 0.0 ± 0.0 (n=2) (above it in 0 of 2 seeds): +0.0, tolerance ±1.0; the "
            "difference does not clear the seeds' noise") in other


def test_no_modality_rows_without_labels_or_maps():
    assert modalities_table(runs_maps(labelled=False), "default", LAYOUT).empty
    assert modalities_table({}, "default", LAYOUT).empty


def catch_figures(monkeypatch, module):
    """The figures ``module`` saves, with their axes counted before saving."""
    caught = []
    save = module._save_png

    def counting(figure, path):
        caught.append((path.name, len(figure.axes)))
        save(figure, path)

    monkeypatch.setattr(module, "_save_png", counting)
    return caught


@pytest.mark.slow
def test_gallery_figure_has_a_row_per_method_and_image(monkeypatch, tmp_path):
    caught = catch_figures(monkeypatch, gallery_module)
    written = gallery_figures(runs_maps(), "default", LAYOUT, tmp_path)
    assert [p.name for p in written] == ["gallery_synthetic.png"]
    # 2 images x 2 methods x (image + 2 class maps + argmax, CRF, ground truth).
    assert caught == [("gallery_synthetic.png", 2 * 2 * 6)]
    with Image.open(written[0]) as png:
        assert png.format == "PNG" and png.size[0] > png.size[1] / 4


@pytest.mark.slow
def test_modalities_figure_panels(monkeypatch, tmp_path):
    caught = catch_figures(monkeypatch, modalities_module)
    written = modalities_figures(runs_maps(), "default", LAYOUT, tmp_path)
    assert [p.name for p in written] == ["modalities_synthetic.png"]
    # WILDCAT (M = 1 has no modality figure): 2 classes x 2 examples, each row 2 modalities x (crop + 2 maps),
    # and a colour bar per row.
    assert caught == [("modalities_synthetic.png", 2 * 2 * (2 * 3) + 2 * 2)]
    caught.clear()
    assert [p.name for p in modalities_figures(runs_maps(labelled=False), "default", LAYOUT, tmp_path)] == [
        "modalities_synthetic.png"]
    # Without labels: the 2 first objects of each class, one column group (crop + 2 maps), no score.
    assert caught == [("modalities_synthetic.png", 2 * 2 * 3 + 2 * 2)]


def test_no_maps_no_figures(tmp_path):
    assert gallery_figures({}, "default", LAYOUT, tmp_path) == []
    assert modalities_figures({("default", "synthetic", "m1", 0): fake_maps_record(1)}, "default", LAYOUT, tmp_path) == []


def test_galleries_of_other_test_images_are_refused(tmp_path):
    maps = runs_maps()
    other = fake_maps_record(1)
    maps[("default", "synthetic", "m1", 0)] = type(other)(**{**other.__dict__, "gallery": other.gallery[::-1]})
    with pytest.raises(gallery_module.ResultsFormatError, match="different test images"):
        gallery_figures(maps, "default", LAYOUT, tmp_path)


def write_run(root: Path, method: str, seed: int, num_maps: int, **overrides) -> None:
    """A metrics.json (docs/contracts.md) and, beside it, a maps.npz."""
    folder = root / "default" / "synthetic" / method / f"seed{seed}"
    folder.mkdir(parents=True)
    settings = {"backbone": "cnn6", "image_size_px": 96, "num_maps": num_maps, "kmax": 0.1, "kmin": None,
                "alpha": 0.7, "order": "conv-pool", "scales": [96]}
    (folder / "metrics.json").write_text(json.dumps({
        "schema": 1, "config_name": "default", "dataset": "synthetic", "method": method, "seed": seed,
        "settings": settings, "metrics": {"map": 70.0 + seed + num_maps}, "per_class": {}, "protocol": {}}))
    write_maps(folder / MAPS_FILE, fake_maps_record(num_maps, **overrides))


@pytest.mark.slow
def test_the_report_writes_the_modalities_table_and_the_gallery_from_maps_npz(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "wildcat", 0, 2)
    write_run(runs, "wildcat", 1, 2, swap_maps=True)
    write_run(runs, "m1", 0, 1)
    out = tmp_path / "report"
    assert main(["report", "--runs", str(runs), "--paper", str(REPO / "results" / "paper"), "--config-name", "default",
                 "--layout", LAYOUT.to_json(), "--out", str(out)]) == 0
    assert {"modalities.md", "modalities.csv", "modalities.tex"} <= {p.name for p in out.iterdir()}
    assert {"gallery_synthetic.png", "modalities_synthetic.png"} <= {p.name for p in (out / "figures").iterdir()}
    table = pd.read_csv(out / "modalities.csv", dtype=str, keep_default_na=False)
    assert row(table, "WILDCAT", MEAN_ROW)["nmi_trained"] == "100.0 ± 0.0 (n=2)"
    assert row(table, "M = 1", MEAN_ROW)["nmi_trained"] == "0.0 (n=1)"
    md = (out / "modalities.md").read_text(encoding="utf-8")
    assert md.startswith("# Do the M maps of a class learn its modalities?") and "nmi_*: NMI x 100" in md
