"""The ``wildcat`` command: ``make-synthetic | download | train | evaluate | combine | budget | compare | report``.

Each subcommand is a thin layer over a library function; user mistakes (a bad config value, a
missing dataset or run) end with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wildcat import __version__
from wildcat.engine.config import FIELDS, ConfigError, ExperimentConfig, load_config
from wildcat.errors import WildcatError, WildcatWarning
from wildcat.grid import option_flag

EPILOG = """examples:
  wildcat make-synthetic --root data
  wildcat train --dataset synthetic --backbone cnn6 --weights null --image-size-px 96 --out runs/demo
  wildcat evaluate --run runs/demo --out runs/demo/metrics.json
  wildcat combine --runs runs/s224 runs/s448 --out runs/multiscale/metrics.json
  wildcat download voc2007 --root data
  wildcat report --runs results/runs --paper results/paper --config-name default --out reports/default
  wildcat compare results/runs/default fresh/results/runs/default
"""


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """One ``--key`` option per ExperimentConfig field (values in YAML syntax)."""
    group = parser.add_argument_group("experiment settings (override the --config file; YAML values)")
    defaults = ExperimentConfig()
    for name in FIELDS:
        group.add_argument(option_flag(name), dest=f"set_{name}", metavar="VALUE",
                           help=f"default: {getattr(defaults, name)!r}")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, f"set_{name}") for name in FIELDS if getattr(args, f"set_{name}") is not None}


def _cmd_make_synthetic(args: argparse.Namespace) -> None:
    from wildcat.data.synthetic import SyntheticSpec, make_synthetic

    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(SyntheticSpec) if getattr(args, f.name) is not None}
    path = make_synthetic(args.root, SyntheticSpec(**options), progress=not args.quiet)
    print(path)


class _SyntheticRange:
    """The argparse type of a range option: ``LOW,HIGH`` or ``[LOW, HIGH]`` (how
    ``wildcat.grid.cli_options`` writes a YAML list) to a pair of ``kind``."""

    def __init__(self, kind: type) -> None:
        self.kind = kind
        self.__name__ = f"{kind.__name__} range"  # argparse's message: "invalid int range value: ..."

    def __call__(self, text: str) -> tuple[Any, Any]:
        items = text.strip().removeprefix("[").removesuffix("]").split(",")
        if len(items) != 2:
            raise ValueError(text)
        return self.kind(items[0]), self.kind(items[1])


def _add_synthetic_options(parser: argparse.ArgumentParser) -> None:
    """One option per SyntheticSpec field, spelled as ``wildcat.grid.cli_options`` spells the
    field's key (``image_size_px`` -> ``--image-size-px``); the help is the field's ``help``
    metadata. An option left out keeps the field's default."""
    import typing

    from wildcat.data.synthetic import SyntheticSpec

    group = parser.add_argument_group("generator options (SyntheticSpec fields; docs/synthetic.md)")
    types = typing.get_type_hints(SyntheticSpec)
    for f in dataclasses.fields(SyntheticSpec):
        kind = types[f.name]
        if typing.get_origin(kind) is tuple:
            element = typing.get_args(kind)[0]
            parse, metavar, default = _SyntheticRange(element), "LOW,HIGH", ",".join(map(str, f.default))
        else:
            parse, metavar, default = kind, kind.__name__.upper(), f.default
        group.add_argument(option_flag(f.name), dest=f.name, type=parse, metavar=metavar,
                           help=f"{f.metadata['help']} (default: {default})")


def _cmd_download(args: argparse.Namespace) -> None:
    from wildcat.data.download import download_dataset, list_datasets

    if args.list:
        rows = list_datasets(args.root)
        width = max(len(row["name"]) for row in rows)
        checksums_width = max(len(row["checksums"]) for row in rows)
        for row in rows:
            print(f"{row['name']:<{width}}  {row['size']:>10}  {row['status']:<12}  "
                  f"{row['checksums']:<{checksums_width}}  {row['license']}")
        return
    if not args.dataset:
        raise ConfigError("name a dataset (or 'all'), or pass --list")
    if args.dataset == "all" and args.checksums is not None:
        raise ConfigError("--checksums lists the files of one dataset: name that dataset instead of 'all'")
    names = [row["name"] for row in list_datasets(args.root)] if args.dataset == "all" else [args.dataset]
    for name in names:
        print(download_dataset(name, args.root, archive=args.archive, checksums=args.checksums,
                               progress=not args.quiet))


def _cmd_train(args: argparse.Namespace) -> None:
    from wildcat.engine.train import train

    config = load_config(args.config, _overrides(args))
    print(train(config, args.out, resume=not args.restart, progress=not args.quiet,
                restart_if_changed=args.restart_if_changed))


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from wildcat.eval.evaluate import evaluate

    result = evaluate(args.run, args.out, identity=_identity(args), progress=not args.quiet, crf_workers=args.crf_workers)
    print(" ".join(f"{k}={v}" for k, v in result["metrics"].items()))


def _identity(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in (("config_name", args.config_name), ("dataset", args.dataset_id),
                              ("method", args.method), ("seed", args.seed)) if v is not None}


def _add_identity_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config-name", help="recorded in metrics.json (e.g. default)")
    parser.add_argument("--dataset-id", help="recorded in metrics.json")
    parser.add_argument("--method", help="recorded in metrics.json (e.g. wildcat, m1, gmp)")
    parser.add_argument("--seed", type=int, help="recorded in metrics.json")


def _worker_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"bad value {text!r}: give a number of processes >= 0")
    return value


def _add_crf_workers_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--crf-workers", type=_worker_count, default=0, metavar="N",
                        help="dense-CRF worker processes (pydensecrf is single-threaded: one per free core speeds up "
                             "segmentation; the metrics do not change); 0 or 1: in this process (default 0)")


def _cmd_combine(args: argparse.Namespace) -> None:
    from wildcat.eval.combine import combine

    result = combine(args.runs, args.out, identity=_identity(args), scores_out=args.scores_out, progress=not args.quiet,
                     crf_workers=args.crf_workers)
    print(" ".join(f"{k}={v}" for k, v in result["metrics"].items()))


#: The workflow config whose ``report`` block `wildcat report` uses when given no --layout.
DEFAULT_WORKFLOW_CONFIG = Path("config/config.yaml")


def _cmd_report(args: argparse.Namespace) -> None:
    from wildcat import report
    from wildcat.report.recipe import PaperRecipes

    layout = (report.ReportLayout.from_json(args.layout) if args.layout is not None
              else report.ReportLayout.from_workflow_config(DEFAULT_WORKFLOW_CONFIG))
    runs = report.load_runs(args.runs, args.metrics)
    report.require_runs(runs, args.config_name, args.runs)
    tables = report.write_report(runs, report.load_paper(args.paper), args.config_name, args.out, layout,
                                 PaperRecipes(args.paper_recipe), args.tolerance, runs_dir=args.runs)
    for run in report.unused_runs(runs, tables, args.config_name):
        print(f"wildcat report: note: {run} is in no table: the layout lists its method nowhere, or its settings "
              "fit no ablation (docs/contracts.md, The report)", file=sys.stderr)
    print(args.out)


def _cmd_compare(args: argparse.Namespace) -> int:
    from wildcat.report import compare

    rows, machine = compare.compare(args.reference, args.candidate)
    print(compare.format_markdown(rows, machine, str(args.reference), str(args.candidate)), end="")
    if args.json:
        compare.write_json(rows, machine, args.json)
    return compare.exit_status(rows)


def _cmd_budget(args: argparse.Namespace) -> None:
    from wildcat import budget

    if args.throughput:
        throughput = budget.load_throughput(args.throughput)
    elif args.images_per_second:
        throughput = budget.Throughput(args.images_per_second, args.images_per_second * args.eval_speedup,
                                       args.measured_on or "not stated")
    else:
        throughput = budget.PLACEHOLDER
    print(budget.format_budget(budget.budget_table(args.config, throughput, args.paper), throughput))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wildcat",
        description="WILDCAT (Durand et al., CVPR 2017) reproduction suite: data, training, evaluation, reports.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wildcat-bench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("make-synthetic", help="write the embedded synthetic dataset (VOC layout)")
    p.add_argument("--root", required=True, type=Path, help="data folder (the tree goes to ROOT/VOCdevkit/VOCsynthetic)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_synthetic_options(p)
    p.set_defaults(func=_cmd_make_synthetic)

    p = sub.add_parser("download", help="download, verify and extract a real dataset")
    p.add_argument("dataset", nargs="?", help="dataset name, or 'all'")
    p.add_argument("--root", type=Path, default=Path("data"), help="data folder (default: data)")
    p.add_argument("--archive", type=Path, nargs="+", action="extend", metavar="FILE",
                   help="use these already-downloaded files instead of the URLs (matched by name, else by checksum)")
    p.add_argument("--checksums", type=Path, metavar="FILE",
                   help='verify the files this JSON lists against its digests instead of the official ones: '
                        '{"<file>": {"md5": "<hex>", "sha1": "<hex>", "size_bytes": <int>}} (md5 or sha1; a re-packed '
                        'copy you trust; recorded in the markers and the runs\' provenance; docs/datasets.md)')
    p.add_argument("--list", action="store_true",
                   help="list the datasets, their size, status on disk, checksums verified and terms")
    p.add_argument("--quiet", action="store_true", help="no progress bars (the workflow's logs)")
    p.set_defaults(func=_cmd_download)

    p = sub.add_parser("train", help="train a WildcatNet (resumes an interrupted run)")
    p.add_argument("--config", type=Path, help="experiment YAML (keys: see the options below)")
    p.add_argument("--out", required=True, type=Path, help="run folder: config.yaml, checkpoint.pt, train_log.csv, model.pt")
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint and start over")
    p.add_argument("--restart-if-changed", action="store_true",
                   help="if the run folder holds another experiment (settings that change the weights differ), start "
                        "over there instead of stopping with an error (the workflow's choice); a resume only ever "
                        "continues the same experiment")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_config_options(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="classification, localization and segmentation metrics of a run")
    p.add_argument("--run", required=True, type=Path, help="a finished `wildcat train` folder")
    p.add_argument("--out", required=True, type=Path, help="metrics.json to write")
    _add_identity_options(p)
    _add_crf_workers_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("combine", help="multi-scale model: Object Bank combination of per-scale runs (paper Sec. 4.1)")
    p.add_argument("--runs", required=True, nargs="+", type=Path, metavar="RUN",
                   help="finished `wildcat train` folders, one per scale (same dataset and splits)")
    p.add_argument("--out", required=True, type=Path, help="metrics.json to write")
    p.add_argument("--scores-out", type=Path, help="also write the combined test scores and points (.npz)")
    _add_identity_options(p)
    _add_crf_workers_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_combine)

    p = sub.add_parser("budget", help="GPU-hours per paper table of a workflow config, from a measured throughput")
    p.add_argument("--config", type=Path, default=Path("config/paper.yaml"), help="workflow config (default: config/paper.yaml)")
    p.add_argument("--paper", type=Path, default=Path("results/paper"),
                   help="folder of the paper's tables, with its dataset sizes and scales (default: results/paper)")
    measured = p.add_mutually_exclusive_group()
    measured.add_argument("--throughput", type=Path, metavar="FILE",
                          help="the JSON that `python benchmarks/throughput.py --json FILE` wrote on the card that will run "
                               "the grid (training and evaluation images/s, the card's name); default: a placeholder")
    measured.add_argument("--images-per-second", type=float, default=None,
                          help="or give one GPU's training images/s at 448 px by hand")
    p.add_argument("--measured-on", help="with --images-per-second: the card and command it comes from (printed)")
    p.add_argument("--eval-speedup", type=float, default=3.0,
                   help="with --images-per-second: evaluation images/s relative to training (default 3)")
    p.set_defaults(func=_cmd_budget)

    p = sub.add_parser(
        "compare", help="did CANDIDATE's results reproduce REFERENCE's? (exit 0: every row reproduced)",
        description="Compare two config results folders (<dataset>/<method>/seed<k>/metrics.json), e.g. the committed "
                    "results/runs/default and a fresh run's: per dataset, method and metric, both sides' mean ± std over "
                    "seeds, the difference and a verdict: reproduced, differs (Welch's t-test at 5%%, never under 1 "
                    "point), inconclusive (under 2 seeds a side), missing, not comparable (other settings or test "
                    "split). The rule: docs/reproduction.md. Exit status 0 when every row is reproduced, 1 otherwise, "
                    "2 for a usage error.")
    p.add_argument("reference", type=Path, help="the results folder of one config (e.g. results/runs/default)")
    p.add_argument("candidate", type=Path, help="the results folder to judge")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the rows as JSON")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("report", help="tables (md, csv, tex) and figures from cached results",
                       description="The paper's tables with our numbers beside the published ones, our ablations "
                                   "and methods, and figures, written as one folder (docs/contracts.md, The report).")
    p.add_argument("--runs", type=Path, default=Path("results/runs"),
                   help="folder of <config>/<dataset>/<method>/seed<k>/metrics.json files (default: results/runs)")
    p.add_argument("--metrics", type=Path, nargs="*", metavar="FILE",
                   help="read exactly these metrics.json files, each under --runs (the workflow gives the ones its "
                        "config declares, so that a file left behind by a method removed from the config is not "
                        "read); default: every metrics.json under --runs")
    p.add_argument("--layout", metavar="JSON",
                   help="which methods go in which table: a workflow config's `report` block as a JSON object, with "
                        "methods, extra_rows, ablation_bases, paper_ablation_base, labels (docs/contracts.md, The "
                        "report); the workflow passes its config's (default: the block of "
                        f"{DEFAULT_WORKFLOW_CONFIG})")
    p.add_argument("--paper", type=Path, default=Path("results/paper"), help="the paper's published numbers")
    p.add_argument("--config-name", default="default", help="which config's runs to report")
    p.add_argument("--paper-recipe", type=Path, default=Path("config/paper.yaml"), metavar="CONFIG",
                   help="the workflow config whose settings are the paper's recipe: a run that does not follow it "
                        "(backbone, weights, image size or scales, epochs, training split) never stands under the "
                        "paper's 'ours' (default: config/paper.yaml)")
    p.add_argument("--tolerance", type=float, default=2.0, metavar="POINTS",
                   help="a paper row's verdict: 'within' when our mean is within POINTS of the paper's number "
                        "(default 2; the workflow passes its paper_tolerance)")
    p.add_argument("--out", type=Path, required=True, help="output folder (tables; figures in OUT/figures)")
    p.set_defaults(func=_cmd_report)
    return parser


_format_warning = warnings.formatwarning


def _one_line_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> str:
    """wildcat's own warnings as one line; others as Python formats them."""
    if issubclass(category, WildcatWarning):
        return f"wildcat: warning: {message}\n"
    return _format_warning(message, category, *args, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    warnings.formatwarning = _one_line_warning
    try:
        status = args.func(args) or 0
        sys.stdout.flush()
    except BrokenPipeError:  # `wildcat ... | head`: the reader has gone; what it read is all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except (WildcatError, FileNotFoundError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"wildcat {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"wildcat {args.command}: interrupted (a training run resumes from its last checkpoint)", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
