"""``wildcat compare REFERENCE CANDIDATE``: did a set of results reproduce another?

Each side is the results folder of one config, ``<folder>/<dataset>/<method>/seed<k>/metrics.json``
(e.g. the committed ``results/runs/default`` and a fresh run's). For every (dataset, method,
metric) the seeds of each side give a mean, a sample standard deviation and ``n``; the verdict
(the rule is argued in docs/reproduction.md):

* ``missing``: one side has no run of it.
* ``not comparable``: the two sides ran other experiments: a setting that changes the result
  differs (the recorded config, or ``settings`` for results without provenance), or the test
  split's fingerprint differs. What differs is said.
* ``inconclusive``: fewer than :data:`MIN_SEEDS` seeds on a side, so the seed-to-seed spread,
  which a reproduction has to be judged against, cannot be estimated.
* ``differs``: the difference of the means is larger than the tolerance,
  ``max(FLOOR, t * se)``, with ``se = sqrt(s_r^2 / n_r + s_c^2 / n_c)`` and ``t`` the two-sided
  95% quantile of Student's t with Welch's degrees of freedom: Welch's two-sample t-test at the
  5% level, and never a difference smaller than the floor.
* ``reproduced``: otherwise.

Differences expected between machines (the CPU or GPU, thread counts, library patch versions,
the code's commit) are listed under the table, not counted against a row.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scipy import stats

from wildcat.engine.config import RESULT_NEUTRAL_KEYS, ExperimentConfig
from wildcat.errors import WildcatError
from wildcat.io import atomic_write_json
from wildcat.report.load import read_metrics_json
from wildcat.report.names import METRICS

__all__ = ["FLOOR", "MIN_SEEDS", "VERDICTS", "Row", "compare", "exit_status", "format_markdown", "welch_verdict"]

#: The smallest difference (percentage points) ever called ``differs``.
FLOOR = 1.0
#: Seeds a side needs for its spread to be estimated.
MIN_SEEDS = 2
#: Settings named in a ``not comparable`` row (the JSON output's rows name the same).
MAX_KEYS_SHOWN = 3
VERDICTS = ("reproduced", "differs", "inconclusive", "missing", "not comparable")
#: Config keys that may differ between two comparable runs: the seed (each side has its own), what
#: the machine decides (device, precision) and what changes no result (loader processes, where the
#: data lives, the image cache).
MACHINE_KEYS = frozenset({"seed", "device", "amp", "channels_last", "compile", *RESULT_NEUTRAL_KEYS})


class CompareError(WildcatError):
    """A results folder that cannot be compared (missing, empty, several configs)."""


@dataclass(frozen=True)
class Row:
    """One (dataset, method, metric): both sides' seeds, the difference and the verdict."""

    dataset: str
    method: str
    metric: str
    reference: tuple[float, ...]
    candidate: tuple[float, ...]
    difference: float | None
    tolerance: float | None
    verdict: str
    why: str = ""


def _load(folder: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """``{(dataset, method): [metrics.json record, one per seed]}`` of a config's results folder."""
    if not folder.is_dir():
        raise CompareError(f"{folder} is not a folder: give a config's results folder, e.g. results/runs/default")
    paths = sorted(folder.glob("*/*/seed*/metrics.json"))
    if not paths:
        raise CompareError(f"no <dataset>/<method>/seed<k>/metrics.json under {folder}: give a config's results folder, "
                           "e.g. results/runs/default")
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for path in paths:
        record = read_metrics_json(path, folder.parent)
        runs.setdefault((record["dataset"], record["method"]), []).append(record)
    return runs


def _recipe(record: Mapping[str, Any], recorded: bool) -> dict[str, Any]:
    """What makes two runs the same experiment: with ``recorded`` (every run being compared has
    provenance), the config (the evaluation protocol included) without :data:`MACHINE_KEYS`;
    else ``settings``, what schema 1 files hold too."""
    config = (record.get("provenance") or {}).get("config")
    if not recorded:
        return {"settings": record["settings"]}
    if "members" in config:  # a multi-scale combination: its per-scale runs' configs
        return {"members": [_without_machine_keys(member) for member in config["members"]]}
    return _without_machine_keys(config)


def _without_machine_keys(config: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in config.items() if key not in MACHINE_KEYS}


def _test_split(record: Mapping[str, Any]) -> str | None:
    return ((record.get("provenance") or {}).get("evaluation") or {}).get("test_split_sha256")


def _incomparable(reference: list[dict[str, Any]], candidate: list[dict[str, Any]]) -> str:
    """Why the two sides' runs are not the same experiment, or "" if they are."""
    recorded = all((r.get("provenance") or {}).get("config") is not None for r in reference + candidate)
    recipes = [_recipe(r, recorded) for r in reference], [_recipe(r, recorded) for r in candidate]
    for side, recipe in zip(("reference", "candidate"), recipes):
        if any(other != recipe[0] for other in recipe):
            return f"the {side}'s seeds ran different settings"
    ref, cand = recipes[0][0], recipes[1][0]
    if ref != cand:
        defaults = ExperimentConfig().to_dict()
        keys = sorted(key for key in set(ref) | set(cand) if ref.get(key, defaults.get(key)) != cand.get(key, defaults.get(key)))
        if keys:
            shown = "; ".join(f"{key}: {ref.get(key, defaults.get(key))!r} vs {cand.get(key, defaults.get(key))!r}"
                              for key in keys[:MAX_KEYS_SHOWN])
            return shown + (f"; and {len(keys) - MAX_KEYS_SHOWN} more" if len(keys) > MAX_KEYS_SHOWN else "")
    splits = {_test_split(r) for r in reference + candidate} - {None}
    if len(splits) > 1:
        return "the test split's images or labels differ (test_split_sha256)"
    return ""


def welch_verdict(reference: Sequence[float], candidate: Sequence[float]) -> tuple[float, float | None, str]:
    """The difference of the means (candidate - reference), the tolerance and the verdict of two
    samples of seeds: ``inconclusive``, ``differs`` or ``reproduced`` (the module docstring's rule)."""
    difference = statistics.fmean(candidate) - statistics.fmean(reference)
    if min(len(reference), len(candidate)) < MIN_SEEDS:
        return difference, None, "inconclusive"
    var_r, var_c = statistics.variance(reference), statistics.variance(candidate)
    se2 = var_r / len(reference) + var_c / len(candidate)
    if se2 == 0:
        tolerance = FLOOR
    else:  # Welch-Satterthwaite degrees of freedom
        df = se2**2 / ((var_r / len(reference)) ** 2 / (len(reference) - 1) + (var_c / len(candidate)) ** 2 / (len(candidate) - 1))
        tolerance = max(FLOOR, float(stats.t.ppf(0.975, df)) * math.sqrt(se2))
    return difference, tolerance, "differs" if abs(difference) > tolerance else "reproduced"


def compare(reference_dir: str | os.PathLike[str], candidate_dir: str | os.PathLike[str]) -> tuple[list[Row], list[str]]:
    """The rows of the comparison (see the module docstring) and the machine differences.

    Raises:
        CompareError: a folder is missing or holds no results.
        wildcat.report.ResultsFormatError: a malformed metrics.json.
    """
    reference, candidate = _load(Path(reference_dir)), _load(Path(candidate_dir))
    rows = []
    for key in sorted(set(reference) | set(candidate)):
        dataset, method = key
        ref_runs, cand_runs = reference.get(key, []), candidate.get(key, [])
        metrics = sorted({m for r in ref_runs + cand_runs for m in r["metrics"]}, key=METRICS.index)
        why = _incomparable(ref_runs, cand_runs) if ref_runs and cand_runs else ""
        for metric in metrics:
            ref = tuple(float(r["metrics"][metric]) for r in ref_runs if metric in r["metrics"])
            cand = tuple(float(r["metrics"][metric]) for r in cand_runs if metric in r["metrics"])
            if not ref or not cand:
                side = "reference" if not ref else "candidate"
                rows.append(Row(dataset, method, metric, ref, cand, None, None, "missing", f"no run in the {side}"))
            elif why:
                rows.append(Row(dataset, method, metric, ref, cand, None, None, "not comparable", why))
            else:
                rows.append(Row(dataset, method, metric, ref, cand, *welch_verdict(ref, cand)))
    return rows, machine_differences(reference, candidate)


def _machines(runs: Mapping[tuple[str, str], list[dict[str, Any]]]) -> dict[str, set[str]]:
    """What each side's runs record of the machine: device, threads, versions, code."""
    seen: dict[str, set[str]] = {}
    for records in runs.values():
        for record in records:
            prov = record.get("provenance") or {}
            for stage in ("training", "evaluation"):
                parts = prov.get(stage) or []
                for part in parts if isinstance(parts, list) else [parts]:  # a combination: one per member
                    for piece in (part or {}).get("segments") or [part or {}]:  # a resumed training: each process
                        _machine_of(seen, stage, piece)
    return seen


def _machine_of(seen: dict[str, set[str]], stage: str, part: Mapping[str, Any]) -> None:
    device = part.get("device") or {}
    for name in ("name", "threads", "count", "precision"):
        if name in device:
            seen.setdefault(f"{stage} device {name}", set()).add(str(device[name]))
    for library, version in (part.get("versions") or {}).items():
        seen.setdefault(f"{library} version", set()).add(str(version))
    code = part.get("code") or {}
    if code:
        seen.setdefault("code", set()).add(f"{code.get('commit')}{' (dirty)' if code.get('dirty') else ''}")


def machine_differences(reference: Mapping[tuple[str, str], list[dict[str, Any]]],
                        candidate: Mapping[tuple[str, str], list[dict[str, Any]]]) -> list[str]:
    """One line per recorded machine property whose values differ between the two sides."""
    ref, cand = _machines(reference), _machines(candidate)
    return [f"{name}: {', '.join(sorted(ref.get(name, {'not recorded'})))} (reference) vs "
            f"{', '.join(sorted(cand.get(name, {'not recorded'})))} (candidate)"
            for name in sorted(set(ref) | set(cand)) if ref.get(name) != cand.get(name)]


def _stat(values: Sequence[float]) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.1f} (n=1)"
    return f"{statistics.fmean(values):.1f} ± {statistics.stdev(values):.1f} (n={len(values)})"


def format_markdown(rows: Sequence[Row], machine: Sequence[str], reference: str, candidate: str) -> str:
    """The comparison as a Markdown table, with the rule and the machine differences under it."""
    lines = [f"Reproduction of {reference} by {candidate} (mean ± std over seeds, %):", "",
             "| dataset | method | metric | reference | candidate | difference | tolerance | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        difference = "—" if row.difference is None else f"{row.difference:+.1f}"
        tolerance = "—" if row.tolerance is None else f"±{row.tolerance:.1f}"
        verdict = row.verdict + (f" ({row.why})" if row.why else "")
        lines.append(f"| {row.dataset} | {row.method} | {row.metric} | {_stat(row.reference)} | {_stat(row.candidate)} "
                     f"| {difference} | {tolerance} | {verdict} |")
    counts = {verdict: sum(row.verdict == verdict for row in rows) for verdict in VERDICTS}
    lines += ["", "Verdicts: " + ", ".join(f"{count} {verdict}" for verdict, count in counts.items() if count) + ".",
              f"Rule: differs when |difference| > tolerance = max({FLOOR:g}, t(0.975, Welch df) x standard error of the "
              f"difference), i.e. Welch's t-test at 5%; inconclusive under {MIN_SEEDS} seeds a side (docs/reproduction.md)."]
    if machine:
        lines += ["", "Expected differences between the machines (shown, not counted):"] + [f"- {line}" for line in machine]
    return "\n".join(lines) + "\n"


def write_json(rows: Sequence[Row], machine: Sequence[str], path: str | os.PathLike[str]) -> None:
    """The comparison for machines: ``{"rows": [...], "machine_differences": [...], "rule": {...}}``."""
    atomic_write_json(path, {"rows": [asdict(row) for row in rows], "machine_differences": list(machine),
                             "rule": {"floor": FLOOR, "min_seeds": MIN_SEEDS, "test": "welch_t_0.05"}})


def exit_status(rows: Sequence[Row]) -> int:
    """0 when every row is ``reproduced``, else 1."""
    return 0 if rows and all(row.verdict == "reproduced" for row in rows) else 1

