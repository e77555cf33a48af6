"""The paper's path end to end in miniature: config/smoke.yaml from download to report.

Stand-in archives of all seven download sources, with the real file names and layouts
(tests/helpers/fake_archives.py), are served from 127.0.0.1 and reached only through the
supported mechanisms: the mirror variable (``WILDCAT_DATA_MIRROR``) and, since the stand-ins are
not the official files, their own digests given by the workflow config's ``checksums`` key
(``wildcat download --checksums``). The server cuts one file half-way through its first request;
the download resumes it with a Range request. Then the whole DAG of config/smoke.yaml runs
(download -> train -> evaluate -> combine -> report) with only its paths overridden, and the
checks are what a user reads: every dataset ready with the custom checksums, each metrics.json
with the metrics its dataset supports (docs/contracts.md), the smoke rows present in the
report and kept apart from the paper's "ours" (docs/reproduction.md), and a rerun with nothing
to do. No library code is patched: the workflow runs in subprocesses.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from wildcat.data import sources
from wildcat.engine.config import load_yaml
from wildcat.grid import Grid

from helpers import ROOT
from helpers import fake_archives as fa
from helpers.workflow import ENV, SNAKEMAKE

pytestmark = pytest.mark.slow

SMOKE = ROOT / "config" / "smoke.yaml"
#: The stand-ins of every download source; VOC 2007's trainval tar with the train and val lists
#: of the real one (the segmentation background is tuned on train, the default seg_tune_split).
STAND_INS = {**fa.ARCHIVES, "voc2007": functools.partial(fa.voc2007_archives, train_val_lists=True)}
#: The file the server cuts half-way on its first request (not the VOC 2012 tar, which two
#: datasets share).
CUT_FILE = "scene_categories.zip"
#: The metrics each dataset supports on the stand-ins, as on the real data (docs/contracts.md):
#: mAP or accuracy; localization where there are boxes; segmentation where the test split has
#: masks (VOC 2007 test has some too, VOC 2012 val is Table 9's).
SEGMENTATION = {"seg_miou_argmax", "seg_miou_crf"}
EXPECTED_METRICS = {
    "voc2007": {"map", "loc_map", *SEGMENTATION},
    "voc2012": {"map", "loc_map", *SEGMENTATION},
    "voc2012_action": {"map", "loc_map"},
    "coco2014": {"map", "loc_map"},
    "mit67": {"accuracy", "mean_class_accuracy"},
    "scene15": {"accuracy", "mean_class_accuracy"},
}


@dataclass(frozen=True)
class PaperPath:
    """What the run left: its folders, the server's requests and the command line to rerun it."""

    tmp: Path
    data: Path
    results: Path
    reports: Path
    checksums: dict[str, Path]
    archives: dict[str, bytes]
    requests: list[tuple[str, str | None]]
    command: list[str]
    env: dict[str, str]


def checksums_file(path: Path, name: str, archives: dict[str, bytes]) -> Path:
    """A ``--checksums`` JSON of source ``name``'s files, from the stand-ins' own bytes."""
    table = {remote.filename: {"md5": hashlib.md5(archives[remote.filename]).hexdigest(),
                               "sha1": hashlib.sha1(archives[remote.filename]).hexdigest(),
                               "size_bytes": len(archives[remote.filename])}
             for remote in sources.SOURCES[name].files}
    path.write_text(json.dumps(table, indent=1), encoding="utf-8")
    return path.resolve()


def invoke(command: list[str], env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``command`` (the workflow's snakemake, or the wildcat CLI) with ``args``, from the checkout."""
    return subprocess.run([*command, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def paper_path(tmp_path_factory) -> PaperPath:
    tmp = tmp_path_factory.mktemp("paper_path").resolve()
    by_source = {name: build() for name, build in STAND_INS.items()}
    archives = {filename: data for files in by_source.values() for filename, data in files.items()}
    (tmp / "checksums").mkdir()
    checksums = {name: checksums_file(tmp / "checksums" / f"{name}.json", name, files)
                 for name, files in by_source.items()}
    # Only paths are overridden (the runs go under tmp, the paper's files stay the checkout's),
    # plus the checksums of the stand-ins.
    overrides = {"data_root": str(tmp / "data"), "runs_dir": str(tmp / "runs"), "results_dir": str(tmp / "results"),
                 "reports_dir": str(tmp / "reports"), "paper_dir": str(ROOT / "results" / "paper"),
                 "paper_recipe": str(ROOT / "config" / "paper.yaml"),
                 "checksums": {name: str(path) for name, path in checksums.items()}}
    (tmp / "paths.yaml").write_text(yaml.safe_dump(overrides), encoding="utf-8")
    (tmp / "work").mkdir()
    command = [SNAKEMAKE, "--directory", str(tmp / "work"), "--configfile", str(SMOKE), str(tmp / "paths.yaml")]
    with fa.serve(archives) as server:
        server.drop_once.add(CUT_FILE)
        env = {**ENV, sources.MIRROR_ENV: server.url}
        result = invoke(command, env, "--cores", "2")
        requests = list(server.requests)
    assert result.returncode == 0, result.stderr[-5000:]
    return PaperPath(tmp, tmp / "data", tmp / "results" / "smoke", tmp / "reports" / "smoke", checksums, archives,
                     requests, command, env)


def test_the_smoke_config_is_the_paper_grid_in_miniature():
    """Every dataset of config/paper.yaml, its multi-scale models (two scales each), its report
    block's tables and its recipe check; its own name, so nothing lands in `paper`."""
    smoke, paper = Grid(load_yaml(SMOKE)), Grid(load_yaml(ROOT / "config" / "paper.yaml"))
    assert smoke.config["name"] == "smoke" and smoke.config["paper_recipe"] == "config/paper.yaml"
    assert list(smoke.datasets) == list(paper.datasets)
    for dataset in paper.datasets:
        assert list(smoke.multiscale_specs(dataset)) == list(paper.multiscale_specs(dataset))
        assert [s["image_size_px"] for spec in smoke.multiscale_specs(dataset).values() for s in spec["scales"]] == \
            [32, 48] * len(paper.multiscale_specs(dataset))
    for run in smoke.runs:
        for method in run.members or (run.method,):
            settings = smoke.settings(run.dataset, method, run.seed)
            assert (settings["backbone"], settings["weights"], settings["epochs"], settings["device"]) == \
                ("cnn6", None, 1, "cpu")
    assert {run.seed for run in smoke.runs} == {0}
    assert set(smoke.config["report"]) == set(paper.config["report"])


def test_the_cut_download_was_resumed_with_a_range_request(paper_path):
    size = len(paper_path.archives[CUT_FILE])
    assert [r for name, r in paper_path.requests if name == CUT_FILE] == [None, f"bytes={size // 2}-"]
    # every file of every source came from the mirror, each once (the VOC 2012 tar is shared
    # by voc2012 and voc2012_action), apart from the cut one
    asked = [name for name, _ in paper_path.requests]
    assert sorted(set(asked)) == sorted(paper_path.archives)
    assert {name: asked.count(name) for name in asked if asked.count(name) != 1} == {CUT_FILE: 2}
    for filename, data in paper_path.archives.items():
        assert (paper_path.data / filename).read_bytes() == data


def test_every_dataset_is_ready_with_the_custom_checksums(paper_path):
    listing = invoke([sys.executable, "-m", "wildcat", "download", "--list"], paper_path.env, "--root", str(paper_path.data))
    assert listing.returncode == 0, listing.stderr
    rows = {line.split()[0]: line for line in listing.stdout.splitlines() if line.strip()}
    assert set(rows) == set(sources.SOURCES)
    for name, line in rows.items():
        match = re.search(r"\sready\s+custom: (\S+)\s", line)
        assert match, line
        # voc2012 and voc2012_action share one tar: its marker names the file it was verified with
        shared = {"voc2012", "voc2012_action"}
        allowed = {str(paper_path.checksums[other]) for other in (shared if name in shared else {name})}
        assert match.group(1) in allowed, line


def test_each_metrics_json_has_the_metrics_its_dataset_supports(paper_path):
    grid = Grid(load_yaml(SMOKE))
    found = sorted(paper_path.results.glob("*/*/seed*/metrics.json"))
    expected = {paper_path.results / run.dataset / run.method / f"seed{run.seed}" / "metrics.json": run
                for run in grid.runs}
    assert sorted(expected) == found
    for path, run in expected.items():
        document = json.loads(path.read_text())
        assert (document["config_name"], document["dataset"], document["method"]) == ("smoke", run.dataset, run.method)
        assert set(document["metrics"]) == EXPECTED_METRICS[run.dataset], path
        assert all(0 <= value <= 100 for value in document["metrics"].values()), document["metrics"]
        scales = [32, 48] if run.members else [grid.settings(run.dataset, run.method, run.seed)["image_size_px"]]
        assert document["settings"]["scales"] == scales
    trainaug = json.loads((paper_path.results / "voc2012/wildcat_trainaug/seed0/metrics.json").read_text())
    assert [member["train_split"] for member in trainaug["provenance"]["config"]["members"]] == ["train_aug"] * 2


def test_smoke_rows_are_in_the_report_and_never_under_the_papers_ours(paper_path):
    tables = {name: pd.read_csv(paper_path.reports / f"{name}.csv", dtype=str, keep_default_na=False)
              for name in ("classification", "localization", "segmentation")}
    for name, table in tables.items():
        # A row with a published number shows only runs of the paper's recipe: none here.
        published = table[~table["paper"].isin(["—", "n/a"])]
        assert set(published["ours"]) <= {"not run", "n/a"}, (name, published)
        assert set(published.loc[published["our_method"] != "n/a", "verdict"]) == {"not run"}, name
    # Our combined models stand in rows of their own that say what differs from the paper's recipe.
    classification, segmentation = tables["classification"], tables["segmentation"]
    other = classification[classification["verdict"] == "not the paper's recipe"]
    assert sorted(other["dataset"]) == sorted(EXPECTED_METRICS)
    assert other["method"].str.contains(r"our run of another recipe \(scales \[32, 48\] vs \[224, ").all()
    assert other["ours"].str.endswith("(n=1)").all()
    table9 = segmentation[segmentation["our_method"] == "wildcat_trainaug"]
    assert sorted(table9.loc[table9["verdict"] == "not the paper's recipe", "metric"]) == sorted(SEGMENTATION)
    # Our other rows (members, M = 1) carry the smoke config's labels.
    ours = classification[classification["paper"] == "—"]
    extra = ours[ours["verdict"] != "not the paper's recipe"]
    assert set(extra["our_method"]) == {"wildcat_s48", "m1", "wildcat_trainaug"}
    assert extra["method"].str.contains("smoke run, meaningless numbers").all(), extra["method"].tolist()
    # The ablation around ss_m1_a1 (Table 6) is labelled as another recipe, beside the paper's own.
    m_ablation = pd.read_csv(paper_path.reports / "m_ablation.csv", dtype=str, keep_default_na=False)
    ran = m_ablation[m_ablation["ours"] != "not run"]
    assert set(ran["method"]) == {"ss_m1_a1", "ss_m4_a1"} and set(ran["paper"]) == {"—"}
    assert ran["base"].str.startswith("ss_m1_a1 (another recipe: backbone 'cnn6' vs 'resnet101'").all()
    # The run wrote under its own name only, never into `paper` (the committed cached results).
    for folder in ("runs", "results", "reports"):
        assert [path.name for path in (paper_path.tmp / folder).iterdir()] == ["smoke"], folder


def test_a_rerun_has_nothing_to_do(paper_path):
    dry = invoke(paper_path.command, paper_path.env, "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]


def test_two_datasets_sharing_an_archive_download_at_once(tmp_path):
    """voc2012 and voc2012_action share the VOC 2012 trainval tar, and the workflow starts both
    download jobs together: they take turns (a per-file lock) instead of writing one .part at once
    (the bug: one died with a raw "No such file or directory" on the .part)."""
    archives = fa.voc2012_archives()
    shared = {"voc2012", "voc2012_action"}
    checksums = {name: checksums_file(tmp_path / f"{name}.json", name, archives) for name in shared}
    with fa.serve(archives) as server:
        server.chunk_delay_s = 0.01  # a slow link: the two transfers overlap
        env = {**ENV, sources.MIRROR_ENV: server.url}
        downloads = [subprocess.Popen([sys.executable, "-m", "wildcat", "download", name, "--quiet", "--root",
                                       str(tmp_path / "data"), "--checksums", str(checksums[name])],
                                      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for name in sorted(shared)]
        errors = [download.communicate(timeout=300)[1] for download in downloads]
    assert [download.returncode for download in downloads] == [0, 0], errors
    listing = invoke([sys.executable, "-m", "wildcat", "download", "--list"], ENV, "--root", str(tmp_path / "data"))
    rows = {line.split()[0]: line for line in listing.stdout.splitlines() if line.strip()}
    assert all(re.search(r"\sready\s", rows[name]) for name in shared), listing.stdout
