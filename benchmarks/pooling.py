"""Speed of WILDCAT pooling and of a WildcatNet training step (issue: foundation benchmark).

Prints, measured in one run on the same inputs:
1. forward + backward time of ``WildcatPool2d`` (torch.topk) vs a straightforward full-sort
   implementation written here as the reference, at realistic sizes (N=16, C=20..80,
   14x14 and 28x28 maps). Target: >= 2x faster than the full sort.
2. train-step throughput of ``WildcatNet(resnet50)`` vs the bare torchvision resnet50 (global
   average pooling + fc) at the same input size. Target: >= 0.97x the bare backbone.

    python benchmarks/pooling.py [--image-size 224] [--batch 8] [--steps 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torchvision
from torch import Tensor

from wildcat.nn.model import WildcatNet
from wildcat.nn.pooling import WildcatPool2d
from wildcat.nn.regions import resolve_region_count


def full_sort_pool(x: Tensor, kmax: float, kmin: float, alpha: float) -> Tensor:
    """The reference: sort every class map completely, then average both ends."""
    n, c, h, w = x.shape
    n_max = resolve_region_count(kmax, h * w)
    n_min = resolve_region_count(kmin, h * w)
    ordered = x.reshape(n, c, h * w).sort(dim=2, descending=True).values
    return ordered[..., :n_max].mean(dim=2) + alpha * ordered[..., -n_min:].mean(dim=2)


def time_it(fn: Callable[[], None], repeats: int, warmup: int = 3) -> float:
    """Median seconds of ``fn`` over ``repeats`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def bench_pooling(repeats: int) -> None:
    print("1. spatial pooling, forward + backward, N=16, k+ = k- = 0.1 of the regions, alpha = 0.7")
    print(f"{'C':>4} {'map':>6} {'topk (ms)':>10} {'full sort (ms)':>15} {'speed-up':>9}")
    pool = WildcatPool2d(kmax=0.1, kmin=0.1, alpha=0.7)
    for side in (14, 28):
        for classes in (20, 40, 80):
            x = torch.randn(16, classes, side, side, requires_grad=True)
            assert torch.allclose(pool(x), full_sort_pool(x, 0.1, 0.1, 0.7), atol=1e-5)

            def ours(x: torch.Tensor = x) -> None:
                pool(x).sum().backward()

            def reference(x: torch.Tensor = x) -> None:
                full_sort_pool(x, 0.1, 0.1, 0.7).sum().backward()

            t_ours, t_ref = time_it(ours, repeats), time_it(reference, repeats)
            print(f"{classes:>4} {side:>3}x{side:<2} {1e3 * t_ours:>10.3f} {1e3 * t_ref:>15.3f} {t_ref / t_ours:>8.2f}x")


def train_step(model: torch.nn.Module, images: Tensor, targets: Tensor, optimizer: torch.optim.Optimizer) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss = torch.nn.functional.multilabel_soft_margin_loss(model(images), targets)
    loss.backward()
    optimizer.step()


def bench_model(image_size: int, batch: int, steps: int) -> None:
    print(f"\n2. train step (SGD), resnet50, batch {batch}, {image_size} px, 20 classes, {torch.get_num_threads()} threads")
    torch.manual_seed(0)
    images = torch.randn(batch, 3, image_size, image_size)
    targets = (torch.rand(batch, 20) > 0.8).float()
    bare = torchvision.models.resnet50(weights=None, num_classes=20)
    wildcat = WildcatNet(20, backbone="resnet50", num_maps=4, kmax=0.1, alpha=0.7)
    results = {}
    # Interleave the two models so that machine noise hits both alike.
    timings: dict[str, list[float]] = {"bare resnet50 + GAP + fc": [], "WildcatNet(resnet50), M=4": []}
    models = dict(zip(timings, (bare, wildcat)))
    optimizers = {name: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for name, m in models.items()}
    for name in timings:  # warm-up
        train_step(models[name], images, targets, optimizers[name])
    for _ in range(steps):
        for name in timings:
            start = time.perf_counter()
            train_step(models[name], images, targets, optimizers[name])
            timings[name].append(time.perf_counter() - start)
    for name, values in timings.items():
        median = sorted(values)[len(values) // 2]
        results[name] = batch / median
        print(f"{name:<28} {results[name]:8.2f} images/s")
    names = list(timings)
    print(f"ratio WildcatNet / bare: {results[names[1]] / results[names[0]]:.3f} (target >= 0.97)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    bench_pooling(args.repeats)
    bench_model(args.image_size, args.batch, args.steps)


if __name__ == "__main__":
    main()
