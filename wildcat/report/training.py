"""Training curves: ``training_<dataset>.png``, the loss of every run per epoch.

``wildcat train`` logs each epoch in ``train_log.csv`` (``wildcat.engine.train.LOG_COLUMNS``), and
the workflow keeps a copy beside the run's ``metrics.json`` in ``results/`` (docs/contracts.md),
so the report draws the curves without the trained models. A run without one (a multi-scale
combination, which trains nothing itself, or a result kept before the logs were) has no curve.

* :func:`load_train_logs` reads the ``train_log.csv`` beside each run's ``metrics.json``.
* :func:`write_training_figures` draws one panel per logged curve (:data:`CURVES`): one colour
  per method, one line per seed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from wildcat.report.figures import _new_figure, _save_png
from wildcat.report.layout import ReportLayout
from wildcat.report.load import ResultsFormatError
from wildcat.report.names import DATASETS
from wildcat.report.tables import display_order

__all__ = ["TRAIN_LOG", "CURVES", "LOG_ROWS", "load_train_logs", "write_training_figures"]

#: The log kept beside a run's ``metrics.json``.
TRAIN_LOG = "train_log.csv"
#: The columns of a log that are drawn, with their axis labels: what the model learns and the
#: schedule that shapes it. The log's ``seconds`` and ``images_per_s`` measure the machine, not
#: the training, and are not drawn.
CURVES = {"loss": "training loss (mean over the epoch)", "lr": "learning rate (at the epoch's end)"}
#: The columns of :func:`load_train_logs`.
LOG_ROWS = ("dataset", "method", "seed", "epoch", "curve", "value")


def _read_log(path: Path) -> pd.DataFrame:
    """The ``epoch`` and :data:`CURVES` columns of one log, as numbers."""
    try:
        log = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as error:
        raise ResultsFormatError(f"{path}: not a CSV file ({error}); delete it and keep the run's log again") from None
    if "epoch" not in log.columns or "loss" not in log.columns:
        raise ResultsFormatError(f"{path}: expected the columns of `wildcat train`'s train_log.csv (epoch, loss, ...), "
                                 f"got {list(log.columns)}; delete it and keep the run's log again")
    columns = ["epoch", *(curve for curve in CURVES if curve in log.columns)]
    numbers = log[columns].apply(pd.to_numeric, errors="coerce")
    if numbers.isna().any().any():
        raise ResultsFormatError(f"{path}: a value of {', '.join(columns)} is not a number; delete it and keep the "
                                 "run's log again")
    return numbers


def load_train_logs(runs: pd.DataFrame, runs_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Read the ``train_log.csv`` beside the ``metrics.json`` of each run of ``runs``.

    Args:
        runs: rows of :func:`~wildcat.report.load.load_runs` of ``runs_dir`` (their ``path``).
        runs_dir: the folder the runs' paths are relative to.

    Returns:
        One row per (run, epoch, curve) with columns :data:`LOG_ROWS`; ``curve`` is a key of
        :data:`CURVES` that the log has. Runs without a log have no rows.

    Raises:
        ResultsFormatError: a log that is not ``wildcat train``'s.
    """
    frames = []
    for (dataset, method, seed, relative), _ in runs.groupby(["dataset", "method", "seed", "path"]):
        path = Path(runs_dir) / Path(relative).parent / TRAIN_LOG
        if not path.is_file():
            continue
        log = _read_log(path).melt(id_vars="epoch", var_name="curve", value_name="value")
        frames.append(log.assign(dataset=dataset, method=method, seed=int(seed)))
    if not frames:
        return pd.DataFrame(columns=list(LOG_ROWS))
    return pd.concat(frames, ignore_index=True)[list(LOG_ROWS)]


def write_training_figures(logs: pd.DataFrame, out_dir: str | os.PathLike[str], layout: ReportLayout) -> list[Path]:
    """Draw ``training_<dataset>.png`` in ``out_dir`` for each dataset of ``logs``.

    One panel per curve of :data:`CURVES` that the logs have, x = epoch; one colour per method
    (named by the layout's ``labels``; the layout's ``methods`` first), one line per seed. The
    same logs and library versions give the same bytes (see
    :func:`~wildcat.report.figures.write_figures`).

    Args:
        logs: :func:`load_train_logs` output (one config).
        out_dir: the figures folder.
        layout: the config's ``report`` block.

    Returns:
        The paths written.
    """
    import seaborn as sns

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for dataset in display_order(logs["dataset"].tolist(), DATASETS):
        data = logs[logs["dataset"] == dataset].sort_values(["method", "seed", "curve", "epoch"])
        known = dict.fromkeys([*layout.methods, *layout.extra_rows, *layout.ablation_bases])
        hue_order = [layout.label(method) for method in display_order(data["method"].tolist(), list(known))]
        data = data.assign(method=[layout.label(method) for method in data["method"]])
        curves = [curve for curve in CURVES if curve in set(data["curve"])]  # "loss" first: every log has it
        palette = dict(zip(hue_order, sns.color_palette("tab10" if len(hue_order) <= 10 else "husl", len(hue_order))))
        figure, axes = _new_figure(len(curves))
        figure.suptitle(f"{dataset}: training curves of every run (colour: method; one line per seed)",
                        fontsize="medium")
        for ax, curve in zip(axes, curves):
            part = data[data["curve"] == curve]
            shared = _shared_curve(part)
            if shared is None:
                # The layout's first methods drawn last, on top of the others.
                sns.lineplot(data=part, x="epoch", y="value", hue="method", hue_order=hue_order[::-1], palette=palette,
                             units="seed", estimator=None, marker="o", markersize=3, linewidth=1, alpha=0.8,
                             legend=ax is axes[0], ax=ax)
            else:  # e.g. the learning rate of one schedule: the runs' lines would hide each other
                ax.plot(shared.index, shared.to_numpy(), color="black", marker="o", markersize=3, linewidth=1,
                        label="every run (the same values)")
                ax.legend(fontsize="small", frameon=False)
            ax.set_title(CURVES[curve], fontsize="medium")
            ax.set_xlabel("epoch")
            ax.set_ylabel(curve)
        handles = dict(zip(*reversed(axes[0].get_legend_handles_labels())))
        if axes[0].get_legend() is not None:
            axes[0].get_legend().remove()
        shown = [label for label in hue_order if label in handles]
        figure.legend([handles[label] for label in shown], shown, loc="outside right upper", frameon=False,
                      title="method")
        path = out / f"training_{dataset}.png"
        _save_png(figure, path)
        written.append(path)
    return written


def _shared_curve(part: pd.DataFrame) -> pd.Series | None:
    """The values per epoch of one curve when every run of ``part`` (rows of one curve) logged the
    same ones, else None."""
    wide = part.pivot_table(index="epoch", columns=["method", "seed"], values="value")
    if wide.shape[1] < 2 or wide.isna().any().any() or not (wide.nunique(axis=1) == 1).all():
        return None
    return wide.iloc[:, 0]
