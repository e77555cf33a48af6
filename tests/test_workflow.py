"""Tests for the Snakemake workflow (Snakefile, workflow/, config/)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from wildcat.grid import Grid
from wildcat.report import TABLE_NAMES

from helpers import ROOT
from helpers.workflow import ENV, TINY, snakemake

# Snakemake runs (dry runs and real ones) and git clones: out of `make test-fast`, in `make test`.
pytestmark = pytest.mark.slow


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run."""
    table = output.split("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


def expected_runs(config_path: Path) -> list[tuple[str, str, int]]:
    """The single-model runs that are evaluated (the `methods` lists), as wildcat.grid reads them."""
    return [(run.dataset, run.method, run.seed) for run in Grid(yaml.safe_load(config_path.read_text())).runs
            if not run.members]


def expected_multiscale(config_path: Path) -> tuple[list[tuple[str, str, int]], set[tuple[str, str, int]]]:
    """The multi-scale combinations (dataset, method, seed) and their member runs."""
    combined = [run for run in Grid(yaml.safe_load(config_path.read_text())).runs if run.members]
    return ([(run.dataset, run.method, run.seed) for run in combined],
            {(run.dataset, member, run.seed) for run in combined for member in run.members})


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
    assert len(runs) == 18  # (4 methods + the 2 other alpha values) x 3 seeds
    assert counts["train"] == counts["evaluate"] == counts["keep_train_log"] == len(runs)
    assert counts["make_synthetic"] == 1 and counts["report"] == 1


def test_paper_grid_dry_run_resolves_every_experiment():
    result = snakemake("--configfile", "config/paper.yaml", "-n", timeout_s=600)
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    runs = expected_runs(ROOT / "config" / "paper.yaml")
    combined, members = expected_multiscale(ROOT / "config" / "paper.yaml")
    # 222 single-scale runs of the analysis grid and wildcat_s448, m1 (3 seeds), 9 of Table 5's
    # pool-conv order; 6 multi-scale models (1 seed) of 7 members, whose 448 px member is shared;
    # plus VOC 2012's Table 9 model trained on train_aug (7 members of its own).
    assert counts["evaluate"] == counts["keep_train_log"] == len(runs) == 231
    assert counts["combine"] == len(combined) == 7
    assert counts["train"] == len(set(runs) | members) == 231 + 6 * 6 + 7
    assert counts["download"] == 7  # the six datasets and SBD (train_aug)
    assert "synthetic" not in result.stdout  # the default grid is not merged in
    for path in ("runs/paper/voc2007/ss_m8_a1/seed2/model.pt", "runs/paper/coco2014/wildcat_s448/seed0/model.pt",
                 "results/runs/paper/voc2012/ss_m1_a0.6/seed1/metrics.json", "data/.wildcat/scene15.complete",
                 "runs/paper/voc2012_action/ss_m1_a1_poolconv/seed2/model.pt"):
        assert path in result.stdout
    assert "runs/paper/coco2014/wildcat/seed0/model.pt" not in result.stdout  # no single model `wildcat`
    assert "--train-split=train_seed1" in result.stdout  # 15 Scene: one split per seed
    assert "--weights=imagenet" in result.stdout and "--backbone=resnet101" in result.stdout
    jobs = result.stdout.split("\n\n")
    (member,) = [j for j in jobs if "output: runs/paper/voc2007/wildcat_s747/seed0/model.pt" in j]
    assert "rule train:" in member and "--image-size-px=747" in member and "--kmax=30" in member
    assert "--num-maps=4" in member and "--alpha=0.7" in member
    (poolconv,) = [j for j in jobs if "output: runs/paper/mit67/ss_m1_a1_poolconv/seed0/model.pt" in j]
    assert "--order=pool-conv" in poolconv and "--image-size-px=448" in poolconv and "--kmax=1" in poolconv
    (combine,) = [j for j in jobs if "output: results/runs/paper/voc2007/wildcat/seed0/metrics.json" in j]
    assert "rule combine:" in combine
    sizes = (224, 280, 320, 374, 448, 560, 747)
    assert f"input: {', '.join(f'runs/paper/voc2007/wildcat_s{px}/seed0/model.pt' for px in sizes)}" in combine
    # Table 9: the train_aug members read VOC 2012 and SBD, and are combined on their own.
    (aug,) = [j for j in jobs if "output: runs/paper/voc2012/wildcat_trainaug_s320/seed0/model.pt" in j]
    assert "--train-split=train_aug" in aug and "--kmax=10" in aug and "data/.wildcat/sbd.complete" in aug
    (combine,) = [j for j in jobs if "output: results/runs/paper/voc2012/wildcat_trainaug/seed0/metrics.json" in j]
    assert f"input: {', '.join(f'runs/paper/voc2012/wildcat_trainaug_s{px}/seed0/model.pt' for px in sizes)}" in combine


def test_paper_scales_are_supplementary_table_2():
    """config/paper.yaml's scales and k per scale are the published ones (results/paper)."""
    import pandas as pd

    published = pd.read_csv(ROOT / "results" / "paper" / "supp_table2_scales.csv")
    expected = [{"image_size_px": int(r.image_size_px), "kmax": int(r.kmax)} for r in published.itertuples()]
    assert (published["kmax"] == published["kmin"]).all()
    config = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    for dataset, spec in config["datasets"].items():
        models = spec["multiscale"] if isinstance(spec["multiscale"], list) else [spec["multiscale"]]
        for multiscale in models:
            assert multiscale["scales"] == expected, dataset
            assert multiscale["base"]["kmin"] is None  # k- = k+
            assert (multiscale["base"]["num_maps"], multiscale["base"]["alpha"]) == (4, 0.7)
    assert [m.get("method", "wildcat") for m in config["datasets"]["voc2012"]["multiscale"]] == ["wildcat", "wildcat_trainaug"]


def _write_config(path: Path, edit) -> Path:
    config = yaml.safe_load(TINY.read_text())
    edit(config)
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["datasets"]["synthetic"].update(multiscale={"scales": [{"image_size_px": 48}]}),
         "'wildcat' is also a single-model method id"),
        (lambda c: c["datasets"]["synthetic"].update(multiscale={"method": "ms", "scales": [{"image_size_px": 48}] * 2}),
         "image_size_px values repeat"),
        (lambda c: c["datasets"]["synthetic"].update(multiscale={"method": "ms", "scales": [{"kmax": 2}]}),
         "'image_size_px' is a required property"),
        (lambda c: c["methods"].update(ms_s48={"num_maps": 1}) or c["datasets"]["synthetic"].update(
            multiscale={"method": "ms", "scales": [{"image_size_px": 48}]}), "both a key of `methods`"),
        # Several multi-scale models (a list): distinct ids, no member made twice.
        (lambda c: c["datasets"]["synthetic"].update(multiscale=[{"method": "ms", "scales": [{"image_size_px": 48}]}] * 2),
         "the method id 'ms' is given twice"),
        (lambda c: c["datasets"]["synthetic"].update(multiscale=[
            {"method": "ms", "scales": [{"image_size_px": 48}]},
            {"method": "ms_s48", "scales": [{"image_size_px": 64}]}]), "'ms_s48' of datasets.synthetic.multiscale is made twice"),
    ],
)
def test_bad_multiscale_config_fails_at_parse_time(tmp_path, edit, message):
    result = snakemake("-n", "--configfile", str(_write_config(tmp_path / "config.yaml", edit)), "--directory", str(tmp_path))
    assert result.returncode != 0
    assert message in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["methods"]["wildcat"].update(kmax=-3), "methods.wildcat: config key 'kmax': bad value -3"),
        (lambda c: c["methods"]["wildcat"].update(alpha="high"), "methods.wildcat: config key 'alpha': bad value 'high'"),
        (lambda c: c["methods"]["gmp"].update(num_maps=0), "methods.gmp: config key 'num_maps': bad value 0"),
        (lambda c: c["methods"]["wildcat"].update(alpha=float("inf")), "config key 'alpha': bad value inf"),
        (lambda c: c["datasets"]["synthetic"]["experiment"].update(dataset="imagenet"),
         "datasets.synthetic.experiment: config key 'dataset': bad value 'imagenet'"),
        (lambda c: c["datasets"]["synthetic"]["experiment"].update(epcohs=3),
         "datasets.synthetic.experiment: unknown config key 'epcohs'"),
        (lambda c: c["datasets"]["synthetic"]["methods"].append("wildkat"),
         "datasets.synthetic.methods: unknown method id 'wildkat'"),
        (lambda c: c["datasets"]["synthetic"]["experiment"].update(image_size_px=1), "regions overlap"),
        (lambda c: c["datasets"].update(imagenet=c["datasets"]["synthetic"]), "On instance['datasets']"),
    ],
)
def test_bad_run_setting_fails_the_dry_run_naming_the_key(tmp_path, edit, message):
    result = snakemake("-n", "--configfile", str(_write_config(tmp_path / "config.yaml", edit)), "--directory", str(tmp_path))
    assert result.returncode != 0
    assert message in result.stderr + result.stdout, result.stderr[-2000:]


def test_a_key_given_twice_in_a_config_file_fails_the_dry_run(tmp_path):
    text = TINY.read_text().replace("      epochs: 1\n", "      epochs: 1\n      epochs: 5\n")
    assert text.count("epochs:") == 2
    (tmp_path / "config.yaml").write_text(text)
    result = snakemake("-n", "--configfile", str(tmp_path / "config.yaml"), "--directory", str(tmp_path))
    assert result.returncode != 0
    assert "key 'epochs' is given twice in one mapping" in result.stderr + result.stdout, result.stderr[-2000:]


def _tiny_multiscale(config):
    config["datasets"]["synthetic"]["methods"] = ["gmp", "ms_s64"]
    config["datasets"]["synthetic"]["multiscale"] = {
        "method": "ms", "base": {"num_maps": 2, "alpha": 0.7, "kmin": None},
        "scales": [{"image_size_px": 48, "kmax": 2}, {"image_size_px": 64, "kmax": 3}],
    }


def test_tiny_multiscale_dry_run(tmp_path):
    config = _write_config(tmp_path / "config.yaml", _tiny_multiscale)
    result = snakemake("-n", "--configfile", str(config), "--directory", str(tmp_path), "--forceall")
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    assert (counts["train"], counts["evaluate"], counts["combine"]) == (3, 2, 1)
    assert "--method ms --seed 0" in result.stdout


@pytest.mark.slow
def test_tiny_multiscale_workflow_end_to_end(tmp_path):
    config = _write_config(tmp_path / "config.yaml", _tiny_multiscale)
    work = tmp_path / "work"
    work.mkdir()
    result = snakemake("--cores", "2", "--configfile", str(config), "--directory", str(work),
                       "results/runs/tiny/synthetic/ms/seed0/metrics.json")
    assert result.returncode == 0, result.stderr[-3000:]
    document = yaml.safe_load((work / "results/runs/tiny/synthetic/ms/seed0/metrics.json").read_text())
    assert document["method"] == "ms" and document["settings"]["scales"] == [48, 64]
    assert document["settings"]["kmax"] == [2, 3] and "map" in document["metrics"]


def test_tables_schedules_nothing_but_tables():
    result = snakemake("tables", "-n", "--quiet", "rules")
    assert result.returncode == 0, result.stderr
    assert job_counts(result.stdout) == {"tables": 1, "total": 1}


def test_the_report_outputs_are_the_library_tables_read_without_pandas_or_torch():
    """report.smk names its outputs from wildcat.report.names and checks the config's report block
    with wildcat.report.layout: neither loads pandas or torch, so snakemake itself needs neither."""
    code = ("import sys, wildcat.report.names, wildcat.report.layout; "
            "print(sorted({'pandas', 'torch'} & set(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
    result = snakemake("-n", "--forcerun", "report")
    assert result.returncode == 0, result.stderr
    (job,) = [j for j in result.stdout.split("\n\n") if "rule report:" in j]
    (outputs,) = re.findall(r"^\s+output: (.+)$", job, re.MULTILINE)
    declared = outputs.split(", ")
    assert declared[:len(TABLE_NAMES)] == [f"reports/default/{name}.md" for name in TABLE_NAMES]
    # Every file the report writes is declared (its .csv and .tex tables too), and nothing else.
    written = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "reports" / "default").iterdir())
    assert sorted(declared) == written


def test_a_metrics_json_of_a_removed_method_is_in_neither_report_nor_tables(tmp_path):
    """gmp removed from the default config leaves its metrics.json in results/: `report` (the DAG)
    and `tables` (the cache) read the config's files only, so gmp is `not run` in both."""
    import pandas as pd

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    config["datasets"]["synthetic"]["methods"].remove("gmp")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    work = tmp_path / "work"
    shutil.copytree(ROOT / "results" / "runs" / "default", work / "results" / "runs" / "default")
    assert (work / "results/runs/default/synthetic/gmp/seed0/metrics.json").is_file()
    common = ["--configfile", str(tmp_path / "config.yaml"), "--directory", str(work), "--config",
              f"paper_dir={ROOT / 'results' / 'paper'}", f"paper_recipe={ROOT / 'config' / 'paper.yaml'}"]
    for target in ("report", "tables"):
        dry = snakemake(target, "-n", "--quiet", "rules", *common)
        assert job_counts(dry.stdout) == {target: 1, "total": 1}, dry.stdout
        result = snakemake("--cores", "1", target, *common)
        assert result.returncode == 0, result.stderr[-3000:]
        methods = pd.read_csv(work / "reports/default/methods.csv", dtype=str, keep_default_na=False)
        assert set(methods["gmp"]) == {"not run"}, target
        assert methods["wildcat"].str.endswith(f"(n={len(yaml.safe_load((ROOT / 'config' / 'config.yaml').read_text())['seeds'])})").all(), target
        (work / "reports/default/methods.csv").unlink()


@pytest.mark.parametrize(
    ("report", "message"),
    [({"metods": ["wildcat"]}, "'metods' was unexpected"),
     ({"ablation_bases": ["wildcat"], "paper_ablation_base": "gmp"}, "report.paper_ablation_base 'gmp' is not one of"),
     ({"labels": {"wildcat": 1}}, "1 is not of type 'string'")],
)
def test_a_bad_report_block_fails_the_dry_run(tmp_path, report, message):
    config = _write_config(tmp_path / "config.yaml", lambda c: c.update(report=report))
    result = snakemake("-n", "--configfile", str(config), "--directory", str(tmp_path))
    assert result.returncode != 0
    assert message in result.stderr + result.stdout, result.stderr[-2000:]


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
    common = ["--configfile", str(TINY), "--directory", str(work), "--config", f"paper_dir={ROOT / 'results' / 'paper'}",
              f"paper_recipe={ROOT / 'config' / 'paper.yaml'}"]
    result = snakemake("--cores", "2", *common)
    assert result.returncode == 0, result.stderr[-3000:]
    for method in ("wildcat", "gmp"):
        assert (work / f"results/runs/tiny/synthetic/{method}/seed0/metrics.json").exists()
    # --forceall reruns the data rule over the existing tree (it once deleted the tree's own
    # synthetic.json as the rule's output, and the generator then refused the tree).
    marker = "data/.wildcat/synthetic.complete"
    forced = snakemake("--cores", "1", "--forceall", marker, *common)
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert (work / marker).exists() and (work / "data/VOCdevkit/VOCsynthetic/synthetic.json").exists()
    reports = work / "reports" / "tiny"
    tables = {p.name: p.read_bytes() for p in reports.glob("*.md")}
    assert set(tables) == {f"{name}.md" for name in TABLE_NAMES}
    # Delete what tables() must not need: the data and the trained models.
    shutil.rmtree(work / "data")
    shutil.rmtree(work / "runs")
    for path in reports.rglob("*.*"):  # tables, and figures in reports/tiny/figures
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
    # The HTML report (snakemake --report) of the same clone: every table and figure, captioned.
    report = snakemake("--report", str(tmp_path / "report.zip"), cwd=clone)
    assert report.returncode == 0, report.stderr[-3000:]
    with zipfile.ZipFile(tmp_path / "report.zip") as archive:
        names = {Path(name).name for name in archive.namelist()}
        html = archive.read("report/report.html").decode()
    tables = {path.name for path in committed if path.suffix == ".md"}
    figures = {p.name for p in (clone / "reports" / "default" / "figures").glob("*.png")}
    assert len(tables) == len(TABLE_NAMES) and figures and tables | figures | {"report.html"} <= names
    assert "with the published number" in html and "The influence of alpha" in html  # the .rst captions


def test_make_demo_trains_from_scratch_in_a_fresh_clone(tmp_path):
    """The README's first command runs the whole chain in a fresh clone, where the committed
    cached metrics make a plain `snakemake` schedule only the report (the bug: `make demo` then
    trained nothing), and ends with the verdict against the committed cache, kept aside first.
    Dry run of the workflow that `make demo` runs; its other commands for real."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    assert job_counts(snakemake("-n", "--quiet", "rules", cwd=clone).stdout).get("train", 0) == 0
    recipe = subprocess.run(["make", "--no-print-directory", "-n", "-o", ".venv/.installed", "demo"], cwd=clone,
                            capture_output=True, text=True, check=True).stdout.replace("\\\n", " ").splitlines()
    (workflow,) = [line for line in recipe if " snakemake " in line]
    before, compare = recipe[:recipe.index(workflow)], recipe[-1]
    assert " wildcat compare build/reference/results/runs/default results/runs/default " in compare, recipe
    demo = subprocess.run(f"{workflow} -n --quiet rules", shell=True, cwd=clone, env=ENV, capture_output=True, text=True)
    assert demo.returncode == 0, demo.stderr[-3000:]
    runs = expected_runs(ROOT / "config" / "config.yaml")
    assert job_counts(demo.stdout) == {"make_synthetic": 1, "train": len(runs), "evaluate": len(runs),
                                       "keep_train_log": len(runs), "report": 1, "all": 1, "total": 3 * len(runs) + 3}
    for seed in (0, 1):  # a run that wrote over the cache...
        (clone / f"results/runs/default/synthetic/gap/seed{seed}/metrics.json").unlink()
    for line in before:
        subprocess.run(line, shell=True, cwd=clone, env=ENV, check=True)
    kept = clone / "build/reference/results/runs/default"
    assert len(list(kept.glob("*/*/seed*/metrics.json"))) == len(runs)  # ...leaves the committed cache intact there
    verdicts = subprocess.run(compare, shell=True, cwd=clone, env=ENV, capture_output=True, text=True)
    assert verdicts.returncode == 0, verdicts.stderr[-3000:]  # the demo itself does not fail on a verdict
    rows = {tuple(cell.strip() for cell in line.split("|")[1:4]): line for line in verdicts.stdout.splitlines()
            if line.startswith("| synthetic |")}
    same = rows[("synthetic", "wildcat", "map")]  # the same seeds on both sides
    assert " | +0.0 | ±" in same and same.endswith(" | reproduced |"), same
    assert rows[("synthetic", "gap", "map")].endswith("| inconclusive |")  # 1 seed left in the candidate
    assert verdicts.stdout.rstrip().endswith("demo: not every row is 'reproduced' (see the verdicts above; docs/reproduction.md)")


def test_several_gpus_train_under_torchrun(tmp_path):
    """A dataset whose runs ask for several GPUs trains with DDP through torchrun (one node)."""
    config = yaml.safe_load(TINY.read_text())
    config["datasets"]["synthetic"]["resources"] = {"gpu": 4}
    path = tmp_path / "gpus.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake("-n", "--forceall", "--configfile", str(path), "--directory", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "torchrun --standalone --nproc_per_node=4 -m wildcat train" in result.stdout
    single = snakemake("-n", "--forceall", "--configfile", str(TINY), "--directory", str(tmp_path))
    assert " python -m wildcat train" in single.stdout and "torchrun" not in single.stdout


@pytest.mark.slow
def test_changed_settings_retrain_and_a_moved_checkout_plans_nothing(tmp_path):
    """A rule whose settings changed trains the new experiment afresh (never resumes the old
    checkpoint), paths with spaces work, and a copied checkout has nothing to do."""
    first = tmp_path / "with space" / "first"
    shutil.copytree(ROOT, first, ignore=shutil.ignore_patterns(".git", ".venv", ".snakemake", "data", "runs", "logs",
                                                                "__pycache__", "reports"))
    config = yaml.safe_load(TINY.read_text())
    config["data_root"] = "my data"
    config["datasets"]["synthetic"]["methods"] = ["wildcat"]
    (first / "tiny.yaml").write_text(yaml.safe_dump(config))
    target = "runs/tiny/synthetic/wildcat/seed0/model.pt"
    trained = snakemake("--cores", "1", target, "--configfile", "tiny.yaml", cwd=first)
    assert trained.returncode == 0, trained.stderr[-3000:]
    log_csv = "runs/tiny/synthetic/wildcat/seed0/train_log.csv"
    before = (first / log_csv).read_text().splitlines()[1:]

    second = tmp_path / "with space" / "second"
    shutil.copytree(first, second)  # copy2: the files keep their times, as `cp -a` keeps them
    dry = snakemake("-n", target, "--configfile", "tiny.yaml", cwd=second)
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]

    config["methods"]["wildcat"]["alpha"] = 0.0
    (second / "tiny.yaml").write_text(yaml.safe_dump(config))
    rerun = snakemake("--cores", "1", target, "--configfile", "tiny.yaml", cwd=second)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    log = (second / "logs/tiny/train/synthetic/wildcat/seed0.log").read_text()
    assert "alpha 0.7 -> 0.0" in log and "starting afresh" in log, log
    after = (second / log_csv).read_text().splitlines()[1:]
    assert len(after) == len(before) and [row.split(",")[1] for row in after] != [row.split(",")[1] for row in before]
    assert yaml.safe_load((second / "runs/tiny/synthetic/wildcat/seed0/config.yaml").read_text())["alpha"] == 0.0
