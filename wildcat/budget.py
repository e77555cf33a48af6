"""``wildcat budget``: GPU-hours that reproducing each paper table will cost, before submitting it.

For every (dataset, method) that a paper table or figure reports (the ``our_method`` column of
``results/paper/*.csv``) and every seed the workflow config runs it with::

    train_s = epochs * train_images * sum_s (s / 448)^2 / train_images_per_second
    eval_s  =          test_images  * sum_s (s / 448)^2 / eval_images_per_second

``s`` runs over the run's scales: 448 px for the single-scale analysis; for the multi-scale
``wildcat`` rows (``scale = multi``) the members of the dataset's ``multiscale`` entry (with its
own ``seeds``; ``multiscale`` may list several models, found by their ``method``), or the paper's 7 scales (supplementary Table 2: 224 ... 747 px) without one;
the cost of an image is taken proportional to its pixels. Dataset sizes are the paper's
(supplementary Table 1). The two throughputs (:class:`Throughput`) are those of one GPU on
WildcatNet(ResNet-101) at 448 px: **inputs**, measured on the card that will run the grid by
``benchmarks/throughput.py --json FILE`` and read by :func:`load_throughput` (training in
``wildcat train``'s precision on that device, evaluation in float32 as ``wildcat evaluate``
runs it). GPU-hours do not depend on how many GPUs share a run if DDP scales linearly. Without a
measurement, :data:`PLACEHOLDER` stands in and the output says so. CRF refinement (CPU) and
data download are not counted.

A run that several tables share (``ss_m1_a1`` is in Tables 5, 6, 7 and Figure 4) counts in each
table's row, once in the ``all tables`` row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from wildcat.engine.config import load_yaml, make_config
from wildcat.errors import WildcatError
from wildcat.grid import Grid

__all__ = ["PLACEHOLDER", "REFERENCE_SIZE_PX", "Throughput", "load_throughput", "run_hours", "budget_table",
           "format_budget"]

#: The size at which the throughputs are measured (the paper's single scale).
REFERENCE_SIZE_PX = 448


@dataclass(frozen=True)
class Throughput:
    """Images/s of one GPU on WildcatNet(ResNet-101) at 448 px, for training and for evaluation.

    Attributes:
        train_images_per_second: SGD steps (forward + backward + update).
        eval_images_per_second: forward passes without gradients.
        source: the device, command and date they were measured with; ``None`` for a placeholder.
    """

    train_images_per_second: float
    eval_images_per_second: float
    source: str | None = None

    def __post_init__(self) -> None:
        if not (self.train_images_per_second > 0 and self.eval_images_per_second > 0):
            raise WildcatError(f"throughputs must be > 0 images/s, got training {self.train_images_per_second} "
                               f"and evaluation {self.eval_images_per_second}")


#: A placeholder, NOT a measurement (no GPU was available when this was written): 100 training
#: images/s, evaluation 3x faster. Measure your card with ``benchmarks/throughput.py --json FILE``.
PLACEHOLDER = Throughput(100.0, 300.0)


def load_throughput(path: str | Path) -> Throughput:
    """The throughputs that ``benchmarks/throughput.py --json PATH`` measured.

    The file holds ``device``, ``command``, ``date``, ``size_px`` and ``precisions``: for
    ``float32`` (always) and ``bfloat16_channels_last`` (CUDA only), the median
    ``train_images_per_s``; ``float32`` also has ``eval_images_per_s``. Training is taken in
    ``bfloat16_channels_last`` when measured (``wildcat train``'s default on CUDA: ``amp`` and
    ``channels_last``), else in float32; evaluation in float32 (``wildcat evaluate``).

    Raises:
        WildcatError: the file is missing, is not such a record, or was measured at another size.
    """
    path = Path(path)
    how = f"write it with `python benchmarks/throughput.py --json {path}` on the card that will run the grid"
    try:
        record = json.loads(path.read_text())
        precisions = record["precisions"]
        precision = "bfloat16_channels_last" if "bfloat16_channels_last" in precisions else "float32"
        train = float(precisions[precision]["train_images_per_s"])
        evaluation = float(precisions["float32"]["eval_images_per_s"])
        size_px = int(record["size_px"])
        device, command, date = record["device"], record["command"], record["date"]
    except FileNotFoundError:
        raise WildcatError(f"no throughput file {path}: {how}") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise WildcatError(f"{path} is not a throughput record of benchmarks/throughput.py ({type(error).__name__}: "
                           f"{error}): {how}") from None
    if size_px != REFERENCE_SIZE_PX:
        raise WildcatError(f"{path} was measured at {size_px} px; the budget needs {REFERENCE_SIZE_PX} px figures: "
                           "run benchmarks/throughput.py without --size-px")
    return Throughput(train, evaluation, f"{device}, training in {precision} (`{command}`, {date})")


def run_hours(epochs: int, train_images: int, test_images: int, scales_px: list[int],
              throughput: Throughput) -> tuple[float, float]:
    """``(train_hours, eval_hours)`` of one run (one seed) on one GPU; see the module docstring."""
    if not scales_px:
        raise ValueError("a run needs at least one scale")
    pixels = sum((s / REFERENCE_SIZE_PX) ** 2 for s in scales_px)
    train_s = epochs * train_images * pixels / throughput.train_images_per_second
    eval_s = test_images * pixels / throughput.eval_images_per_second
    return train_s / 3600, eval_s / 3600


def _paper_rows(paper_dir: Path) -> pd.DataFrame:
    frames = [pd.read_csv(path, dtype=str) for path in sorted(paper_dir.glob("table*.csv")) + sorted(paper_dir.glob("figure*.csv"))]
    rows = pd.concat(frames, ignore_index=True)
    rows = rows[rows["our_method"].notna() & (rows["our_method"] != "")]
    return rows[["table", "dataset", "our_method", "scale"]].drop_duplicates()


def _table_key(name: str) -> tuple[int, int]:
    kind, number = name.split()
    return (0 if kind == "Table" else 1, int(number))


def budget_table(
    config_path: str | Path,
    throughput: Throughput = PLACEHOLDER,
    paper_dir: str | Path = Path("results/paper"),
) -> pd.DataFrame:
    """GPU-hours per paper table for the workflow config at ``config_path`` (e.g. config/paper.yaml).

    Args:
        config_path: a workflow config (``datasets: {name: {experiment, methods, seeds?,
            method_seeds?}}``, ``methods``, ``seeds``).
        throughput: one GPU's training and evaluation images/s at 448 px (:func:`load_throughput`).
        paper_dir: the folder of the paper's tables (``supp_table1_datasets.csv``,
            ``supp_table2_scales.csv``, ``table*.csv``, ``figure*.csv``).

    Returns:
        One row per table and a last ``all tables`` row, with columns ``table``, ``runs``
        (trainings: (dataset, method, seed, scale)), ``train_gpu_hours``, ``eval_gpu_hours``,
        ``gpu_hours``, and ``not_in_config`` (how many of the table's (dataset, method) pairs the
        config does not run; their cost is still counted, with the dataset's experiment).
    """
    paper_dir = Path(paper_dir)
    grid = Grid(load_yaml(config_path))
    sizes = pd.read_csv(paper_dir / "supp_table1_datasets.csv").set_index("dataset")
    multi_scales = [int(s) for s in pd.read_csv(paper_dir / "supp_table2_scales.csv")["image_size_px"]]
    runs: dict[tuple[str, str], dict[str, Any]] = {}
    per_table: dict[str, list[tuple[str, str]]] = {}
    missing: dict[str, list[str]] = {}
    for row in _paper_rows(paper_dir).itertuples(index=False):
        if row.dataset not in grid.datasets:
            continue  # the config does not cover this dataset at all (e.g. a one-dataset config)
        key = (row.dataset, row.our_method)
        per_table.setdefault(row.table, [])
        if key in per_table[row.table]:
            continue
        per_table[row.table].append(key)
        multiscale = grid.multiscale_specs(row.dataset).get(row.our_method)
        if multiscale is None and row.our_method not in grid.methods_of(row.dataset):
            missing.setdefault(row.table, []).append(f"{row.dataset}/{row.our_method}")
        if key in runs:
            continue
        if multiscale is not None:  # one training per scale (the config's `multiscale` members)
            seeds = multiscale["seeds"]
            members = [make_config(grid.settings(row.dataset, member, seeds[0]))
                       for member in grid.multiscale_members(row.dataset, row.our_method)]
            epochs, scales = members[0].epochs, [member.image_size_px for member in members]
        else:
            seeds = grid.seeds_of(row.dataset, row.our_method)
            known = row.our_method in grid.methods  # else: costed with the dataset's experiment
            experiment = make_config(grid.settings(row.dataset, row.our_method, seeds[0]) if known else
                                     {**(grid.datasets[row.dataset].get("experiment") or {}), "seed": seeds[0]})
            epochs = experiment.epochs
            scales = multi_scales if row.scale == "multi" else [experiment.image_size_px]  # no `multiscale`: the paper's 7
        train_h, eval_h = run_hours(epochs, int(sizes.loc[row.dataset, "train_images"]),
                                    int(sizes.loc[row.dataset, "test_images"]), scales, throughput)
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


def format_budget(table: pd.DataFrame, throughput: Throughput) -> str:
    """The table as text, headed by the throughputs and where they come from."""
    origin = (f"measured on {throughput.source}" if throughput.source else
              "PLACEHOLDER, not a measurement: measure your card with `python benchmarks/throughput.py --json FILE` "
              "and pass --throughput FILE")
    header = (f"Throughput of one device (a GPU of the grid), WildcatNet(ResNet-101) at {REFERENCE_SIZE_PX} px: "
              f"{throughput.train_images_per_second:g} training and {throughput.eval_images_per_second:g} evaluation "
              f"images/s ({origin}).\nCost per image proportional to pixels; CRF and downloads not counted.")
    return header + "\n\n" + table.to_string(index=False)
