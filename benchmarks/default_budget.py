"""CPU budget of the embedded default (issue: synthetic default; targets in the README).

Reads the Snakemake ``benchmark:`` files of the last default workflow run
(``logs/default/benchmark/``, written by ``snakemake --cores 2``) and prints the generation
time, the sum and the critical-path estimate of the training and evaluation jobs, and the wall
time of the run from Snakemake's log. Targets: generation <= 30 s; all default trainings
together <= 8 min on 2 cores (two jobs at a time); the whole DAG <= 10 min.

    snakemake --cores 2 && python benchmarks/default_budget.py
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime
from pathlib import Path

import pandas as pd


def job_seconds(folder: Path) -> pd.Series:
    """Seconds of every job whose Snakemake benchmark TSV lies under ``folder``."""
    rows = {str(path.relative_to(folder)): pd.read_csv(path, sep="\t")["s"].iloc[0] for path in sorted(folder.rglob("*.tsv"))}
    return pd.Series(rows, dtype=float)


def wall_seconds(log_dir: Path) -> float | None:
    """Wall time of the newest Snakemake run (first to last timestamp of its log)."""
    logs = sorted(log_dir.glob("*.snakemake.log"))
    if not logs:
        return None
    stamps = re.findall(r"^\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]", logs[-1].read_text(), re.MULTILINE)
    if len(stamps) < 2:
        return None
    times = [datetime.strptime(" ".join(s.split()), "%a %b %d %H:%M:%S %Y") for s in stamps]
    return (times[-1] - times[0]).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmarks", type=Path, default=Path("logs/default/benchmark"))
    parser.add_argument("--snakemake-logs", type=Path, default=Path(".snakemake/log"))
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    if not args.benchmarks.is_dir():
        raise SystemExit(f"{args.benchmarks} does not exist: run `snakemake --cores 2` first")
    generation = job_seconds(args.benchmarks).filter(like="make_synthetic").sum()
    train = job_seconds(args.benchmarks / "train")
    evaluate = job_seconds(args.benchmarks / "evaluate")
    print(f"generation of the synthetic dataset: {generation:7.1f} s   (target <= 30 s)")
    print(f"training jobs: {len(train):2d}, {train.sum():7.1f} job-s, {train.sum() / args.cores / 60:5.2f} min "
          f"on {args.cores} cores   (target <= 8 min); per job {train.min():.0f}-{train.max():.0f} s")
    print(f"evaluation jobs: {len(evaluate):2d}, {evaluate.sum():7.1f} job-s, {evaluate.sum() / args.cores / 60:5.2f} min "
          f"on {args.cores} cores; per job {evaluate.min():.0f}-{evaluate.max():.0f} s")
    wall = wall_seconds(args.snakemake_logs)
    if wall is not None:
        print(f"whole workflow (newest Snakemake log): {wall / 60:5.2f} min   (target <= 10 min)")


if __name__ == "__main__":
    main()
