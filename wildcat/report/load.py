"""Loading: our runs (``<config>/<dataset>/<method>/seed<k>/metrics.json``) and the paper's numbers.

* :func:`load_runs` reads the ``metrics.json`` files of a runs folder (format in
  ``docs/contracts.md``), every one or exactly those listed, into a long table, one row per
  (run, metric); :func:`require_runs` checks that it holds the config to report.
* :func:`load_paper` reads the paper's published numbers, ``results/paper/table*.csv`` and
  ``figure*.csv`` (columns documented in ``results/paper/README.md``).
* :func:`load_maps` reads the ``maps.npz`` beside each run's ``metrics.json``, where there is one
  (:mod:`wildcat.eval.maps_record`).

Mistakes in the results (a malformed or copied ``metrics.json``, a listed file that is missing
or outside the runs folder) raise :class:`ResultsFormatError`: one line for the user.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from wildcat.errors import WildcatError
from wildcat.eval.maps_record import MAPS_FILE, MapsRecord, read_maps
from wildcat.report.names import METRICS
from wildcat.report.recipe import recorded_recipe

__all__ = [
    "METRICS_SCHEMAS",
    "RUN_COLUMNS",
    "PAPER_COLUMNS",
    "ResultsFormatError",
    "canonical_settings",
    "read_metrics_json",
    "load_runs",
    "require_runs",
    "load_paper",
    "RunMaps",
    "load_maps",
]

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


class ResultsFormatError(WildcatError, ValueError):
    """A results file (``metrics.json``, ``results/paper/*.csv``) is malformed, or a run is copied."""


def canonical_settings(settings: Mapping[str, Any], drop: Iterable[str] = ()) -> str:
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


def load_runs(runs_dir: str | os.PathLike[str], paths: Sequence[str | os.PathLike[str]] | None = None) -> pd.DataFrame:
    """Read the ``<config>/<dataset>/<method>/seed<k>/metrics.json`` files of ``runs_dir``.

    Args:
        runs_dir: the folder of cached runs, e.g. ``results/runs``. A missing folder means no
            runs yet (an empty table).
        paths: read exactly these files (each under ``runs_dir``; the workflow gives the ones its
            config declares, so that a file left behind by a method removed from the config is
            not read). None: every such file under ``runs_dir``.

    Returns:
        One row per (run, metric) with columns :data:`RUN_COLUMNS`: ``config_name``, ``dataset``,
        ``method``, ``seed`` (int), ``metric``, ``value`` (float, %), ``alpha`` and ``num_maps``
        (from ``settings``, NaN where absent), ``settings`` (canonical JSON string), ``ap_mode``
        (from ``protocol``, "" where absent), ``path`` (relative to ``runs_dir``), ``recipe``
        (:func:`wildcat.report.recipe.recorded_recipe`). Sorted by config, dataset, method, seed,
        metric.

    Raises:
        ResultsFormatError: a ``metrics.json`` is malformed or disagrees with its path, a listed
            file is missing or not under ``runs_dir``, or two of one config/dataset/method are
            identical apart from ``seed`` (a copied run).
    """
    root = Path(runs_dir)
    rows: list[dict[str, Any]] = []
    first_path: dict[str, Path] = {}  # record without its seed -> the file that holds it
    for path in sorted(root.glob("*/*/*/seed*/metrics.json") if paths is None else set(map(Path, paths))):
        if not path.is_relative_to(root) or len(path.relative_to(root).parts) != 5:
            raise ResultsFormatError(f"{path} is not a run of {root}: runs live at "
                                     f"{root}/<config>/<dataset>/<method>/seed<k>/metrics.json")
        if not path.is_file():
            raise ResultsFormatError(f"{path}: no such file (a run not evaluated yet?)")
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
                "settings": canonical_settings(settings),
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


#: The ``maps.npz`` of each run, keyed by ``(config_name, dataset, method, seed)`` (:func:`load_maps`).
RunMaps = Mapping[tuple[str, str, str, int], MapsRecord]


def load_maps(runs: pd.DataFrame, runs_dir: str | os.PathLike[str]) -> dict[tuple[str, str, str, int], MapsRecord]:
    """The ``maps.npz`` written beside the ``metrics.json`` of each run of ``runs`` (rows of
    :func:`load_runs` of ``runs_dir``); a run without one (evaluated before the file existed, or a
    multi-scale combination) is left out.

    Raises:
        MapsFormatError: a ``maps.npz`` that is not the format of docs/contracts.md.
    """
    root = Path(runs_dir)
    found: dict[tuple[str, str, str, int], MapsRecord] = {}
    keys = zip(runs["config_name"], runs["dataset"], runs["method"], runs["seed"].astype(int))
    for key, relative in dict.fromkeys(zip(keys, runs["path"])):  # a row per metric: each run once
        path = (root / relative).with_name(MAPS_FILE)
        if path.is_file():
            found[key] = read_maps(path)
    return found
