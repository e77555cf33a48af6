"""``wildcat budget``: GPU-hours that reproducing each paper table will cost, before submitting it.

For every (dataset, method) that a paper table or figure reports (the ``our_method`` column of
``results/paper/*.csv``) and every seed the workflow config runs it with::

    train_s = epochs * train_images * sum_s (s / 448)^2 / images_per_second
    eval_s  =          test_images  * sum_s (s / 448)^2 / (images_per_second * eval_speedup)

``s`` runs over the run's scales: 448 px for the single-scale analysis; for the multi-scale
``wildcat`` rows (``scale = multi``) the members of the dataset's ``multiscale`` entry (with its
own ``seeds``; ``multiscale`` may list several models, found by their ``method``), or the paper's 7 scales (supplementary Table 2: 224 ... 747 px) without one;
the cost of an image is taken proportional to its pixels. Dataset sizes are the paper's
(supplementary Table 1). ``images_per_second`` is the *training* throughput of one GPU on
WildcatNet(ResNet-101) at 448 px, as ``benchmarks/throughput.py`` prints it: an **input**, to be
measured on the card that will run the grid (GPU-hours do not depend on how many GPUs share a
run if DDP scales linearly). ``eval_speedup`` (forward only vs forward + backward, about 3) is
an assumption; CRF refinement (CPU) and data download are not counted.

A run that several tables share (``ss_m1_a1`` is in Tables 5, 6, 7 and Figure 4) counts in each
table's row, once in the ``all tables`` row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

__all__ = ["PLACEHOLDER_IMAGES_PER_SECOND", "REFERENCE_SIZE_PX", "run_hours", "budget_table", "format_budget"]

#: A placeholder, NOT a measurement: no GPU was available when this was written. Pass the
#: figure that ``benchmarks/throughput.py`` measures on your card.
PLACEHOLDER_IMAGES_PER_SECOND = 100.0
#: The size at which ``images_per_second`` is measured (the paper's single scale).
REFERENCE_SIZE_PX = 448
PAPER_DIR = Path(__file__).resolve().parents[1] / "results" / "paper"


def run_hours(epochs: int, train_images: int, test_images: int, scales_px: list[int], images_per_second: float,
              eval_speedup: float = 3.0) -> tuple[float, float]:
    """``(train_hours, eval_hours)`` of one run (one seed) on one GPU; see the module docstring."""
    if images_per_second <= 0 or eval_speedup <= 0:
        raise ValueError(f"images_per_second={images_per_second} and eval_speedup={eval_speedup} must be > 0")
    if not scales_px:
        raise ValueError("a run needs at least one scale")
    pixels = sum((s / REFERENCE_SIZE_PX) ** 2 for s in scales_px)
    train_s = epochs * train_images * pixels / images_per_second
    eval_s = test_images * pixels / (images_per_second * eval_speedup)
    return train_s / 3600, eval_s / 3600


def _paper_rows(paper_dir: Path) -> pd.DataFrame:
    frames = [pd.read_csv(path, dtype=str) for path in sorted(paper_dir.glob("table*.csv")) + sorted(paper_dir.glob("figure*.csv"))]
    rows = pd.concat(frames, ignore_index=True)
    rows = rows[rows["our_method"].notna() & (rows["our_method"] != "")]
    return rows[["table", "dataset", "our_method", "scale"]].drop_duplicates()


def _flatten(items: list[Any]) -> list[Any]:
    """YAML aliases inside a list (``[a, *more]``) load as nested lists."""
    flat: list[Any] = []
    for item in items:
        flat.extend(_flatten(item) if isinstance(item, list) else [item])
    return flat


def _table_key(name: str) -> tuple[int, int]:
    kind, number = name.split()
    return (0 if kind == "Table" else 1, int(number))


def budget_table(
    config_path: str | Path,
    images_per_second: float = PLACEHOLDER_IMAGES_PER_SECOND,
    eval_speedup: float = 3.0,
    paper_dir: str | Path = PAPER_DIR,
) -> pd.DataFrame:
    """GPU-hours per paper table for the workflow config at ``config_path`` (e.g. config/paper.yaml).

    Args:
        config_path: a workflow config (``datasets: {name: {experiment, methods, seeds?,
            method_seeds?}}``, ``methods``, ``seeds``).
        images_per_second: one GPU's training throughput at 448 px (an input, not a measurement).
        eval_speedup: how much faster evaluation is per image than training.
        paper_dir: the folder of the paper's tables (``supp_table1_datasets.csv``,
            ``supp_table2_scales.csv``, ``table*.csv``, ``figure*.csv``).

    Returns:
        One row per table and a last ``all tables`` row, with columns ``table``, ``runs``
        (trainings: (dataset, method, seed, scale)), ``train_gpu_hours``, ``eval_gpu_hours``,
        ``gpu_hours``, and ``not_in_config`` (how many of the table's (dataset, method) pairs the
        config does not run; their cost is still counted, with the dataset's experiment).
    """
    paper_dir = Path(paper_dir)
    config = yaml.safe_load(Path(config_path).read_text())
    sizes = pd.read_csv(paper_dir / "supp_table1_datasets.csv").set_index("dataset")
    multi_scales = [int(s) for s in pd.read_csv(paper_dir / "supp_table2_scales.csv")["image_size_px"]]
    runs: dict[tuple[str, str], dict[str, Any]] = {}
    per_table: dict[str, list[tuple[str, str]]] = {}
    missing: dict[str, list[str]] = {}
    for row in _paper_rows(paper_dir).itertuples(index=False):
        spec = config.get("datasets", {}).get(row.dataset)
        if spec is None:
            continue  # the config does not cover this dataset at all (e.g. a one-dataset config)
        key = (row.dataset, row.our_method)
        per_table.setdefault(row.table, [])
        if key in per_table[row.table]:
            continue
        per_table[row.table].append(key)
        models = spec.get("multiscale") or []  # one multi-scale model, or a list of them
        multiscale = next((m for m in (models if isinstance(models, list) else [models])
                           if m.get("method", "wildcat") == row.our_method), {})
        is_multiscale = bool(multiscale)
        if not is_multiscale and row.our_method not in _flatten(spec.get("methods", [])):
            missing.setdefault(row.table, []).append(f"{row.dataset}/{row.our_method}")
        if key in runs:
            continue
        experiment = {**spec.get("experiment", {}), **config.get("methods", {}).get(row.our_method, {})}
        seeds = spec.get("method_seeds", {}).get(row.our_method, spec.get("seeds", config.get("seeds", [0])))
        if is_multiscale:  # one training per scale (the config's `multiscale` members)
            experiment.update(multiscale.get("base", {}))
            scales = [int(member["image_size_px"]) for member in multiscale["scales"]]
            seeds = multiscale.get("seeds", seeds)
        elif row.scale == "multi":  # a config without `multiscale`: the paper's 7 scales
            scales = multi_scales
        else:
            scales = [int(experiment.get("image_size_px", REFERENCE_SIZE_PX))]
        train_h, eval_h = run_hours(int(experiment.get("epochs", 20)), int(sizes.loc[row.dataset, "train_images"]),
                                    int(sizes.loc[row.dataset, "test_images"]), scales, images_per_second, eval_speedup)
        runs[key] = {"runs": len(seeds) * len(scales), "train": len(seeds) * train_h, "eval": len(seeds) * eval_h}

    def summary(name: str, keys: list[tuple[str, str]], missing_pairs: list[str]) -> dict[str, Any]:
        train_h = sum(runs[k]["train"] for k in keys)
        eval_h = sum(runs[k]["eval"] for k in keys)
        return {"table": name, "runs": sum(runs[k]["runs"] for k in keys), "train_gpu_hours": round(train_h, 2),
                "eval_gpu_hours": round(eval_h, 2), "gpu_hours": round(train_h + eval_h, 2),
                "not_in_config": len(missing_pairs)}

    rows = [summary(t, per_table[t], missing.get(t, [])) for t in sorted(per_table, key=_table_key)]
    rows.append(summary("all tables", list(runs), []))
    return pd.DataFrame(rows, columns=["table", "runs", "train_gpu_hours", "eval_gpu_hours", "gpu_hours", "not_in_config"])


def format_budget(table: pd.DataFrame, images_per_second: float, source: str | None = None, eval_speedup: float = 3.0) -> str:
    """The table as text, headed by where the throughput comes from (``source``: e.g. the card
    and command it was measured with; ``None`` marks the placeholder default)."""
    if source is None and images_per_second == PLACEHOLDER_IMAGES_PER_SECOND:
        origin = "PLACEHOLDER default, not a measurement: measure with benchmarks/throughput.py and pass --images-per-second"
    else:
        origin = f"input, measured on: {source or 'not stated'}"
    header = (f"Throughput: {images_per_second:g} training images/s per GPU, WildcatNet(ResNet-101) at "
              f"{REFERENCE_SIZE_PX} px ({origin}).\nCost per image proportional to pixels; evaluation assumed 3x faster "
              "per image than training; CRF and downloads not counted.")
    return header + "\n\n" + table.to_string(index=False)
