"""Tables and figures from results: ``results/runs/**/metrics.json`` + ``results/paper/*.csv``.

The last room of the data flow: metrics -> tables, plots. One module a job:

* :mod:`~wildcat.report.load`: our runs (:func:`load_runs`, :func:`require_runs`), the
  paper's published numbers (:func:`load_paper`) and the runs' ``maps.npz`` (:func:`load_maps`).
* :mod:`~wildcat.report.layout`: which of a config's methods go in which table, the workflow
  config's ``report`` block (:class:`ReportLayout`).
* :mod:`~wildcat.report.tables`: the paper's tables with the paper's number and ours side by
  side, the ablation tables and our methods table (:func:`build_tables`, :func:`unused_runs`).
* :mod:`~wildcat.report.figures`: seaborn figures as PNG (:func:`write_figures`);
  :mod:`~wildcat.report.gallery` and :mod:`~wildcat.report.modalities`: what the maps do and
  whether the ``M`` maps of a class learn its modalities (figures and the ``modalities`` table).
* :mod:`~wildcat.report.writers`: Markdown, CSV and LaTeX (:func:`write_tables`) and a whole
  report folder, whole or not at all (:func:`write_report`).
* :mod:`~wildcat.report.names`: dataset, metric and table ids; :mod:`~wildcat.report.recipe`:
  the paper's recipe of a run; :mod:`~wildcat.report.compare`: ``wildcat compare``'s verdicts.

The names below are importable from here and load their module (and pandas) on first use, so
that the torch- and pandas-free modules (``names``, ``layout``) stay light for the Snakefile.
"""

from importlib import import_module
from typing import Any

_LAZY = {
    **dict.fromkeys(("DATASETS", "METRICS", "TABLE_NAMES"), "wildcat.report.names"),
    "ReportLayout": "wildcat.report.layout",
    **dict.fromkeys(("RUN_COLUMNS", "PAPER_COLUMNS", "ResultsFormatError", "read_metrics_json", "load_runs",
                     "require_runs", "load_paper", "load_maps"), "wildcat.report.load"),
    **dict.fromkeys(("NOT_RUN", "NO_PAPER_VALUE", "NOT_APPLICABLE", "SIDE_BY_SIDE_COLUMNS", "format_ours",
                     "format_paper", "method_label", "ablation_runs", "build_tables", "unused_runs"),
                    "wildcat.report.tables"),
    "write_figures": "wildcat.report.figures",
    **dict.fromkeys(("write_tables", "write_report"), "wildcat.report.writers"),
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    """Import a re-exported name's module on first use (PEP 562)."""
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'wildcat.report' has no attribute {name!r}")
