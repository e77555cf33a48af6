"""The report's tables: the paper's number and ours side by side (:func:`build_tables`).

Pure functions of :func:`~wildcat.report.load.load_runs` and :func:`~wildcat.report.load.load_paper`
output; which of our methods go in which table is the config's ``report`` block
(:class:`~wildcat.report.layout.ReportLayout`).

Cells (the same words in every table and format):

* ours: ``mean ± std (n=k)`` over seeds, std the sample standard deviation (``ddof=1``); a single
  seed shows ``value (n=1)``; one decimal, as in the paper.
* :data:`NOT_RUN` (``not run``): an experiment of wildcat-bench with no ``metrics.json`` yet.
* :data:`NO_PAPER_VALUE` (``—``, an em dash): the paper publishes no number for this cell.
* :data:`NOT_APPLICABLE` (``n/a``): another paper's method, which wildcat-bench does not run.
* paper: the published value with one decimal (two where the reading of a plot has two); ``~``
  in front marks a value read off a figure (``exact`` is false in ``results/paper``).

Ablation tables follow the rule of ``docs/contracts.md``: for a base method (the layout's
``ablation_bases``), the runs of a dataset whose ``settings`` equal the base's settings except for
``alpha`` (alpha ablation) or ``num_maps`` (M ablation). The paper's Figure 4-5 and Table 6
numbers come from the single-scale analysis setting (448 px, k+ = k- = 1, M = 1, alpha = 1 unless
varied), so they are put beside the layout's ``paper_ablation_base`` only.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from wildcat.report.compare import welch_verdict
from wildcat.report.layout import ReportLayout
from wildcat.report.load import ResultsFormatError, RunMaps, canonical_settings
from wildcat.report.names import DATASETS, METRICS, TABLE_NAMES
from wildcat.report.recipe import RECIPE_KEYS, PaperRecipes, recipe_differences

if TYPE_CHECKING:
    from wildcat.report.per_class import PerClassResults

__all__ = [
    "NOT_RUN",
    "NO_PAPER_VALUE",
    "NOT_APPLICABLE",
    "SIDE_BY_SIDE_COLUMNS",
    "format_ours",
    "format_paper",
    "display_order",
    "config_runs",
    "method_label",
    "ablation_runs",
    "build_tables",
    "unused_runs",
]

NOT_RUN = "not run"
NO_PAPER_VALUE = "—"
NOT_APPLICABLE = "n/a"

_TITLES = {
    "classification": "Classification (paper Tables 2-4): mAP / multi-class accuracy, %",
    "localization": "Pointwise localization (paper Table 8): mAP, %",
    "segmentation": "Weakly supervised segmentation (paper Table 9): mIoU, %",
    "order_ablation": "Architecture order (paper Table 5): conv then pooling vs pooling then conv, %",
    "m_ablation": "Number of maps M (paper Table 6 + our M ablation), %",
    "alpha_m_ablation": "Ablation alpha = 0.7 x M = 4 (paper Table 7), %",
    "alpha_ablation": "Influence of alpha (paper Figures 4-5 + our alpha ablation), %",
    "per_class": "Per-class AP, alpha = 0 vs alpha > 0: the classes built for negative evidence (paper Section 3.3) "
                 "and the controls, %",
    "claims": "Claims: A vs B, resolved only where the difference clears the seeds' noise, %",
    "modalities": "Do the M maps of a class learn its modalities? (paper Section 3.2): NMI x 100 between an object's "
                  "modality and the map that peaks highest in its box",
}
# Which paper tables feed which report table.
_SIDE_BY_SIDE_SOURCES = {
    "classification": ("Table 2", "Table 3", "Table 4"),
    "localization": ("Table 8",),
    "segmentation": ("Table 9",),
    "order_ablation": ("Table 5",),
    "alpha_m_ablation": ("Table 7",),
}
# The side-by-side tables where the layout's ``extra_rows`` are added below the paper's rows.
_MAIN_TABLES = ("classification", "localization", "segmentation")
SIDE_BY_SIDE_COLUMNS = ("table", "dataset", "metric", "method", "our_method", "paper", "ours", "difference", "verdict")


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


def display_order(values: Sequence[str], known: Sequence[str]) -> list[str]:
    """``values`` without duplicates, the ``known`` ones first in that order, the rest sorted."""
    unique = set(values)
    return [v for v in known if v in unique] + sorted(unique - set(known))


def _rank(value: str, known: Sequence[str]) -> tuple[int, str]:
    return (known.index(value), "") if value in known else (len(known), value)


def config_runs(runs: pd.DataFrame, config_name: str | None) -> pd.DataFrame:
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


def _scales(method_runs: pd.DataFrame) -> set[tuple[int, ...]]:
    """The ``settings.scales`` of the runs of one method."""
    return {tuple(json.loads(settings).get("scales") or ()) for settings in method_runs["settings"]}


def _member(method: str, method_runs: pd.DataFrame) -> tuple[str, int] | None:
    """``(model, px)`` where ``method`` is the member ``<model>_s<px>`` of a multi-scale model
    (the grid's ids, docs/contracts.md) and its runs are single-scale at ``px``; else None."""
    match = re.fullmatch(r"(.+)_s([0-9]+)", method)
    if match is None or _scales(method_runs) != {(int(match[2]),)}:
        return None
    return match[1], int(match[2])


def _with_members(methods: Sequence[str], runs: pd.DataFrame) -> list[str]:
    """``methods``, each followed by its members that have runs in ``runs`` (one dataset), in
    scale order."""
    members: dict[str, list[tuple[int, str]]] = {}
    for method, method_runs in runs.groupby("method"):
        if (found := _member(str(method), method_runs)) is not None:
            members.setdefault(found[0], []).append((found[1], str(method)))
    ordered: list[str] = []
    for model in methods:
        ordered += [model, *(member for _, member in sorted(members.get(model, [])))]
    return list(dict.fromkeys(ordered))


def method_label(method: str, method_runs: pd.DataFrame, layout: ReportLayout) -> str:
    """A readable label of our ``method``: its label in ``layout``, else for a member of a
    multi-scale model its model's label and scale, else its id; followed by its scales where its
    runs (rows of :func:`~wildcat.report.load.load_runs` for one dataset) combine several (paper
    Section 4.1)."""
    member = _member(method, method_runs)
    if method in layout.labels or member is None:
        label = layout.label(method)
    else:
        label = f"{layout.label(member[0])}, single scale {member[1]} px (member of the multi-scale model)"
    scales = _scales(method_runs)
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


def _side_by_side(paper: pd.DataFrame, runs: pd.DataFrame, split: tuple[pd.DataFrame, pd.DataFrame],
                  tables: Sequence[str], layout: ReportLayout, extra_methods: Sequence[str],
                  tolerance: float | None = None) -> pd.DataFrame:
    """Paper rows of ``tables`` with our cell beside (runs that follow the paper's recipe only),
    rows for runs of another recipe (saying what differs), then our runs of ``extra_methods``
    and their members (labelled as ``layout`` says, and with what differs where their recipe is
    not the paper's). ``split`` is :func:`_recipe_split` of ``runs``."""
    rows: list[dict[str, Any]] = []
    covered: set[tuple[str, str, str]] = set()
    following, other_recipe = split
    seeds, every_seed = _seed_values(following), _seed_values(runs)  # our own rows claim no paper number
    others = {key: (group["differs"].iloc[0], group.sort_values("seed")["value"].tolist())
              for key, group in other_recipe.groupby(["dataset", "method", "metric"])}
    differs_of = {(dataset, method): differs for dataset, method, differs
                  in zip(other_recipe["dataset"], other_recipe["method"], other_recipe["differs"])}
    for position, table in enumerate(tables):
        part = paper[paper["table"] == table]
        datasets = list(dict.fromkeys(part["dataset"]))  # the paper's column order
        method_order = list(dict.fromkeys(part["method"]))
        for dataset_rank, dataset in enumerate(datasets):
            block = part[part["dataset"] == dataset]
            in_dataset = runs[runs["dataset"] == dataset]
            extra = _with_members(extra_methods, in_dataset)
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
            for metric in display_order(block["metric"].tolist(), METRICS):
                for rank, method in enumerate(extra):
                    if (dataset, method, metric) in covered:
                        continue
                    values = every_seed.get((dataset, method, metric), [])
                    if not values:
                        continue
                    label = method_label(method, in_dataset[in_dataset["method"] == method], layout)
                    if (dataset, method) in differs_of:
                        label = f"{label} (another recipe: {differs_of[(dataset, method)]})"
                    rows.append({
                        "table": table, "dataset": dataset, "metric": metric, "method": label,
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
        runs: rows of :func:`~wildcat.report.load.load_runs` (one config).
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
    for dataset in display_order(runs["dataset"].tolist(), DATASETS):
        in_dataset = runs[(runs["dataset"] == dataset) & runs[vary].notna()]
        base_rows = in_dataset[in_dataset["method"] == base]
        if base_rows.empty:
            continue
        base_settings = {canonical_settings(json.loads(s), [vary]) for s in base_rows["settings"]}
        if len(base_settings) > 1:
            raise ResultsFormatError(f"{dataset}/{base}: its seeds have different settings; "
                                     "rerun them with one config")
        (key,) = base_settings
        same = in_dataset[[canonical_settings(json.loads(s), [vary]) == key for s in in_dataset["settings"]]]
        for value in sorted(set(same[vary].tolist())):
            methods = sorted(set(same.loc[same[vary] == value, "method"]))
            chosen = base if base in methods else methods[0]
            selected.append(same[(same[vary] == value) & (same["method"] == chosen)])
    if not selected:
        return runs.iloc[0:0].assign(base=pd.Series(dtype=str))
    return pd.concat(selected).assign(base=base).reset_index(drop=True)


def _ablation_table(runs: pd.DataFrame, split: tuple[pd.DataFrame, pd.DataFrame], paper: pd.DataFrame, vary: str,
                    paper_tables: Sequence[str], layout: ReportLayout) -> pd.DataFrame:
    """Rows (dataset, metric, base, value of ``vary``) for the layout's ``ablation_bases``, with
    ours and, beside its ``paper_ablation_base``, the paper's number from ``paper_tables``. There
    only the runs that follow the paper's recipe stand as ours (``split``, :func:`_recipe_split` of
    ``runs``); an ablation of runs of another recipe gets rows of its own, their base labelled
    ``<base> (another recipe: what differs)``."""
    cells: dict[tuple[str, str, str, float], dict[str, Any]] = {}
    for base in layout.ablation_bases:
        sources = [(runs, False)]
        if base == layout.paper_ablation_base:
            sources = [(split[0], False), (split[1], True)]
        for source, other_recipe in sources:
            chosen = ablation_runs(source, base, vary)
            for (dataset, metric, value, method), group in chosen.groupby(["dataset", "metric", vary, "method"]):
                label = f"{base} (another recipe: {group['differs'].iloc[0]})" if other_recipe else base
                cells[(dataset, metric, label, float(value))] = {
                    "method": method, "ours": format_ours(group.sort_values("seed")["value"].tolist())}
    papers = paper[paper["table"].isin(paper_tables if layout.paper_ablation_base else ())]
    for _, row in papers.iterrows():
        key = (row["dataset"], row["metric"], layout.paper_ablation_base, float(row[vary]))
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
            "_key": (_rank(dataset, DATASETS), _rank(metric, METRICS), _rank(base, layout.ablation_bases), value),
        })
    columns = ["dataset", "metric", "base", vary, "method", "paper_source", "paper", "ours"]
    frame = pd.DataFrame(rows, columns=[*columns, "_key"])
    return frame.sort_values("_key", kind="stable").drop(columns="_key").reset_index(drop=True)


def _methods_table(runs: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """One row per (dataset, metric) of our runs of ``methods``, one column per method."""
    rows = []
    grid = runs[runs["method"].isin(methods)]
    seeds = _seed_values(grid)
    for dataset in display_order(grid["dataset"].tolist(), DATASETS):
        in_dataset = grid[grid["dataset"] == dataset]
        for metric in display_order(in_dataset["metric"].tolist(), METRICS):
            row = {"dataset": dataset, "metric": metric}
            for method in methods:
                row[method] = format_ours(seeds.get((dataset, method, metric), []))
            rows.append(row)
    return pd.DataFrame(rows, columns=["dataset", "metric", *methods])


#: The claims table's verdict when the difference clears the noise: the better method wins.
CLAIM_RESOLVED = "{winner} > {loser}"
CLAIM_NOT_RESOLVED = "not resolved"
CLAIM_INCONCLUSIVE = "inconclusive (under 2 seeds)"


def _claims_table(runs: pd.DataFrame, layout: ReportLayout) -> pd.DataFrame:
    """One row per claim ``[A, B]`` of the layout, dataset and metric where A or B ran: both means
    over seeds, ``A - B``, the tolerance and the verdict of :func:`~wildcat.report.compare.welch_verdict`
    (Welch's t-test at 5%, never under 1 point: the rule ``wildcat compare`` applies to a reproduction).
    A claim is made only where the difference clears that tolerance."""
    seeds = _seed_values(runs)
    rows = []
    for a, b in layout.claims:
        pair = runs[runs["method"].isin((a, b))]
        for dataset in display_order(pair["dataset"].tolist(), DATASETS):
            in_dataset = pair[pair["dataset"] == dataset]
            for metric in display_order(in_dataset["metric"].tolist(), METRICS):
                values_a, values_b = seeds.get((dataset, a, metric), []), seeds.get((dataset, b, metric), [])
                row = {"dataset": dataset, "metric": metric, "claim": f"{layout.label(a)} vs {layout.label(b)}",
                       "a": format_ours(values_a), "b": format_ours(values_b),
                       "difference": NOT_RUN, "tolerance": NOT_RUN, "verdict": NOT_RUN}
                if values_a and values_b:
                    difference, tolerance, verdict = welch_verdict(values_b, values_a)  # a - b
                    winner, loser = (a, b) if difference > 0 else (b, a)
                    row.update(difference=f"{difference:+.1f}",
                               tolerance="—" if tolerance is None else f"±{tolerance:.1f}",
                               verdict={"inconclusive": CLAIM_INCONCLUSIVE, "reproduced": CLAIM_NOT_RESOLVED}.get(
                                   verdict, CLAIM_RESOLVED.format(winner=layout.label(winner), loser=layout.label(loser))))
                rows.append(row)
    return pd.DataFrame(rows, columns=["dataset", "metric", "claim", "a", "b", "difference", "tolerance", "verdict"])


def build_tables(runs: pd.DataFrame, paper: pd.DataFrame, config_name: str, layout: ReportLayout,
                 recipes: PaperRecipes | None = None, tolerance: float | None = None,
                 per_class: PerClassResults | None = None, maps: RunMaps | None = None) -> dict[str, pd.DataFrame]:
    """Build the report's tables for one config: the paper's number and ours side by side.

    Args:
        runs: :func:`~wildcat.report.load.load_runs` output (any configs; only ``config_name``'s
            rows are used).
        paper: :func:`~wildcat.report.load.load_paper` output.
        config_name: e.g. ``"default"`` or ``"paper"``.
        layout: which of our methods go in which table (the config's ``report`` block).
        recipes: the paper's recipe of each run (config/paper.yaml, :mod:`wildcat.report.recipe`): a run
            that does not follow it never stands under the paper's "ours"; it gets a row of its
            own saying what differs. None: every run counts (no recipe check).
        tolerance: the side-by-side tables' ``verdict``: ``within ±T`` when our mean is within
            ``tolerance`` points of the paper's number, else ``differs``; None: no verdict.
        per_class: the runs' per-class AP and class designs (:func:`~wildcat.report.per_class.load_per_class`);
            None: the ``per_class`` table has no rows.
        maps: the runs' ``maps.npz`` (:func:`~wildcat.report.load.load_maps`); None: the
            ``modalities`` table has no rows.

    Returns:
        ``{name: DataFrame}`` for the names in :data:`TABLE_NAMES`, every cell a string:

        * ``classification`` (Tables 2-4), ``localization`` (Table 8), ``segmentation`` (Table 9:
          argmax and FC-CRF rows), ``order_ablation`` (Table 5), ``alpha_m_ablation``
          (Table 7): columns ``table, dataset, metric, method, our_method, paper, ours,
          difference, verdict``; the paper's rows in its order (each followed by a row for runs
          of another recipe, if any); in the first three, then the layout's ``extra_rows`` and
          their members that were run (paper ``—``).
        * ``alpha_ablation`` (Figures 4-5 + ours) and ``m_ablation`` (Table 6 + ours):
          columns ``dataset, metric, base, alpha|num_maps, method, paper_source, paper, ours``,
          for the layout's ``ablation_bases``.
        * ``methods``: ``dataset, metric`` and a column per method of the layout's ``methods``,
          for the datasets where one of them ran.
        * ``claims``: ``dataset, metric, claim, a, b, difference, tolerance, verdict`` for the
          layout's ``claims`` (:func:`_claims_table`).
        * ``per_class``: per-class AP at alpha = 0 and alpha > 0 of the alpha ablations, the
          classes built for negative evidence apart from the controls
          (:func:`~wildcat.report.per_class.per_class_table`).
        * ``modalities``: per class, how much the ``M`` maps specialise to the objects' modalities,
          for the layout's ``methods``, trained and before training
          (:func:`~wildcat.report.modalities.modalities_table`).

        Each frame carries ``attrs["title"]`` for the writers.
    """
    ours = config_runs(runs, config_name)
    split = _recipe_split(ours, recipes)  # one recipe check per run, for every paper table
    tables: dict[str, pd.DataFrame] = {}
    for name, sources in _SIDE_BY_SIDE_SOURCES.items():
        extra = layout.extra_rows if name in _MAIN_TABLES else ()
        tables[name] = _side_by_side(paper, ours, split, sources, layout, extra, tolerance)
    tables["m_ablation"] = _ablation_table(ours, split, paper, "num_maps", ("Table 6",), layout)
    tables["alpha_ablation"] = _ablation_table(ours, split, paper, "alpha", ("Figure 4", "Figure 5"), layout)
    tables["methods"] = _methods_table(ours, layout.methods)
    tables["claims"] = _claims_table(ours, layout)
    from wildcat.report.per_class import PerClassResults, per_class_table  # it imports this module

    tables["per_class"] = per_class_table(ours, per_class if per_class is not None else PerClassResults(), layout)
    from wildcat.report.modalities import modalities_table  # it imports this module

    tables["modalities"] = modalities_table(maps or {}, config_name, layout)
    titles = {**_TITLES, "methods": f"Our grid: {' vs '.join(map(layout.label, layout.methods)) or 'no methods'}, %"}
    ordered = {name: tables[name] for name in TABLE_NAMES}
    for name, frame in ordered.items():
        frame.attrs["title"] = f"{titles[name]} (config: {config_name})"
        if name == "claims":
            frame.attrs["note"] = ("A > B only where |A - B| exceeds the tolerance max(1, t(0.975, Welch df) x standard "
                                   "error of the difference): Welch's t-test at 5% over the seeds, the rule of "
                                   "`wildcat compare` (docs/reproduction.md); otherwise not resolved.")
        if name in _SIDE_BY_SIDE_SOURCES and tolerance is not None:
            frame.attrs["note"] = (f"verdict: our mean over seeds within ±{tolerance:g} points of the paper's number "
                                   f"(paper_tolerance of the workflow config), for runs that follow the paper's recipe "
                                   f"({', '.join(RECIPE_KEYS)} as {recipes.path if recipes else 'config/paper.yaml'} "
                                   "sets them); a run of another recipe is never put under the paper's \"ours\".")
    return ordered


def _shown_runs(tables: Mapping[str, pd.DataFrame]) -> set[tuple[str, str]]:
    """``(dataset, method id)`` of every cell of ours with a value in ``tables`` (:func:`build_tables`).

    A table names the method of its ``ours`` cells in ``our_method`` (side-by-side tables) or
    ``method`` (ablation tables); the ``methods`` table has a column of cells per method after
    its ``dataset`` and ``metric`` columns. The ``claims`` table compares cells and the
    ``per_class`` table splits those of the ``alpha_ablation`` table by class and the
    ``modalities`` table measures the maps of runs of the ``methods`` table: none shows a run of
    its own.
    """
    shown: set[tuple[str, str]] = set()
    for name, frame in tables.items():
        if name in ("claims", "per_class", "modalities"):
            continue
        if "ours" in frame.columns:
            ids = frame["our_method" if "our_method" in frame.columns else "method"]
            cells: Iterable[tuple[str, str, str]] = zip(frame["dataset"], ids, frame["ours"])
        else:
            cells = ((d, m, c) for m in frame.columns[2:] for d, c in zip(frame["dataset"], frame[m]))
        shown |= {(dataset, method) for dataset, method, cell in cells if cell not in (NOT_RUN, NOT_APPLICABLE)}
    return shown


def unused_runs(runs: pd.DataFrame, tables: Mapping[str, pd.DataFrame], config_name: str) -> list[str]:
    """The runs of ``config_name`` that no table shows, as sorted ``config/dataset/method`` ids.

    Args:
        runs: :func:`~wildcat.report.load.load_runs` output.
        tables: :func:`build_tables` output for ``runs`` and ``config_name``.
        config_name: the reported config.
    """
    shown = _shown_runs(tables)
    ours = config_runs(runs, config_name)
    return [f"{config_name}/{dataset}/{method}"
            for dataset, method in sorted(set(zip(ours["dataset"], ours["method"])))
            if (dataset, method) not in shown]
