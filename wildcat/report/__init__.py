"""Tables and figures from results: ``results/runs/**/metrics.json`` + ``results/paper/*.csv``.

The last room of the data flow: metrics -> results/*.json -> tables,
plots. Pure functions build :class:`pandas.DataFrame` tables; writers put them on disk.

* :func:`load_runs` reads every ``<config>/<dataset>/<method>/seed<k>/metrics.json`` (format in
  ``docs/contracts.md``) into a long table, one row per (run, metric); :func:`require_runs`
  checks that it holds the config to report.
* :func:`load_paper` reads the paper's published numbers, ``results/paper/table*.csv`` and
  ``figure*.csv`` (columns documented in ``results/paper/README.md``).
* :func:`build_tables` builds the paper's tables with the paper's number and ours side by side.
* :func:`write_tables` writes each table as Markdown, CSV and LaTeX; :func:`write_figures` draws
  seaborn figures as PNG; :func:`write_report` writes both as one folder, whole or not at all.
* :func:`unused_runs` names the runs that no table shows.

Mistakes in the results (a malformed or copied ``metrics.json``, no run of the config) raise
:class:`ResultsFormatError` or :class:`~wildcat.errors.WildcatError`: one line for the user.

Cells (the same words in every table and format):

* ours: ``mean ± std (n=k)`` over seeds, std the sample standard deviation (``ddof=1``); a single
  seed shows ``value (n=1)``; one decimal, as in the paper.
* :data:`NOT_RUN` (``not run``): an experiment of wildcat-bench with no ``metrics.json`` yet.
* :data:`NO_PAPER_VALUE` (``—``, an em dash): the paper publishes no number for this cell.
* :data:`NOT_APPLICABLE` (``n/a``): another paper's method, which wildcat-bench does not run.
* paper: the published value with one decimal (two where the reading of a plot has two); ``~``
  in front marks a value read off a figure (``exact`` is false in ``results/paper``).

Ablation tables follow the rule of ``docs/contracts.md``: for a base method (``wildcat`` in the
default grid, ``ss_m1_a1`` in the paper's analysis grid), the runs of a dataset whose ``settings``
equal the base's settings except for ``alpha`` (alpha ablation) or ``num_maps`` (M ablation).
The paper's Figure 4-5 and Table 6 numbers come from the single-scale analysis setting (448 px,
k+ = k- = 1, M = 1, alpha = 1 unless varied), so they are put beside the ``ss_m1_a1`` base only.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from wildcat.errors import WildcatError
from wildcat.io import atomic_dir
from wildcat.report.recipe import RECIPE_KEYS, PaperRecipes, recipe_differences, recorded_recipe

__all__ = [
    "NOT_RUN",
    "NO_PAPER_VALUE",
    "NOT_APPLICABLE",
    "DATASETS",
    "METRICS",
    "GRID_METHODS",
    "MAIN_VARIANTS",
    "method_label",
    "TABLE_NAMES",
    "ResultsFormatError",
    "RUN_COLUMNS",
    "PAPER_COLUMNS",
    "load_runs",
    "require_runs",
    "load_paper",
    "format_ours",
    "format_paper",
    "ablation_runs",
    "build_tables",
    "unused_runs",
    "write_tables",
    "write_figures",
    "write_report",
]

NOT_RUN = "not run"
NO_PAPER_VALUE = "—"
NOT_APPLICABLE = "n/a"

#: Dataset ids in display order (docs/contracts.md).
DATASETS = ("synthetic", "voc2007", "voc2012", "voc2012_action", "coco2014", "mit67", "scene15")
#: Metric keys of metrics.json in display order (docs/contracts.md).
METRICS = ("map", "accuracy", "mean_class_accuracy", "loc_map", "seg_miou_argmax", "seg_miou_crf")
#: The default grid's methods compared in the "methods" table and figure, in display order.
GRID_METHODS = ("wildcat", "m1", "gmp", "gap")
#: Readable labels of our methods where the paper has no row for them.
METHOD_LABELS = {
    "wildcat": "WILDCAT",
    "wildcat_s448": "WILDCAT, single scale 448 px (member of the multi-scale model; the official code's setting)",
    "wildcat_trainaug": "WILDCAT, trained on train_aug (VOC 2012 train + SBD)",
    "m1": "WILDCAT, M = 1",
    "gmp": "GMP (k+ = 1, k- = 0)",
    "gap": "GAP (k+ = all, k- = 0)",
}
#: Our rows added below the paper's in the side-by-side tables when they were run: the main
#: model's variants (config/paper.yaml), then the default grid's methods.
MAIN_VARIANTS = ("wildcat", "wildcat_s448", "wildcat_trainaug")
#: Base methods of the ablation tables: the default grid's, then the paper's analysis grid's.
ABLATION_BASES = ("wildcat", "ss_m1_a1")
#: The base whose settings are the paper's analysis setting (Figures 4-5, Table 6).
PAPER_ANALYSIS_BASE = "ss_m1_a1"

#: The keys of the dict returned by :func:`build_tables`, in writing order.
TABLE_NAMES = (
    "classification",
    "localization",
    "segmentation",
    "order_ablation",
    "m_ablation",
    "alpha_m_ablation",
    "alpha_ablation",
    "methods",
)
_TITLES = {
    "classification": "Classification (paper Tables 2-4): mAP / multi-class accuracy, %",
    "localization": "Pointwise localization (paper Table 8): mAP, %",
    "segmentation": "Weakly supervised segmentation (paper Table 9): mIoU, %",
    "order_ablation": "Architecture order (paper Table 5): conv then pooling vs pooling then conv, %",
    "m_ablation": "Number of maps M (paper Table 6 + our M ablation), %",
    "alpha_m_ablation": "Ablation alpha = 0.7 x M = 4 (paper Table 7), %",
    "alpha_ablation": "Influence of alpha (paper Figures 4-5 + our alpha ablation), %",
    "methods": "Our grid: WILDCAT vs M = 1 vs GMP vs GAP, %",
}
# Which paper tables feed which report table.
_SIDE_BY_SIDE_SOURCES = {
    "classification": ("Table 2", "Table 3", "Table 4"),
    "localization": ("Table 8",),
    "segmentation": ("Table 9",),
    "order_ablation": ("Table 5",),
    "alpha_m_ablation": ("Table 7",),
}
# Our grid methods added below the paper's rows of a side-by-side table when they were run.
_EXTRA_ROWS = tuple(dict.fromkeys((*MAIN_VARIANTS, *GRID_METHODS)))
_SIDE_BY_SIDE_EXTRA = {"classification": _EXTRA_ROWS, "localization": _EXTRA_ROWS, "segmentation": _EXTRA_ROWS}

#: The metrics.json versions read: 2 adds ``provenance`` (docs/contracts.md).
METRICS_SCHEMAS = (1, 2)
RUN_COLUMNS = (
    "config_name", "dataset", "method", "seed", "metric", "value",
    "alpha", "num_maps", "settings", "ap_mode", "path", "recipe",
)
PAPER_COLUMNS = (
    "table", "method", "our_method", "dataset", "metric", "value", "exact", "scale", "num_maps",
    "kmax", "kmin", "alpha", "order", "check", "source", "note",
)
SIDE_BY_SIDE_COLUMNS = ("table", "dataset", "metric", "method", "our_method", "paper", "ours", "difference", "verdict")
# The files of each table (write_tables) and the folder of the figures (write_report).
_TABLE_SUFFIXES = (".md", ".csv", ".tex")
_FIGURES_DIR = "figures"


class ResultsFormatError(WildcatError, ValueError):
    """A results file (``metrics.json``, ``results/paper/*.csv``) is malformed, or a run is copied."""


# --------------------------------------------------------------------------------------------
# Loading


def _canonical_settings(settings: Mapping[str, Any], drop: Iterable[str] = ()) -> str:
    """The settings as canonical JSON (sorted keys), without the keys in ``drop``."""
    dropped = set(drop)
    return json.dumps({k: v for k, v in settings.items() if k not in dropped}, sort_keys=True)


def read_metrics_json(path: Path, runs_dir: Path) -> dict[str, Any]:
    """Read and validate one ``metrics.json``; its fields must agree with its path."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:  # bad JSON or bad UTF-8
        raise ResultsFormatError(f"{path}: not valid JSON ({err}); delete it and rerun `wildcat evaluate`") from err
    if not isinstance(record, dict) or record.get("schema") not in METRICS_SCHEMAS:
        raise ResultsFormatError(f"{path}: expected a metrics.json object with \"schema\": 1 or 2 (docs/contracts.md), "
                                 f"got schema={record.get('schema') if isinstance(record, dict) else record!r}")
    missing = [k for k in ("config_name", "dataset", "method", "seed", "settings", "metrics") if k not in record]
    if missing:
        raise ResultsFormatError(f"{path}: missing keys {missing} (format in docs/contracts.md)")
    for key, kind in (("seed", int), ("settings", dict), ("metrics", dict), ("protocol", dict)):
        value = record.get(key, {})  # only "protocol" may be absent
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ResultsFormatError(f"{path}: {key!r} must be {'an integer' if kind is int else 'a JSON object'}, "
                                     f"got {value!r} (format in docs/contracts.md)")
    config_name, dataset, method, seed_dir = path.relative_to(runs_dir).parts[:4]
    expected = {"config_name": config_name, "dataset": dataset, "method": method, "seed": seed_dir}
    seen = {"config_name": record["config_name"], "dataset": record["dataset"], "method": record["method"],
            "seed": f"seed{record['seed']}"}
    if seen != expected:
        raise ResultsFormatError(f"{path}: its fields {seen} disagree with its path {expected}; "
                                 "runs live at <config>/<dataset>/<method>/seed<k>/metrics.json")
    for metric, value in record["metrics"].items():
        if metric not in METRICS:
            raise ResultsFormatError(f"{path}: unknown metric key {metric!r}; allowed: {', '.join(METRICS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ResultsFormatError(f"{path}: metric {metric!r} = {value!r} is not a finite number (a percentage)")
    return record


def load_runs(runs_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Read every ``<config>/<dataset>/<method>/seed<k>/metrics.json`` under ``runs_dir``.

    Args:
        runs_dir: the folder of cached runs, e.g. ``results/runs``. A missing folder means no
            runs yet (an empty table).

    Returns:
        One row per (run, metric) with columns :data:`RUN_COLUMNS`: ``config_name``, ``dataset``,
        ``method``, ``seed`` (int), ``metric``, ``value`` (float, %), ``alpha`` and ``num_maps``
        (from ``settings``, NaN where absent), ``settings`` (canonical JSON string), ``ap_mode``
        (from ``protocol``, "" where absent), ``path`` (relative to ``runs_dir``). Sorted by
        config, dataset, method, seed, metric.

    Raises:
        ResultsFormatError: a ``metrics.json`` is malformed or disagrees with its path, or two
            of one config/dataset/method are identical apart from ``seed`` (a copied run).
    """
    root = Path(runs_dir)
    rows: list[dict[str, Any]] = []
    first_path: dict[str, Path] = {}  # record without its seed -> the file that holds it
    for path in sorted(root.glob("*/*/*/seed*/metrics.json")):
        record = read_metrics_json(path, root)
        unseeded = json.dumps({k: v for k, v in record.items() if k != "seed"}, sort_keys=True)
        if unseeded in first_path:
            raise ResultsFormatError(f"{first_path[unseeded]} and {path} are identical apart from \"seed\": one is "
                                     "a copy of the other run; delete the copy (or rerun that seed)")
        first_path[unseeded] = path
        settings = record["settings"]
        for metric, value in record["metrics"].items():
            rows.append({
                "config_name": record["config_name"],
                "dataset": record["dataset"],
                "method": record["method"],
                "seed": int(record["seed"]),
                "metric": metric,
                "value": float(value),
                "alpha": float(settings["alpha"]) if settings.get("alpha") is not None else math.nan,
                "num_maps": float(settings["num_maps"]) if settings.get("num_maps") is not None else math.nan,
                "settings": _canonical_settings(settings),
                "ap_mode": str(record.get("protocol", {}).get("ap_mode", "")),
                "path": path.relative_to(root).as_posix(),
                "recipe": recorded_recipe(record),
            })
    runs = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    runs = runs.astype({"seed": "int64", "value": "float64", "alpha": "float64", "num_maps": "float64"})
    keys = ["config_name", "dataset", "method", "seed", "metric"]
    return runs.sort_values(keys, kind="stable").reset_index(drop=True)


def require_runs(runs: pd.DataFrame, config_name: str, runs_dir: str | os.PathLike[str]) -> None:
    """Check that ``runs`` (:func:`load_runs` of ``runs_dir``) hold a run of ``config_name``.

    Raises:
        WildcatError: ``runs_dir`` does not exist, or holds no run of ``config_name`` (the
            message names the configs it holds).
    """
    root = Path(runs_dir)
    if not root.is_dir():
        raise WildcatError(f"runs folder {root} does not exist: give the folder of "
                           "<config>/<dataset>/<method>/seed<k>/metrics.json (e.g. results/runs)")
    if config_name not in set(runs["config_name"]):
        names = ", ".join(sorted(set(runs["config_name"]))) or "none"
        raise WildcatError(f"no run of config {config_name!r} in {root} (configs there: {names}); "
                           "check the config name")


def _parse_bool(value: str, path: Path) -> bool:
    if value in ("true", "false"):
        return value == "true"
    raise ResultsFormatError(f"{path}: column 'exact' must be true or false, got {value!r}")


def load_paper(paper_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Read the paper's published numbers: ``table*.csv`` and ``figure*.csv`` in ``paper_dir``.

    The supplementary files (``supp_*.csv``: dataset sizes, scales) have other columns and are
    not read here.

    Returns:
        All rows with columns :data:`PAPER_COLUMNS`: strings, except ``value`` and ``alpha``
        (float), ``num_maps``, ``kmax``, ``kmin`` (nullable Int64) and ``exact`` (bool). Empty
        cells are NaN / <NA> for numbers and "" for strings. Files are read in name order.

    Raises:
        ResultsFormatError: a file lacks a column of :data:`PAPER_COLUMNS` or has a bad ``exact``.
        FileNotFoundError: no such folder or no file in it.
    """
    root = Path(paper_dir)
    paths = sorted([*root.glob("table*.csv"), *root.glob("figure*.csv")], key=lambda p: p.name)
    if not paths:
        raise FileNotFoundError(f"no table*.csv or figure*.csv in {root}: expected results/paper/")
    frames = []
    for path in paths:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        missing = [c for c in PAPER_COLUMNS if c not in frame.columns]
        if missing:
            raise ResultsFormatError(f"{path}: missing columns {missing}; see results/paper/README.md")
        frame = frame[list(PAPER_COLUMNS)].copy()
        frame["exact"] = [_parse_bool(v, path) for v in frame["exact"]]
        frames.append(frame)
    paper = pd.concat(frames, ignore_index=True)
    paper["value"] = pd.to_numeric(paper["value"]).astype("float64")
    paper["alpha"] = pd.to_numeric(paper["alpha"].replace("", math.nan)).astype("float64")
    for column in ("num_maps", "kmax", "kmin"):
        paper[column] = pd.to_numeric(paper[column].replace("", math.nan)).astype("Int64")
    paper["exact"] = paper["exact"].astype(bool)
    return paper


# --------------------------------------------------------------------------------------------
# Cells


def format_ours(values: Sequence[float]) -> str:
    """Our cell: ``"83.1 ± 1.2 (n=2)"``; ``"83.1 (n=1)"`` for one seed; :data:`NOT_RUN` for none.

    The std is the sample standard deviation (``ddof=1``) over seeds.
    """
    values = [float(v) for v in values]
    if not values:
        return NOT_RUN
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.1f} (n=1)"
    return f"{mean:.1f} ± {statistics.stdev(values):.1f} (n={len(values)})"


def format_paper(value: float | None, exact: bool = True) -> str:
    """The paper's cell: one decimal (two where a plot reading has two), ``~`` if not exact.

    ``None`` or NaN gives :data:`NO_PAPER_VALUE`.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NO_PAPER_VALUE
    text = f"{float(value):.2f}"
    if text.endswith("0"):
        text = text[:-1]
    return text if exact else f"~{text}"


def _order(values: Sequence[str], known: Sequence[str]) -> list[str]:
    """``values`` without duplicates, the ``known`` ones first in that order, the rest sorted."""
    unique = set(values)
    return [v for v in known if v in unique] + sorted(unique - set(known))


def _rank(value: str, known: Sequence[str]) -> tuple[int, str]:
    return (known.index(value), "") if value in known else (len(known), value)


def _config_runs(runs: pd.DataFrame, config_name: str | None) -> pd.DataFrame:
    """The runs of one config; ``None`` accepts the only config present."""
    if config_name is None:
        names = sorted(set(runs["config_name"]))
        if len(names) > 1:
            raise ValueError(f"runs hold several configs {names}: pass config_name")
        return runs
    return runs[runs["config_name"] == config_name]


def _seed_values(runs: pd.DataFrame) -> dict[tuple[str, str, str], list[float]]:
    """``{(dataset, method, metric): [value of each seed, in seed order]}``."""
    ordered = runs.sort_values(["dataset", "method", "metric", "seed"], kind="stable")
    values: dict[tuple[str, str, str], list[float]] = {}
    for dataset, method, metric, value in zip(ordered["dataset"], ordered["method"], ordered["metric"],
                                              ordered["value"]):
        values.setdefault((dataset, method, metric), []).append(float(value))
    return values


# --------------------------------------------------------------------------------------------
# Tables


def method_label(method: str, method_runs: pd.DataFrame) -> str:
    """A readable label of our ``method`` (:data:`METHOD_LABELS`), followed by its scales where
    its runs (rows of :func:`load_runs` for one dataset) combine several (paper Section 4.1)."""
    label = METHOD_LABELS.get(method, method)
    scales = {tuple(json.loads(settings).get("scales") or ()) for settings in method_runs["settings"]}
    if len(scales) == 1 and len(next(iter(scales))) > 1:
        label += f", multi-scale ({', '.join(map(str, next(iter(scales))))} px)"
    return label


def _recipe_split(runs: pd.DataFrame, recipes: PaperRecipes | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs that follow the paper's recipe for their (dataset, method, seed), and the others
    with a ``differs`` column saying how; without ``recipes``, every run follows it."""
    if recipes is None or runs.empty:
        return runs, runs.iloc[0:0].assign(differs="")
    keys = list(zip(runs["dataset"], runs["method"], runs["seed"].astype(int)))  # a row per metric: one recipe a run
    recipe_of = {key: recipes.recipe(*key) for key in dict.fromkeys(keys)}
    expected = [recipe_of[key] for key in keys]
    follows = [e is None or r == e for r, e in zip(runs["recipe"], expected)]
    others = runs[[not f for f in follows]].copy()
    others["differs"] = [recipe_differences(r, e) for r, e, f in zip(runs["recipe"], expected, follows) if not f]
    return runs[follows], others


def _verdict_cells(values: Sequence[float], paper_value: float, tolerance: float | None, ours: str) -> dict[str, str]:
    """``difference`` (ours - paper, mean over seeds) and ``verdict`` within ``tolerance`` points;
    both :data:`NOT_RUN` / :data:`NOT_APPLICABLE` like our cell, or :data:`NO_PAPER_VALUE` where
    there is nothing to compare with."""
    if ours in (NOT_RUN, NOT_APPLICABLE):
        return {"difference": ours, "verdict": ours}
    if tolerance is None or paper_value is None or pd.isna(paper_value):
        return {"difference": NO_PAPER_VALUE, "verdict": NO_PAPER_VALUE}
    difference = statistics.fmean(values) - float(paper_value)
    verdict = f"within ±{tolerance:g}" if abs(difference) <= tolerance else "differs"
    return {"difference": f"{difference:+.1f}", "verdict": verdict}


def _side_by_side(paper: pd.DataFrame, runs: pd.DataFrame, tables: Sequence[str],
                  extra_methods: Sequence[str], recipes: PaperRecipes | None = None,
                  tolerance: float | None = None) -> pd.DataFrame:
    """Paper rows of ``tables`` with our cell beside (runs that follow the paper's recipe only),
    rows for runs of another recipe (saying what differs), then our ``extra_methods`` runs."""
    rows: list[dict[str, Any]] = []
    covered: set[tuple[str, str, str]] = set()
    following, other_recipe = _recipe_split(runs, recipes)
    seeds, every_seed = _seed_values(following), _seed_values(runs)  # our own rows claim no paper number
    others = {key: (group["differs"].iloc[0], group.sort_values("seed")["value"].tolist())
              for key, group in other_recipe.groupby(["dataset", "method", "metric"])}
    for position, table in enumerate(tables):
        part = paper[paper["table"] == table]
        datasets = list(dict.fromkeys(part["dataset"]))  # the paper's column order
        method_order = list(dict.fromkeys(part["method"]))
        for dataset_rank, dataset in enumerate(datasets):
            block = part[part["dataset"] == dataset]
            for _, row in block.iterrows():
                our = row["our_method"]
                values = seeds.get((dataset, our, row["metric"]), []) if our else []
                key = (position, dataset_rank, 0, method_order.index(row["method"]), _rank(row["metric"], METRICS))
                ours = format_ours(values) if our else NOT_APPLICABLE
                rows.append({
                    "table": table, "dataset": dataset, "metric": row["metric"], "method": row["method"],
                    "our_method": our or NOT_APPLICABLE, "paper": format_paper(row["value"], row["exact"]),
                    "ours": ours, **_verdict_cells(values, row["value"], tolerance, ours), "_key": (*key, 0),
                })
                if our and (dataset, our, row["metric"]) in others and (dataset, our, row["metric"]) not in covered:
                    differs, other_values = others[(dataset, our, row["metric"])]
                    rows.append({
                        "table": table, "dataset": dataset, "metric": row["metric"],
                        "method": f"{row['method']}: our run of another recipe ({differs})", "our_method": our,
                        "paper": NO_PAPER_VALUE, "ours": format_ours(other_values), "difference": NO_PAPER_VALUE,
                        "verdict": "not the paper's recipe", "_key": (*key, 1),
                    })
                if our:
                    covered.add((dataset, our, row["metric"]))
            for metric in _order(block["metric"].tolist(), METRICS):
                for rank, method in enumerate(extra_methods):
                    if (dataset, method, metric) in covered:
                        continue
                    values = every_seed.get((dataset, method, metric), [])
                    if not values:
                        continue
                    rows.append({
                        "table": table, "dataset": dataset, "metric": metric,
                        "method": method_label(method, runs[(runs["dataset"] == dataset) & (runs["method"] == method)]),
                        "our_method": method,
                        "paper": NO_PAPER_VALUE, "ours": format_ours(values), "difference": NO_PAPER_VALUE,
                        "verdict": NO_PAPER_VALUE,
                        "_key": (position, dataset_rank, 1, rank, _rank(metric, METRICS)),
                    })
                    covered.add((dataset, method, metric))
    frame = pd.DataFrame(rows, columns=[*SIDE_BY_SIDE_COLUMNS, "_key"])
    frame = frame.sort_values("_key", kind="stable").drop(columns="_key")
    return frame.reset_index(drop=True)


def ablation_runs(runs: pd.DataFrame, base: str, vary: str) -> pd.DataFrame:
    """The runs of an ablation around ``base`` (docs/contracts.md), one dataset at a time.

    For each dataset where ``base`` was run, keep the runs whose ``settings`` equal the base's
    except for ``vary`` (``"alpha"`` or ``"num_maps"``). Where several methods share a value of
    ``vary``, one is kept: the base itself, else the smallest method id, so no seed counts twice.

    Args:
        runs: rows of :func:`load_runs` (one config).
        base: the base method id, e.g. ``"wildcat"`` or ``"ss_m1_a1"``.
        vary: the setting that varies, a column of ``runs``: ``"alpha"`` or ``"num_maps"``.

    Returns:
        The selected rows of ``runs`` with a ``base`` column added.

    Raises:
        ValueError: ``vary`` is not ``"alpha"`` or ``"num_maps"``.
        ResultsFormatError: the seeds of the base disagree on their settings.
    """
    if vary not in ("alpha", "num_maps"):
        raise ValueError(f"vary={vary!r}: use 'alpha' or 'num_maps'")
    selected = []
    for dataset in _order(runs["dataset"].tolist(), DATASETS):
        in_dataset = runs[(runs["dataset"] == dataset) & runs[vary].notna()]
        base_rows = in_dataset[in_dataset["method"] == base]
        if base_rows.empty:
            continue
        base_settings = {_canonical_settings(json.loads(s), [vary]) for s in base_rows["settings"]}
        if len(base_settings) > 1:
            raise ResultsFormatError(f"{dataset}/{base}: its seeds have different settings; "
                                     "rerun them with one config")
        (key,) = base_settings
        same = in_dataset[[_canonical_settings(json.loads(s), [vary]) == key for s in in_dataset["settings"]]]
        for value in sorted(set(same[vary].tolist())):
            methods = sorted(set(same.loc[same[vary] == value, "method"]))
            chosen = base if base in methods else methods[0]
            selected.append(same[(same[vary] == value) & (same["method"] == chosen)])
    if not selected:
        return runs.iloc[0:0].assign(base=pd.Series(dtype=str))
    return pd.concat(selected).assign(base=base).reset_index(drop=True)


def _ablation_table(runs: pd.DataFrame, paper: pd.DataFrame, vary: str, paper_tables: Sequence[str]) -> pd.DataFrame:
    """Rows (dataset, metric, base, value of ``vary``) with the paper's number and ours."""
    cells: dict[tuple[str, str, str, float], dict[str, Any]] = {}
    for base in ABLATION_BASES:
        chosen = ablation_runs(runs, base, vary)
        for (dataset, metric, value, method), group in chosen.groupby(["dataset", "metric", vary, "method"]):
            cells[(dataset, metric, base, float(value))] = {
                "method": method, "ours": format_ours(group.sort_values("seed")["value"].tolist())}
    papers = paper[paper["table"].isin(paper_tables)]
    for _, row in papers.iterrows():
        key = (row["dataset"], row["metric"], PAPER_ANALYSIS_BASE, float(row[vary]))
        cell = cells.setdefault(key, {"method": row["our_method"], "ours": NOT_RUN})
        cell["paper"] = format_paper(row["value"], row["exact"])
        cell["paper_table"] = row["table"]
    rows = []
    for (dataset, metric, base, value), cell in cells.items():
        rows.append({
            "dataset": dataset, "metric": metric, "base": base,
            vary: f"{value:g}" if vary == "alpha" else str(int(value)),
            "method": cell["method"], "paper_source": cell.get("paper_table", NO_PAPER_VALUE),
            "paper": cell.get("paper", NO_PAPER_VALUE), "ours": cell["ours"],
            "_key": (_rank(dataset, DATASETS), _rank(metric, METRICS), _rank(base, ABLATION_BASES), value),
        })
    columns = ["dataset", "metric", "base", vary, "method", "paper_source", "paper", "ours"]
    frame = pd.DataFrame(rows, columns=[*columns, "_key"])
    return frame.sort_values("_key", kind="stable").drop(columns="_key").reset_index(drop=True)


def _methods_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, metric) of our runs, one column per grid method."""
    rows = []
    grid = runs[runs["method"].isin(GRID_METHODS)]
    seeds = _seed_values(grid)
    for dataset in _order(grid["dataset"].tolist(), DATASETS):
        in_dataset = grid[grid["dataset"] == dataset]
        for metric in _order(in_dataset["metric"].tolist(), METRICS):
            row = {"dataset": dataset, "metric": metric}
            for method in GRID_METHODS:
                row[method] = format_ours(seeds.get((dataset, method, metric), []))
            rows.append(row)
    return pd.DataFrame(rows, columns=["dataset", "metric", *GRID_METHODS])


def build_tables(runs: pd.DataFrame, paper: pd.DataFrame, config_name: str, recipes: PaperRecipes | None = None,
                 tolerance: float | None = None) -> dict[str, pd.DataFrame]:
    """Build the report's tables for one config: the paper's number and ours side by side.

    Args:
        runs: :func:`load_runs` output (any configs; only ``config_name``'s rows are used).
        paper: :func:`load_paper` output.
        config_name: e.g. ``"default"`` or ``"paper"``.
        recipes: the paper's recipe of each run (config/paper.yaml, :mod:`wildcat.report.recipe`): a run
            that does not follow it never stands under the paper's "ours"; it gets a row of its
            own saying what differs. None: every run counts (no recipe check).
        tolerance: the side-by-side tables' ``verdict``: ``within ±T`` when our mean is within
            ``tolerance`` points of the paper's number, else ``differs``; None: no verdict.

    Returns:
        ``{name: DataFrame}`` for the names in :data:`TABLE_NAMES`, every cell a string:

        * ``classification`` (Tables 2-4), ``localization`` (Table 8), ``segmentation`` (Table 9:
          argmax and FC-CRF rows), ``order_ablation`` (Table 5), ``alpha_m_ablation``
          (Table 7): columns ``table, dataset, metric, method, our_method, paper, ours,
          difference, verdict``; the paper's rows in its order (each followed by a row for runs
          of another recipe, if any), then our grid methods that were run (paper ``—``).
        * ``alpha_ablation`` (Figures 4-5 + ours) and ``m_ablation`` (Table 6 + ours):
          columns ``dataset, metric, base, alpha|num_maps, method, paper_source, paper, ours``.
        * ``methods``: ``dataset, metric, wildcat, m1, gmp, gap`` for the datasets we ran.

        Each frame carries ``attrs["title"]`` for the writers.
    """
    ours = _config_runs(runs, config_name)
    tables: dict[str, pd.DataFrame] = {}
    for name, sources in _SIDE_BY_SIDE_SOURCES.items():
        tables[name] = _side_by_side(paper, ours, sources, _SIDE_BY_SIDE_EXTRA.get(name, ()), recipes, tolerance)
    tables["m_ablation"] = _ablation_table(ours, paper, "num_maps", ("Table 6",))
    tables["alpha_ablation"] = _ablation_table(ours, paper, "alpha", ("Figure 4", "Figure 5"))
    tables["methods"] = _methods_table(ours)
    ordered = {name: tables[name] for name in TABLE_NAMES}
    for name, frame in ordered.items():
        frame.attrs["title"] = f"{_TITLES[name]} (config: {config_name})"
        if name in _SIDE_BY_SIDE_SOURCES and tolerance is not None:
            frame.attrs["note"] = (f"verdict: our mean over seeds within ±{tolerance:g} points of the paper's number "
                                   f"(paper_tolerance of the workflow config), for runs that follow the paper's recipe "
                                   f"({', '.join(RECIPE_KEYS)} as {recipes.path if recipes else 'config/paper.yaml'} "
                                   "sets them); a run of another recipe is never put under the paper's \"ours\".")
    return ordered


def _shown_runs(tables: Mapping[str, pd.DataFrame]) -> set[tuple[str, str]]:
    """``(dataset, method id)`` of every cell of ours with a value in ``tables`` (:func:`build_tables`).

    A table names the method of its ``ours`` cells in ``our_method`` (side-by-side tables) or
    ``method`` (ablation tables); the ``methods`` table has a column of cells per grid method.
    """
    shown: set[tuple[str, str]] = set()
    for frame in tables.values():
        if "ours" in frame.columns:
            ids = frame["our_method" if "our_method" in frame.columns else "method"]
            cells: Iterable[tuple[str, str, str]] = zip(frame["dataset"], ids, frame["ours"])
        else:
            cells = ((d, m, c) for m in GRID_METHODS for d, c in zip(frame["dataset"], frame[m]))
        shown |= {(dataset, method) for dataset, method, cell in cells if cell not in (NOT_RUN, NOT_APPLICABLE)}
    return shown


def unused_runs(runs: pd.DataFrame, tables: Mapping[str, pd.DataFrame], config_name: str) -> list[str]:
    """The runs of ``config_name`` that no table shows, as sorted ``config/dataset/method`` ids.

    Args:
        runs: :func:`load_runs` output.
        tables: :func:`build_tables` output for ``runs`` and ``config_name``.
        config_name: the reported config.
    """
    shown = _shown_runs(tables)
    ours = _config_runs(runs, config_name)
    return [f"{config_name}/{dataset}/{method}"
            for dataset, method in sorted(set(zip(ours["dataset"], ours["method"])))
            if (dataset, method) not in shown]


# --------------------------------------------------------------------------------------------
# Writers

_LEGEND = (
    "Ours: mean ± sample std over seeds (n = number of seeds). "
    f"`{NOT_RUN}`: not run yet in this config. `{NO_PAPER_VALUE}`: no published number. "
    f"`{NOT_APPLICABLE}`: another paper's method, not run by wildcat-bench. "
    "`~`: read off a plot of the paper (about ±0.2). Paper numbers: results/paper/."
)
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    """Escape LaTeX specials; ``±`` -> ``$\\pm$``, ``—`` -> ``---``, ``~`` -> ``$\\sim$``."""
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    return out.replace("~", r"$\sim$").replace("±", r"$\pm$").replace("—", "---")


def _to_markdown(frame: pd.DataFrame, title: str, note: str = "") -> str:
    body = frame.to_markdown(index=False, disable_numparse=True)
    if frame.empty:
        body += "\n\n(no rows: nothing of this table was run in this config)"
    return f"# {title}\n\n{body}\n\n" + (f"{note}\n\n" if note else "") + f"{_LEGEND}\n"


def _to_latex(frame: pd.DataFrame, name: str, title: str) -> str:
    escaped = frame.rename(columns=_latex_escape).map(_latex_escape)
    return escaped.to_latex(index=False, escape=False, column_format="l" * max(1, len(frame.columns)),
                            caption=_latex_escape(title), label=f"tab:{name}")


def write_tables(tables: Mapping[str, pd.DataFrame], out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write each table as ``<name>.md``, ``<name>.csv`` and ``<name>.tex`` in ``out_dir``.

    The output depends only on the tables (rows are already sorted, every cell is a formatted
    string), so regenerating from the same results gives the same bytes. Files are written in
    place: :func:`write_report` writes a whole report atomically.

    Returns:
        The paths written, in order.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in sorted(tables):
        frame = tables[name].astype(str)
        title = str(tables[name].attrs.get("title", name))
        texts = (_to_markdown(frame, title, str(tables[name].attrs.get("note", ""))),
                 frame.to_csv(index=False, lineterminator="\n"),
                 _to_latex(frame, name, title))
        for suffix, text in zip(_TABLE_SUFFIXES, texts, strict=True):
            path = out / f"{name}{suffix}"
            path.write_bytes(text.encode("utf-8"))  # UTF-8 with \n newlines on every platform
            written.append(path)
    return written


def _save_png(figure: Any, path: Path) -> None:
    """Save a matplotlib Figure as PNG without the (version-stamped) Software tag."""
    figure.savefig(path, format="png", dpi=100, metadata={"Software": None})


def _new_figure(num_panels: int) -> tuple[Any, list[Any]]:
    """A matplotlib Figure on the Agg canvas (no pyplot state) with ``num_panels`` axes in a row."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.0 * num_panels, 3.4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, num_panels, squeeze=False)[0]
    return figure, list(axes)


def _alpha_figures(runs: pd.DataFrame, paper: pd.DataFrame, out: Path) -> list[Path]:
    import seaborn as sns

    chosen = pd.concat([ablation_runs(runs, base, "alpha") for base in ABLATION_BASES], ignore_index=True)
    curves = paper[paper["table"].isin(("Figure 4", "Figure 5"))]
    written = []
    for dataset in _order(chosen["dataset"].tolist(), DATASETS):
        ours = chosen[chosen["dataset"] == dataset]
        if ours.groupby("base")["alpha"].nunique().max() < 2:
            continue  # only the base itself: no alpha curve to draw
        metrics = _order(ours["metric"].tolist(), METRICS)
        figure, axes = _new_figure(len(metrics))
        for ax, metric in zip(axes, metrics):
            data = ours[ours["metric"] == metric].sort_values(["base", "alpha", "seed"])
            sns.lineplot(data=data, x="alpha", y="value", hue="base", hue_order=_order(data["base"].tolist(),
                         ABLATION_BASES), marker="o", errorbar="sd", err_style="bars", ax=ax)
            published = curves[(curves["dataset"] == dataset) & (curves["metric"] == metric)].sort_values("alpha")
            if not published.empty:
                source = " / ".join(dict.fromkeys(published["table"]))
                ax.plot(published["alpha"], published["value"], linestyle="--", color="black",
                        label=f"paper {source} (448 px, k = 1, M = 1)")
                ax.legend(fontsize="small")
            ax.set_title(f"{dataset}: {metric}")
            ax.set_xlabel("alpha")
            ax.set_ylabel(f"{metric} (%)")
        path = out / f"alpha_{dataset}.png"
        _save_png(figure, path)
        written.append(path)
    return written


def _methods_figures(runs: pd.DataFrame, out: Path) -> list[Path]:
    import seaborn as sns

    grid = runs[runs["method"].isin(GRID_METHODS)]
    written = []
    for dataset in _order(grid["dataset"].tolist(), DATASETS):
        data = grid[grid["dataset"] == dataset].sort_values(["metric", "method", "seed"])
        metric_order = _order(data["metric"].tolist(), METRICS)
        hue_order = [m for m in GRID_METHODS if m in set(data["method"])]
        figure, (ax,) = _new_figure(1)
        figure.set_size_inches(1.8 * len(metric_order) + 2.5, 3.6)
        sns.barplot(data=data, x="metric", y="value", hue="method", order=metric_order, hue_order=hue_order,
                    errorbar="sd", capsize=0.1, ax=ax)
        sns.stripplot(data=data, x="metric", y="value", hue="method", order=metric_order, hue_order=hue_order,
                      dodge=True, jitter=False, palette="dark:black", size=3, legend=False, ax=ax)
        ax.set_title(f"{dataset}: WILDCAT vs baselines\n(bars: mean over seeds, whiskers: sd, dots: seeds)",
                     fontsize="medium")
        ax.set_ylabel("value (%)")
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        path = out / f"methods_{dataset}.png"
        _save_png(figure, path)
        written.append(path)
    return written


def write_figures(runs: pd.DataFrame, paper: pd.DataFrame, out_dir: str | os.PathLike[str],
                  config_name: str | None = None) -> list[Path]:
    """Draw the report's figures as PNG in ``out_dir`` (Agg canvas, no pyplot state).

    * ``alpha_<dataset>.png``: one panel per metric, our alpha curves (one line per ablation base,
      band = sd over seeds) and, where the dataset matches, the paper's Figure 4/5 curve (dashed);
      drawn for a dataset where some base was run with at least two values of alpha.
    * ``methods_<dataset>.png``: WILDCAT vs M = 1 vs GMP vs GAP per metric (bars: mean over seeds,
      whiskers: sd, dots: the seeds).

    A figure is drawn only for a dataset with runs for it. PNGs carry no Software/date stamp, so
    the same inputs and library versions give the same bytes.

    Args:
        runs: :func:`load_runs` output.
        paper: :func:`load_paper` output.
        out_dir: the figures folder.
        config_name: the config to draw; ``None`` is allowed when ``runs`` holds only one.

    Returns:
        The paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ours = _config_runs(runs, config_name)
    return [*_alpha_figures(ours, paper, out), *_methods_figures(ours, out)]


def _check_replaceable(out: Path) -> None:
    """Refuse to replace ``out`` unless it is absent or holds only what a report writes."""
    if not os.path.lexists(out):
        return
    if not out.is_dir():
        raise WildcatError(f"output folder {out} is a file, not a folder: give a folder path")
    names = {f"{name}{suffix}" for name in TABLE_NAMES for suffix in _TABLE_SUFFIXES} | {_FIGURES_DIR}
    foreign = sorted(path.name for path in out.iterdir() if path.name not in names)
    if foreign:
        raise WildcatError(f"output folder {out} holds files a report does not write ({', '.join(foreign)}) and "
                           "a report replaces its whole folder: move them away or give another folder")


def write_report(runs: pd.DataFrame, paper: pd.DataFrame, config_name: str, out_dir: str | os.PathLike[str],
                 recipes: PaperRecipes | None = None, tolerance: float | None = None) -> dict[str, pd.DataFrame]:
    """Write the report of ``config_name`` as the folder ``out_dir``, whole or not at all.

    The tables (:func:`write_tables`) and ``figures/`` (:func:`write_figures`) are built in a
    temporary folder beside ``out_dir``, which then takes the place of the old report
    (:func:`wildcat.io.atomic_dir`): an error midway leaves the old report as it was, and no
    file of the old report stays beside the new one.

    Args:
        runs: :func:`load_runs` output.
        paper: :func:`load_paper` output.
        config_name: the config to report.
        out_dir: the report folder, e.g. ``reports/default``.
        recipes, tolerance: see :func:`build_tables`.

    Returns:
        The tables written (:func:`build_tables`).

    Raises:
        WildcatError: ``out_dir`` is a file, or holds files that a report does not write.
    """
    out = Path(out_dir)
    _check_replaceable(out)
    tables = build_tables(runs, paper, config_name, recipes, tolerance)
    with atomic_dir(out) as tmp:
        write_tables(tables, tmp)
        write_figures(runs, paper, tmp / _FIGURES_DIR, config_name=config_name)
    return tables
