"""Tests for the Snakemake workflow (Snakefile, workflow/, config/)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from wildcat.report import TABLE_NAMES

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
TINY = ROOT / "tests" / "data" / "tiny_workflow.yaml"


def snakemake(*args: str, cwd: Path = ROOT, timeout_s: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([SNAKEMAKE, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout_s)


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run."""
    table = output.split("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


def expected_runs(config_path: Path) -> list[tuple[str, str, int]]:
    config = yaml.safe_load(config_path.read_text())
    runs = []
    for dataset, spec in config["datasets"].items():
        methods = [m for item in spec["methods"] for m in (item if isinstance(item, list) else [item])]
        seeds = spec.get("seeds", config["seeds"])
        runs += [(dataset, m, s) for m in methods for s in spec.get("method_seeds", {}).get(m, seeds)]
    return runs


def test_lint_is_clean():
    result = snakemake("--lint")
    assert result.returncode == 0, result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def test_default_profile_is_applied():
    result = snakemake("-n", "--quiet", "rules")
    assert "Using workflow specific profile profiles/default" in result.stdout + result.stderr


def test_default_grid_dry_run():
    result = snakemake("-n", "--quiet", "rules", "--forceall")
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    runs = expected_runs(ROOT / "config" / "config.yaml")
    assert len(runs) == 12  # 4 methods x 2 seeds + the 4 other alpha values x 1 seed
    assert counts["train"] == counts["evaluate"] == len(runs)
    assert counts["make_synthetic"] == 1 and counts["report"] == 1


def test_paper_grid_dry_run_resolves_every_experiment():
    result = snakemake("--configfile", "config/paper.yaml", "-n", timeout_s=600)
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    runs = expected_runs(ROOT / "config" / "paper.yaml")
    assert counts["train"] == counts["evaluate"] == len(runs) == 222
    assert counts["download"] == 6
    assert "synthetic" not in result.stdout  # the default grid is not merged in
    for path in ("runs/paper/voc2007/ss_m8_a1/seed2/model.pt", "runs/paper/coco2014/wildcat/seed0/model.pt",
                 "results/runs/paper/voc2012/ss_m1_a0.6/seed1/metrics.json", "data/.wildcat/scene15.complete"):
        assert path in result.stdout
    assert "--train-split=train_seed1" in result.stdout  # 15 Scene: one split per seed
    assert "--weights=imagenet" in result.stdout and "--backbone=resnet101" in result.stdout


def test_tables_schedules_nothing_but_tables():
    result = snakemake("tables", "-n", "--quiet", "rules")
    assert result.returncode == 0, result.stderr
    assert job_counts(result.stdout) == {"tables": 1, "total": 1}


def test_report_outputs_match_the_library_tables():
    """report.smk lists wildcat.report.TABLE_NAMES by hand (the Snakefile imports no library)."""
    text = (ROOT / "workflow" / "rules" / "report.smk").read_text()
    listed = re.findall(r'^\s+"(\w+)",$', text.split("REPORT_TABLES = [", 1)[1].split("]", 1)[0], re.MULTILINE)
    assert tuple(listed) == TABLE_NAMES


@pytest.mark.parametrize(
    ("override", "message"),
    [("bogus=1", "'bogus' does not match"), ("seeds=[-1]", "On instance['seeds'][0]"),
     ("name=has space", "does not match '^[A-Za-z0-9_-]+$'")],
)
def test_bad_config_fails_at_parse_time_naming_the_key(override, message):
    result = snakemake("-n", "--config", override)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout


@pytest.mark.slow
def test_tiny_workflow_end_to_end_then_tables_from_cache(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    common = ["--configfile", str(TINY), "--directory", str(work), "--config", f"paper_dir={ROOT / 'results' / 'paper'}"]
    result = snakemake("--cores", "2", *common)
    assert result.returncode == 0, result.stderr[-3000:]
    for method in ("wildcat", "gmp"):
        assert (work / f"results/runs/tiny/synthetic/{method}/seed0/metrics.json").exists()
    reports = work / "reports" / "tiny"
    tables = {p.name: p.read_bytes() for p in reports.glob("*.md")}
    assert set(tables) == {f"{name}.md" for name in TABLE_NAMES}
    # Delete what tables() must not need: the data and the trained models.
    shutil.rmtree(work / "data")
    shutil.rmtree(work / "runs")
    for path in reports.glob("*"):
        path.unlink()
    dry = snakemake("tables", "-n", "--quiet", "rules", *common)
    assert job_counts(dry.stdout) == {"tables": 1, "total": 1}
    result = snakemake("--cores", "1", "tables", *common)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {p.name: p.read_bytes() for p in reports.glob("*.md")} == tables


@pytest.mark.slow
def test_fresh_clone_regenerates_the_committed_tables(tmp_path):
    """On a fresh clone (new timestamps everywhere, no data, no trained models) `tables` runs
    alone and rebuilds reports/default byte for byte from the cached results/."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    committed = {p.relative_to(clone): p.read_bytes() for p in (clone / "reports" / "default").iterdir()
                 if p.suffix in (".md", ".csv", ".tex")}
    assert committed, "reports/default is not committed"
    dry = snakemake("tables", "-n", "--quiet", "rules", cwd=clone)
    assert job_counts(dry.stdout) == {"tables": 1, "total": 1}
    for path in committed:
        (clone / path).unlink()
    started = time.monotonic()
    result = snakemake("--cores", "1", "tables", cwd=clone)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (clone / "data").exists() and not (clone / "runs").exists()
    regenerated = {path: (clone / path).read_bytes() for path in committed}
    assert regenerated == committed
    print(f"tables regenerated in {elapsed:.1f} s")
