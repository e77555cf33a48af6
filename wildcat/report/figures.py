"""The report's figures, drawn with seaborn as PNG (:func:`write_figures`).

* ``alpha_<dataset>.png``: the influence of alpha around each ablation base, beside the paper's
  Figures 4-5 where the dataset matches.
* ``methods_<dataset>.png``: the layout's ``methods`` per metric (the config's ``report`` block).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from wildcat.io import atomic_path
from wildcat.report.layout import ReportLayout
from wildcat.report.names import DATASETS, METRICS
from wildcat.report.tables import ablation_runs, config_runs, display_order

__all__ = ["write_figures"]


def _save_png(figure: Any, path: Path) -> None:
    """Save a matplotlib Figure as PNG without the (version-stamped) Software tag, atomically."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100, metadata={"Software": None})


def _agg_figure(width_inches: float, height_inches: float) -> Any:
    """An empty matplotlib Figure on the Agg canvas (no pyplot state), constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_inches, height_inches), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _new_figure(num_panels: int) -> tuple[Any, list[Any]]:
    """A matplotlib Figure on the Agg canvas (no pyplot state) with ``num_panels`` axes in a row."""
    figure = _agg_figure(4.0 * num_panels, 3.4)
    axes = figure.subplots(1, num_panels, squeeze=False)[0]
    return figure, list(axes)


def _alpha_figures(runs: pd.DataFrame, paper: pd.DataFrame, bases: Sequence[str], out: Path) -> list[Path]:
    """``alpha_<dataset>.png`` for the alpha ablations around ``bases`` (see :func:`write_figures`)."""
    import seaborn as sns

    if not bases:
        return []
    chosen = pd.concat([ablation_runs(runs, base, "alpha") for base in bases], ignore_index=True)
    curves = paper[paper["table"].isin(("Figure 4", "Figure 5"))]
    written = []
    for dataset in display_order(chosen["dataset"].tolist(), DATASETS):
        ours = chosen[chosen["dataset"] == dataset]
        if ours.groupby("base")["alpha"].nunique().max() < 2:
            continue  # only the base itself: no alpha curve to draw
        metrics = display_order(ours["metric"].tolist(), METRICS)
        figure, axes = _new_figure(len(metrics))
        for ax, metric in zip(axes, metrics):
            data = ours[ours["metric"] == metric].sort_values(["base", "alpha", "seed"])
            hue_order = display_order(data["base"].tolist(), bases)
            sns.lineplot(data=data, x="alpha", y="value", hue="base", hue_order=hue_order, marker="o", errorbar="sd",
                         err_style="bars", ax=ax)
            sns.scatterplot(data=data, x="alpha", y="value", hue="base", hue_order=hue_order, marker="x", s=25,
                            alpha=0.6, legend=False, ax=ax)  # every seed
            published = curves[(curves["dataset"] == dataset) & (curves["metric"] == metric)].sort_values("alpha")
            if not published.empty:
                source = " / ".join(dict.fromkeys(published["table"]))
                ax.plot(published["alpha"], published["value"], linestyle="--", color="black",
                        label=f"paper {source} (448 px, k = 1, M = 1)")
                ax.legend(fontsize="small")
            ax.set_title(f"{dataset}: {metric}")
            ax.set_xlabel("alpha (mean ± sd; x: seeds)")
            ax.set_ylabel(f"{metric} (%)")
        path = out / f"alpha_{dataset}.png"
        _save_png(figure, path)
        written.append(path)
    return written


def _methods_figures(runs: pd.DataFrame, methods: Sequence[str], out: Path) -> list[Path]:
    """``methods_<dataset>.png`` for ``methods`` (see :func:`write_figures`)."""
    import seaborn as sns

    grid = runs[runs["method"].isin(methods)]
    written = []
    for dataset in display_order(grid["dataset"].tolist(), DATASETS):
        data = grid[grid["dataset"] == dataset].sort_values(["metric", "method", "seed"])
        metric_order = display_order(data["metric"].tolist(), METRICS)
        hue_order = [m for m in methods if m in set(data["method"])]
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


def write_figures(runs: pd.DataFrame, paper: pd.DataFrame, out_dir: str | os.PathLike[str], layout: ReportLayout,
                  config_name: str | None = None) -> list[Path]:
    """Draw the report's figures as PNG in ``out_dir`` (Agg canvas, no pyplot state).

    * ``alpha_<dataset>.png``: one panel per metric, our alpha curves (one line per base of the
      layout's ``ablation_bases``, whiskers = sd over seeds, crosses = the seeds) and, where the dataset matches, the
      paper's Figure 4/5 curve (dashed); drawn for a dataset where some base was run with at
      least two values of alpha.
    * ``methods_<dataset>.png``: the layout's ``methods`` per metric (bars: mean over seeds,
      whiskers: sd, dots: the seeds).

    A figure is drawn only for a dataset with runs for it. PNGs carry no Software/date stamp, so
    the same inputs and library versions give the same bytes.

    Args:
        runs: :func:`~wildcat.report.load.load_runs` output.
        paper: :func:`~wildcat.report.load.load_paper` output.
        out_dir: the figures folder.
        layout: which of our methods the figures show (the config's ``report`` block).
        config_name: the config to draw; ``None`` is allowed when ``runs`` holds only one.

    Returns:
        The paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ours = config_runs(runs, config_name)
    return [*_alpha_figures(ours, paper, layout.ablation_bases, out), *_methods_figures(ours, layout.methods, out)]
