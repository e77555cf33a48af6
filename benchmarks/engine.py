"""Speed of the engine on the embedded default (issue: engine benchmark).

Prints, from one run on one core:
1. training images/s (one epoch of WILDCAT on the default synthetic data, data loading included);
2. evaluation images/s on the test split and the share of evaluation time spent in the dense
   CRF versus the rest (forward pass, metrics);
3. the dense-CRF cost per image at 448 x 448 with 21 labels and the paper-scale parameters
   (target <= 1 s per core), and with the 3 labels that the evaluation gives it on an image with
   two present classes (background + the present classes: :func:`wildcat.eval.segmentation.crf_unaries`);
4. the segmentation scorer on such images with the CRF in this process and in 2 worker
   processes (``--crf-workers 2``; starting the workers included).

    python benchmarks/engine.py [--data data]   (generates the default dataset if missing)
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

import wildcat.eval.evaluate as evaluate_module
from wildcat.data.synthetic import make_synthetic
from wildcat.engine.config import make_config
from wildcat.engine.train import train
from wildcat.eval.crf import CRFParams, crf_refine
from wildcat.eval.segmentation import class_logits

ROOT = Path(__file__).resolve().parents[1]


def default_config(data_root: Path, epochs: int):
    """The `wildcat` method of config/config.yaml on the synthetic dataset."""
    workflow = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    settings = {**workflow["datasets"]["synthetic"]["experiment"], **workflow["methods"]["wildcat"]}
    return make_config({**settings, "data_root": str(data_root), "epochs": epochs})


def bench_train_and_evaluate(data_root: Path) -> None:
    make_synthetic(data_root)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        train(default_config(data_root, epochs=1), run, progress=False)
        with open(run / "train_log.csv") as handle:
            row = next(csv.DictReader(handle))
        print(f"1. training: {float(row['images_per_s']):.0f} images/s (1 epoch, {row['seconds']} s, data loading included)")

        crf_seconds = [0.0]
        original = evaluate_module.crf_refine

        def timed_crf(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                crf_seconds[0] += time.perf_counter() - start

        evaluate_module.crf_refine = timed_crf
        start = time.perf_counter()
        result = evaluate_module.evaluate(run, Path(tmp) / "metrics.json", progress=False)
        total = time.perf_counter() - start
        evaluate_module.crf_refine = original
        images = result["num_test_images"]
        print(f"2. evaluation: {images / total:.0f} images/s over {images} test images ({total:.1f} s, "
              f"background tuning on the training split included); dense CRF {crf_seconds[0]:.1f} s = "
              f"{100 * crf_seconds[0] / total:.0f}% of it, forward pass and metrics {100 * (1 - crf_seconds[0] / total):.0f}%")


def bench_crf(repeats: int) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (448, 448, 3), dtype=np.uint8)
    logits = torch.nn.functional.interpolate(torch.randn(1, 21, 14, 14), size=(448, 448), mode="bilinear")[0]
    params = CRFParams()  # 10 iterations, Gaussian 3/3, bilateral 80/13/10
    for num_labels, what in ((21, "21 labels"), (3, "3 labels (background + 2 present classes, as evaluated)")):
        probs = torch.softmax(3 * logits[:num_labels], dim=0).numpy()
        crf_refine(image, probs, params)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            crf_refine(image, probs, params)
            times.append(time.perf_counter() - start)
        print(f"3. dense CRF at 448x448, {what}, {params.iterations} iterations: "
              f"{np.median(times):.3f} s per image on one core (target <= 1 s)")


def bench_crf_workers(num_images: int) -> None:
    rng = np.random.default_rng(1)
    config = make_config({"dataset": "synthetic"})  # the paper-scale CRF parameters of bench_crf
    classes = [f"class{c}" for c in range(20)]
    items = []
    for _ in range(num_images):
        maps = torch.nn.functional.interpolate(torch.randn(1, 20, 14, 14), size=(448, 448), mode="bilinear")[0]
        scores = torch.full((20,), -1.0)
        scores[rng.choice(20, 2, replace=False)] = 1.0  # two present classes
        items.append((rng.integers(0, 256, (448, 448, 3), dtype=np.uint8), class_logits(maps, scores, (448, 448)),
                      rng.integers(0, 21, (448, 448))))
    seconds = {}
    for workers in (0, 2):
        start = time.perf_counter()
        scorer = evaluate_module.SegmentationScorer(classes, 0.5, config, crf_workers=workers)
        for rgb, logits, mask in items:
            scorer.add(rgb, logits, mask)
        scorer.result()
        seconds[workers] = time.perf_counter() - start
    print(f"4. segmentation scorer, {num_images} images 448x448 with 2 present classes, CRF {config.crf_iterations} "
          f"iterations: {seconds[0]:.1f} s in this process, {seconds[2]:.1f} s with --crf-workers 2 "
          f"({seconds[0] / seconds[2]:.2f}x, starting the workers included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "data")
    parser.add_argument("--crf-repeats", type=int, default=5)
    parser.add_argument("--crf-worker-images", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(1)
    bench_train_and_evaluate(args.data)
    bench_crf(args.crf_repeats)
    bench_crf_workers(args.crf_worker_images)


if __name__ == "__main__":
    main()
