"""Writers: each table as Markdown, CSV and LaTeX (:func:`write_tables`), and a whole report
folder, tables and figures, written whole or not at all (:func:`write_report`).

Every file is UTF-8 with ``\\n`` newlines, written through :mod:`wildcat.io`'s atomic helpers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from wildcat.errors import WildcatError
from wildcat.io import atomic_dir, atomic_path
from wildcat.report.figures import write_figures
from wildcat.report.gallery import gallery_figures
from wildcat.report.layout import ReportLayout
from wildcat.report.load import load_maps
from wildcat.report.modalities import modalities_figures
from wildcat.report.names import TABLE_NAMES
from wildcat.report.per_class import load_per_class
from wildcat.report.recipe import PaperRecipes
from wildcat.report.tables import NO_PAPER_VALUE, NOT_APPLICABLE, NOT_RUN, build_tables, config_runs
from wildcat.report.training import load_train_logs, write_training_figures

__all__ = ["write_tables", "write_report"]

# The files of each table (write_tables) and the folder of the figures (write_report).
_TABLE_SUFFIXES = (".md", ".csv", ".tex")
_FIGURES_DIR = "figures"

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
    string), so regenerating from the same results gives the same bytes. Each file is written
    atomically; :func:`write_report` writes a whole report atomically.

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
            with atomic_path(path) as tmp:
                tmp.write_bytes(text.encode("utf-8"))  # UTF-8 with \n newlines on every platform
            written.append(path)
    return written


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
                 layout: ReportLayout, recipes: PaperRecipes | None = None,
                 tolerance: float | None = None, runs_dir: str | os.PathLike[str] | None = None) -> dict[str, pd.DataFrame]:
    """Write the report of ``config_name`` as the folder ``out_dir``, whole or not at all.

    The tables (:func:`write_tables`) and ``figures/`` (:func:`~wildcat.report.figures.write_figures` and
    :func:`~wildcat.report.training.write_training_figures`, and from the runs' ``maps.npz``
    :func:`~wildcat.report.gallery.gallery_figures` and :func:`~wildcat.report.modalities.modalities_figures`)
    are built in a temporary folder beside ``out_dir``, which then takes the place of the old report
    (:func:`wildcat.io.atomic_dir`): an error midway leaves the old report as it was, and no
    file of the old report stays beside the new one.

    Args:
        runs: :func:`~wildcat.report.load.load_runs` output.
        paper: :func:`~wildcat.report.load.load_paper` output.
        config_name: the config to report.
        out_dir: the report folder, e.g. ``reports/default``.
        layout, recipes, tolerance: see :func:`~wildcat.report.tables.build_tables`.
        runs_dir: the folder the runs' ``path`` is relative to (:func:`~wildcat.report.load.load_runs`):
            the ``per_class`` table reads each run's ``metrics.json`` there and the training curves
            (``training_<dataset>.png``, :mod:`wildcat.report.training`) the ``train_log.csv``
            beside it, the ``modalities`` table and the gallery and modality figures the ``maps.npz``
            beside it where there is one. None: none is read (no per-class or modality rows, no
            training curves, gallery or modality figures).

    Returns:
        The tables written (:func:`~wildcat.report.tables.build_tables`).

    Raises:
        WildcatError: ``out_dir`` is a file, or holds files that a report does not write.
    """
    out = Path(out_dir)
    _check_replaceable(out)
    ours = config_runs(runs, config_name)
    per_class = load_per_class(ours, runs_dir) if runs_dir is not None else None
    logs = load_train_logs(ours, runs_dir) if runs_dir is not None else None
    maps = load_maps(ours, runs_dir) if runs_dir is not None else {}
    tables = build_tables(runs, paper, config_name, layout, recipes, tolerance, per_class, maps)
    with atomic_dir(out) as tmp:
        write_tables(tables, tmp)
        write_figures(runs, paper, tmp / _FIGURES_DIR, layout, config_name=config_name)
        if logs is not None:
            write_training_figures(logs, tmp / _FIGURES_DIR, layout)
        gallery_figures(maps, config_name, layout, tmp / _FIGURES_DIR)
        modalities_figures(maps, config_name, layout, tmp / _FIGURES_DIR)
    return tables
