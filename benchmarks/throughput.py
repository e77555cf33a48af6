"""Training throughput of WildcatNet(ResNet-101, 448 px) against the bare backbone, and of the input pipeline.

    .venv/bin/python benchmarks/throughput.py                      # CPU: small batch, few steps
    .venv/bin/python benchmarks/throughput.py --batch-size 16 --steps 20   # on a GPU

Prints, in one run:

1. train images/s (forward + backward + SGD step) of WildcatNet(ResNet-101, M = 4, k = 20 of 196,
   alpha = 0.7, 20 classes) and of torchvision's ResNet-101 with global average pooling and a
   20-way linear layer, and their ratio (target >= 0.97 on the CPU, >= 0.95 on a GPU);
2. the same with bfloat16 autocast + channels_last when CUDA is present (skipped otherwise);
3. the input pipeline (JPEG decode + warp to 448 x 448 + flip + normalise) in images/s on one
   core: PIL (the training default, :func:`wildcat.data.transforms.train_transform`) against
   ``torchvision.io.decode_jpeg`` on the CPU (and on the GPU when present), on generated
   500 x 375 JPEGs (the size of a typical VOC image).

Weights are random (nothing is downloaded): the speed does not depend on them. The two models
alternate, in rounds, so that a slow-down of a shared machine hits both alike.
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import time

import numpy as np
import torch
import torchvision
from PIL import Image
from torch import nn
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from wildcat.data.transforms import IMAGENET_MEAN, IMAGENET_STD, train_transform
from wildcat.model import WildcatNet


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_rate(model: nn.Module, device: torch.device, batch_size: int, steps: int, size_px: int,
               amp: bool = False, channels_last: bool = False) -> float:
    """Images/s of ``steps`` SGD steps (after one warm-up step) on random ``(B, 3, size, size)`` input."""
    model = model.to(device).train()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    images = torch.randn(batch_size, 3, size_px, size_px, device=device).contiguous(memory_format=memory_format)
    targets = (torch.rand(batch_size, 20, device=device) > 0.8).float()

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            scores = model(images)
        loss = nn.functional.binary_cross_entropy_with_logits(scores.float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up (cuDNN autotuning, allocator)
    _sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return batch_size * steps / (time.perf_counter() - started)


def compare_models(device: torch.device, batch_size: int, steps: int, rounds: int, size_px: int, **kwargs) -> None:
    torch.manual_seed(0)
    wildcat = WildcatNet(20, backbone="resnet101", weights=None, num_maps=4, kmax=20, kmin=None, alpha=0.7)
    bare = torchvision.models.resnet101(num_classes=20)  # global average pooling + linear layer
    rates: dict[str, list[float]] = {"wildcat": [], "bare": []}
    for _ in range(rounds):
        rates["bare"].append(train_rate(bare, device, batch_size, steps, size_px, **kwargs))
        rates["wildcat"].append(train_rate(wildcat, device, batch_size, steps, size_px, **kwargs))
    w, b = statistics.median(rates["wildcat"]), statistics.median(rates["bare"])
    print(f"  WildcatNet(ResNet-101)          {w:8.2f} images/s   (rounds: {', '.join(f'{r:.2f}' for r in rates['wildcat'])})")
    print(f"  ResNet-101 + average pooling    {b:8.2f} images/s   (rounds: {', '.join(f'{r:.2f}' for r in rates['bare'])})")
    print(f"  ratio WildcatNet / bare         {w / b:8.3f}")


def make_jpegs(count: int, width: int = 500, height: int = 375, seed: int = 0) -> list[bytes]:
    """Smooth random images (noise upsampled from 1/8 size plus fine grain), JPEG quality 90:
    they compress like photographs (about 40-80 kB), not like pure noise."""
    rng = np.random.default_rng(seed)
    jpegs = []
    for _ in range(count):
        coarse = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
        grain = rng.normal(0, 6, (height, width, 3))
        pixels = np.clip(np.asarray(image, np.float64) + grain, 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        jpegs.append(buffer.getvalue())
    return jpegs


def pipeline_rates(jpegs: list[bytes], size_px: int, repeats: int, cuda: bool) -> dict[str, float]:
    """Images/s on one core of decode + warp + flip + normalise, for each decoder."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    pil = train_transform(size_px)
    tensor_ops = v2.Compose([
        v2.Resize((size_px, size_px), antialias=True), v2.RandomHorizontalFlip(),
        v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])

    def run_pil(data: bytes) -> torch.Tensor:
        with Image.open(io.BytesIO(data)) as image:
            return pil(image.convert("RGB"))

    def run_decode_jpeg(data: bytes) -> torch.Tensor:
        raw = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        return tensor_ops(torchvision.io.decode_jpeg(raw, mode=torchvision.io.ImageReadMode.RGB))

    candidates = {"PIL (default)": run_pil, "torchvision.io.decode_jpeg, CPU": run_decode_jpeg}
    rates: dict[str, float] = {}
    try:
        for name, run in candidates.items():
            run(jpegs[0])  # warm-up
            started = time.perf_counter()
            for _ in range(repeats):
                for data in jpegs:
                    run(data)
            rates[name] = repeats * len(jpegs) / (time.perf_counter() - started)
        if cuda:  # batched GPU decode: the CPU only reads the bytes
            raws = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in jpegs]
            torchvision.io.decode_jpeg(raws, device="cuda")
            torch.cuda.synchronize()
            started = time.perf_counter()
            for _ in range(repeats):
                images = torchvision.io.decode_jpeg(raws, device="cuda", mode=torchvision.io.ImageReadMode.RGB)
                [tensor_ops(image) for image in images]
            torch.cuda.synchronize()
            rates["torchvision.io.decode_jpeg, GPU"] = repeats * len(jpegs) / (time.perf_counter() - started)
    finally:
        torch.set_num_threads(threads)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=None, help="default: 16 on a GPU, 2 on the CPU")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per round (default: 20 on a GPU, 2 on the CPU)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per model (the median is printed)")
    parser.add_argument("--size-px", type=int, default=448)
    parser.add_argument("--jpegs", type=int, default=16, help="generated 500x375 JPEGs for the input pipeline")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    args = parser.parse_args()
    cuda = torch.cuda.is_available() and args.device != "cpu"
    device = torch.device("cuda" if cuda else "cpu")
    batch_size = args.batch_size or (16 if cuda else 2)
    steps = args.steps or (20 if cuda else 2)
    if cuda:
        torch.backends.cudnn.benchmark = True
    print(f"device: {device_name(device)}; torch {torch.__version__}, torchvision {torchvision.__version__}")
    print(f"train throughput, {args.size_px} px, batch {batch_size}, {steps} steps x {args.rounds} rounds, float32:")
    compare_models(device, batch_size, steps, args.rounds, args.size_px)
    if cuda:
        print("train throughput with bfloat16 autocast + channels_last:")
        compare_models(device, batch_size, steps, args.rounds, args.size_px, amp=True, channels_last=True)
    else:
        print("bfloat16 autocast + channels_last: skipped (no CUDA device)")
    jpegs = make_jpegs(args.jpegs)
    print(f"input pipeline, one core: decode + warp to {args.size_px} px + flip + normalise, "
          f"{len(jpegs)} JPEGs 500x375 (mean {np.mean([len(j) for j in jpegs]) / 1000:.0f} kB):")
    for name, rate in pipeline_rates(jpegs, args.size_px, repeats=5, cuda=cuda).items():
        print(f"  {name:34s} {rate:8.1f} images/s per core")


if __name__ == "__main__":
    main()
