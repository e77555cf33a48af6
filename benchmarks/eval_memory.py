"""Peak memory of ``wildcat evaluate`` against the size of the test split (issue 18: COCO val2014,
paper Tables 4 and 8, is 40,504 images).

    .venv/bin/python benchmarks/eval_memory.py                        # 2,000 and 20,000 test images
    .venv/bin/python benchmarks/eval_memory.py --sizes 500 5000 --workdir /tmp/em --keep

Evaluation should hold, besides the model and one batch, only what its metrics need: the scores
``(N, C)`` float32, the map peaks ``(N, C, 2)`` (float64, as :func:`wildcat.eval.evaluate.peak_points`
gives them) and the confusion matrices; never the class maps nor anything else per image. This script:

1. writes one synthetic tree per size (:func:`wildcat.data.synthetic.make_synthetic`, small
   images). Every image has its own random stream, so the test images of a smaller size are the
   first ones of a larger size and the training images are the same in every tree;
2. trains a cnn6 WildcatNet (the ``wildcat`` method of config/config.yaml on ``synthetic``) for
   one epoch on the first tree (``wildcat train``) and gives each size a copy of that run folder
   whose ``config.yaml`` points at its own tree;
3. runs ``wildcat evaluate`` on each in a fresh process (classification, pointwise localization,
   segmentation with the dense CRF: everything the dataset supports), which reports its own peak
   resident set size: ``VmHWM`` of ``/proc/self/status``. Not ``ru_maxrss``: across
   ``fork`` + ``exec`` a child's ``ru_maxrss`` keeps the parent's peak (a child of a 1 GiB parent
   reports at least 1 GiB), so it would measure this script, not the evaluation;
4. prints each peak, the bytes of the metric arrays, the ratio of the largest to the smallest peak,
   the growth per extra image, and PASS/FAIL against the target (:func:`within_target`):
   ``peak(largest) <= 1.2 x peak(smallest) + (bytes of the metric arrays at the largest size - at
   the smallest)``.

A peak counts what glibc's ``malloc`` holds, not only what the evaluation keeps: by default glibc
raises its mmap threshold to the size of the large buffers freed (batches, activations), then
serves them from a heap that a long run can fragment. ``wildcat evaluate`` therefore fixes the
threshold itself (:mod:`wildcat.engine.memory`), and what is left of the growth with N is what
the evaluation keeps.

Linux only (``/proc``). Nothing is downloaded; the weights' values do not change the memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from wildcat.data.synthetic import SyntheticSpec, make_synthetic
from wildcat.engine.config import load_config, load_yaml, make_config, save_config
from wildcat.grid import Grid

ROOT = Path(__file__).resolve().parents[1]
TRAIN_IMAGES = 64  # enough for one training epoch and the background tuning (seg_tune_split: train)
SLACK_FACTOR = 1.2

#: Run in the child: ``wildcat <argv[2:]>`` (with no arguments: only the imports of an evaluation),
#: then its peak RSS in kB written to ``argv[1]``.
_CHILD = """\
import sys
from pathlib import Path
import wildcat.eval.evaluate  # what every evaluation imports: torch, torchvision, the metrics
from wildcat.cli import main
status = main(sys.argv[2:]) if len(sys.argv) > 2 else 0
peak_kb = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
Path(sys.argv[1]).write_text(peak_kb)
sys.exit(status)
"""


def metric_array_bytes(num_images: int, num_classes: int) -> int:
    """Bytes of what the metrics of ``wildcat evaluate`` need per test split: the scores
    ``(N, C)`` float32 and the map peaks ``(N, C, 2)`` float64."""
    return num_images * num_classes * (4 + 2 * 8)


def within_target(peak_small: int, peak_large: int, extra_bytes: int, factor: float = SLACK_FACTOR) -> bool:
    """Whether the peak of the large test split stays within ``factor`` x the small split's peak
    plus the ``extra_bytes`` of the large split's metric arrays (all in bytes)."""
    return peak_large <= factor * peak_small + extra_bytes


def experiment_settings(data_root: Path, input_size_px: int) -> dict:
    """The ``wildcat`` method of config/config.yaml on ``synthetic``, for one epoch on ``data_root``
    at ``input_size_px``."""
    settings = Grid(load_yaml(ROOT / "config" / "config.yaml")).settings("synthetic", "wildcat", 0)
    return {**settings, "data_root": str(data_root), "image_size_px": input_size_px, "epochs": 1}


def write_tree(root: Path, image_size_px: int, num_classes: int, num_test: int) -> None:
    """The synthetic tree of ``num_test`` test images (and :data:`TRAIN_IMAGES` training ones)."""
    low, high = SyntheticSpec().part_size_frac
    low = max(low, 4 / image_size_px)  # parts of at least 4 px (the spec's rule)
    spec = SyntheticSpec(image_size_px=image_size_px, num_train=TRAIN_IMAGES, num_test=num_test,
                         num_classes=num_classes, num_shared_pairs=min(3, num_classes // 2),
                         part_size_frac=(low, max(low, high)))
    make_synthetic(root, spec, progress=True)


def copy_run(trained: Path, run: Path, data_root: Path) -> None:
    """A copy of the run folder ``trained`` whose config reads ``data_root``."""
    shutil.copytree(trained, run, dirs_exist_ok=True)
    config = load_config(trained / "config.yaml")
    save_config(dataclasses.replace(config, data_root=str(data_root)), run / "config.yaml")


def peak_rss(peak_file: Path, *command: str) -> int:
    """Peak resident bytes of a fresh process that runs ``wildcat <command>`` (none: the imports only)."""
    subprocess.run([sys.executable, "-c", _CHILD, str(peak_file), *command], check=True)
    return int(peak_file.read_text()) * 1024


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:8.1f} MiB"


def machine() -> str:
    """The CPU, its threads and the torch version (torch imported here only: the children measure)."""
    import torch

    spec = importlib.util.spec_from_file_location("throughput", Path(__file__).with_name("throughput.py"))
    throughput = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(throughput)
    return f"{throughput.device_name(torch.device('cpu'))}, torch {torch.__version__}"


def measure(work: Path, sizes: list[int], image_size_px: int, input_size_px: int, num_classes: int) -> dict[int, int]:
    """Peak resident bytes of the evaluation of each size (see the module docstring)."""
    for n in sizes:
        print(f"generating the tree of {n} test images ({image_size_px} px) ...", flush=True)
        write_tree(work / f"data_{n}", image_size_px, num_classes, n)
    trained = work / "run_trained"
    print(f"training a cnn6 WildcatNet for one epoch on {TRAIN_IMAGES} images ({input_size_px} px input) ...", flush=True)
    save_config(make_config(experiment_settings(work / f"data_{sizes[0]}", input_size_px)), work / "train.yaml")
    subprocess.run([sys.executable, "-m", "wildcat", "train", "--config", str(work / "train.yaml"),
                    "--out", str(trained), "--quiet"], check=True, stdout=subprocess.DEVNULL)
    peaks = {}
    for n in sizes:
        print(f"evaluating on {n} test images in a fresh process ...", flush=True)
        copy_run(trained, work / f"run_{n}", work / f"data_{n}")
        peaks[n] = peak_rss(work / f"peak_{n}.kb", "evaluate", "--run", str(work / f"run_{n}"),
                            "--out", str(work / f"metrics_{n}.json"), "--quiet")
        document = json.loads((work / f"metrics_{n}.json").read_text())
        if document["num_test_images"] != n:
            raise SystemExit(f"metrics_{n}.json counts {document['num_test_images']} test images, not {n}")
        print(f"  peak {mib(peaks[n])}; metrics: {', '.join(document['metrics'])}", flush=True)
    return peaks


def report(peaks: dict[int, int], floor: int, num_classes: int) -> bool:
    """Print the figures (``floor``: the peak of a process that only imports what an evaluation
    imports); True when the largest size meets the target."""
    small, large = min(peaks), max(peaks)
    print(f"\nimports only (torch, torchvision, wildcat.eval.evaluate): {mib(floor)}")
    print(f"{'test images':>12} {'peak RSS':>12} {'above imports':>14} {'scores (N, C) f32':>18} {'points (N, C, 2) f64':>21}")
    for n, peak in sorted(peaks.items()):
        print(f"{n:12d} {mib(peak)} {mib(peak - floor):>14} {mib(n * num_classes * 4):>18} {mib(n * num_classes * 16):>21}")
    extra = metric_array_bytes(large, num_classes) - metric_array_bytes(small, num_classes)
    limit = SLACK_FACTOR * peaks[small] + extra
    growth = (peaks[large] - peaks[small]) / (large - small)
    print(f"ratio peak({large}) / peak({small}): {peaks[large] / peaks[small]:.3f}")
    print(f"growth: {growth:,.0f} bytes per extra test image (the metric arrays need "
          f"{metric_array_bytes(1, num_classes)})")
    passed = within_target(peaks[small], peaks[large], extra)
    print(f"target peak({large}) <= {SLACK_FACTOR} x peak({small}) + {extra / 2**20:.1f} MiB of metric arrays "
          f"= {limit / 2**20:.1f} MiB: {'PASS' if passed else 'FAIL'}")
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000],
                        help="test split sizes; the largest is judged against the smallest (default: 2000 20000)")
    parser.add_argument("--image-size-px", type=int, default=32, help="side of the synthetic images (default: 32)")
    parser.add_argument("--input-size-px", type=int, default=96,
                        help="the model's input side (image_size_px of the run; default: 96, the default "
                             "workflow's: 12 x 12 class maps, large enough that keeping them per image shows)")
    parser.add_argument("--num-classes", type=int, default=12, help="synthetic classes, 2 to 12 (default: 12)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the trees, runs and metrics go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work folder (a rerun with the same --workdir reuses the trees)")
    args = parser.parse_args()
    sizes = sorted(set(args.sizes))
    if len(sizes) < 2 or sizes[0] < 1:
        parser.error("--sizes needs at least two different sizes >= 1")
    if not Path("/proc/self/status").is_file():
        parser.error("the peak memory is read from /proc/self/status: run on Linux")

    work = Path(tempfile.mkdtemp(prefix="eval_memory_")) if args.workdir is None else args.workdir / "eval_memory"
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}; {datetime.date.today().isoformat()}; work folder {work}", flush=True)
    try:
        peaks = measure(work, sizes, args.image_size_px, args.input_size_px, args.num_classes)
        passed = report(peaks, peak_rss(work / "peak_imports.kb"), args.num_classes)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
