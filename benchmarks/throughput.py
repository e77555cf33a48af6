"""Training throughput of WildcatNet(ResNet-101, 448 px) against the bare backbone, and of the input pipeline.

    .venv/bin/python benchmarks/throughput.py                      # CPU: batch 2, 2 steps x 3 rounds (~2-3 min on 2 cores)
    .venv/bin/python benchmarks/throughput.py --batch-size 16 --steps 20   # on a GPU
    .venv/bin/python benchmarks/throughput.py --compile            # + torch.compile (CPU: ~4.5 min to compile, 15 s from the inductor cache)
    .venv/bin/python benchmarks/throughput.py --json results/throughput/CARD.json   # + the figures as JSON, for `wildcat budget --throughput`

Prints, in one run:

1. train images/s (forward + backward + SGD step) of WildcatNet(ResNet-101, M = 4, k = 20 of 196,
   alpha = 0.7, 20 classes) and of torchvision's ResNet-101 with global average pooling and a
   20-way linear layer, and their ratio (target >= 0.97 on the CPU, >= 0.95 on a GPU); with
   ``--compile``, also WildcatNet under ``torch.compile``; and the evaluation images/s of
   WildcatNet (forward only, no gradients, float32: what ``wildcat evaluate`` runs);
2. the training figures with bfloat16 autocast + channels_last (``wildcat train``'s default on
   CUDA) when CUDA is present (skipped otherwise);
3. the input pipeline (read + decode + warp to 448 x 448 + flip + normalise: ``dataset[i]`` of an
   :class:`wildcat.data.base.ImageDataset` with :func:`wildcat.data.transforms.train_transform`)
   in images/s on one core (``torch.set_num_threads(1)``, as in a DataLoader worker):
   ``torchvision.io.decode_jpeg`` + tensor warp (the training default) against PIL decode + PIL
   warp (what a transform without ``accepts_uint8_tensor`` gets), and batched
   ``decode_jpeg`` on the GPU when present, on generated 500 x 375 JPEGs (the size of a typical
   VOC image).

Weights are random (nothing is downloaded): the speed does not depend on them. The models (and
the decoders) alternate, in rounds, the order reversed every other round; the median round is printed,
with each round's figure, and a ratio is the median of the per-round ratios, so that a slow-down
of a shared machine hits both sides of a ratio alike. ``--json PATH`` also writes the medians,
the device and the command: the measured input of ``wildcat budget --throughput PATH``
(:func:`wildcat.budget.load_throughput` reads it).
"""

from __future__ import annotations

import argparse
import datetime
import io
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from torch import nn

from wildcat.data.base import ImageDataset
from wildcat.data.transforms import train_transform
from wildcat.io import atomic_write_json
from wildcat.nn.model import WildcatNet

BARE, WILDCAT, COMPILED, EVALUATION = ("ResNet-101 + average pooling", "WildcatNet(ResNet-101)",
                                       "WildcatNet(ResNet-101), compiled", "WildcatNet(ResNet-101), evaluation")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:  # Linux: the marketing name ("AMD EPYC ...") rather than "x86_64"
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"CPU {model}, {torch.get_num_threads()} threads"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rounds(candidates: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Call each candidate once per round, in alternating order (A B, B A, ...): its rates."""
    rates: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            rates[name].append(candidates[name]())
    return rates


def _ratio(numerators: list[float], denominators: list[float]) -> float:
    """The median of the per-round ratios: each pairs two figures taken one after the other."""
    return statistics.median(n / d for n, d in zip(numerators, denominators))


def _line(label: str, rates: list[float], unit: str) -> str:
    return f"  {label:34s} {statistics.median(rates):8.2f} {unit}   (rounds: {', '.join(f'{r:.2f}' for r in rates)})"


class Timed:
    """Steps of ``model`` on random ``(B, 3, size, size)`` input; :meth:`rate` times ``steps`` of them."""

    def __init__(self, model: nn.Module, device: torch.device, batch_size: int, size_px: int,
                 amp: bool = False, channels_last: bool = False) -> None:
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(device).to(memory_format=memory_format)
        self.images = torch.randn(batch_size, 3, size_px, size_px, device=device).contiguous(memory_format=memory_format)
        self.device, self.amp, self.batch_size = device, amp, batch_size

    def step(self) -> None:
        raise NotImplementedError

    def warm_up(self) -> float:
        """One step (cuDNN autotuning, allocator, compilation); its duration in s."""
        started = time.perf_counter()
        self.step()
        _sync(self.device)
        return time.perf_counter() - started

    def rate(self, steps: int) -> float:
        _sync(self.device)
        started = time.perf_counter()
        for _ in range(steps):
            self.step()
        _sync(self.device)
        return self.batch_size * steps / (time.perf_counter() - started)


class Trainer(Timed):
    """SGD steps: forward (bfloat16 autocast with ``amp``), multi-label loss, backward, update."""

    def __init__(self, model: nn.Module, device: torch.device, batch_size: int, size_px: int, **kwargs) -> None:
        super().__init__(model.train(), device, batch_size, size_px, **kwargs)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=1e-3, momentum=0.9)
        self.targets = (torch.rand(batch_size, 20, device=device) > 0.8).float()

    def step(self) -> None:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            scores = self.model(self.images)
        loss = nn.functional.binary_cross_entropy_with_logits(scores.float(), self.targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


class Evaluator(Timed):
    """Evaluation steps as :func:`wildcat.eval.evaluate.forward_batches` runs them: eval mode, no
    gradients, float32, class maps and scores."""

    def __init__(self, model: WildcatNet, device: torch.device, batch_size: int, size_px: int) -> None:
        super().__init__(model.eval(), device, batch_size, size_px)

    def step(self) -> None:
        with torch.no_grad():
            self.model.maps_and_scores(self.images)


def wildcat_resnet101() -> WildcatNet:
    return WildcatNet(20, backbone="resnet101", weights=None, num_maps=4, kmax=20, kmin=None, alpha=0.7)


def compare_models(device: torch.device, batch_size: int, steps: int, rounds: int, size_px: int,
                   compile_model: bool = False, evaluation: bool = False, **kwargs) -> dict[str, list[float]]:
    """Print and return each model's images/s per round (see the module docstring); with
    ``evaluation``, also WildcatNet's forward-only evaluation step."""
    torch.manual_seed(0)
    timed: dict[str, Timed] = {
        BARE: Trainer(torchvision.models.resnet101(num_classes=20), device, batch_size, size_px, **kwargs),
        WILDCAT: Trainer(wildcat_resnet101(), device, batch_size, size_px, **kwargs),
    }
    if compile_model:
        timed[COMPILED] = Trainer(torch.compile(wildcat_resnet101()), device, batch_size, size_px, **kwargs)
    if evaluation:
        timed[EVALUATION] = Evaluator(wildcat_resnet101(), device, batch_size, size_px)
    first_step_s = {name: model.warm_up() for name, model in timed.items()}
    rates = _rounds({name: (lambda t=model: t.rate(steps)) for name, model in timed.items()}, rounds)
    for name, model_rates in rates.items():
        print(_line(name, model_rates, "images/s"))
    print(f"  {'ratio WildcatNet / bare':34s} {_ratio(rates[WILDCAT], rates[BARE]):8.3f}   (median of the per-round ratios)")
    if compile_model:
        print(f"  {'ratio compiled / eager WildcatNet':34s} {_ratio(rates[COMPILED], rates[WILDCAT]):8.3f}   "
              f"(first step, compiling: {first_step_s[COMPILED]:.0f} s)")
    return rates


def throughput_record(device: torch.device, size_px: int, batch_size: int,
                      precisions: dict[str, dict[str, list[float]]], pipeline: dict[str, list[float]]) -> dict:
    """The medians of a run, with what they were measured on: the file that
    ``wildcat budget --throughput`` reads (keys documented in :func:`wildcat.budget.load_throughput`)."""
    def summary(rates: dict[str, list[float]]) -> dict[str, float]:
        found = {"train_images_per_s": statistics.median(rates[WILDCAT]),
                 "bare_train_images_per_s": statistics.median(rates[BARE]),
                 "ratio_wildcat_to_bare": _ratio(rates[WILDCAT], rates[BARE])}
        if EVALUATION in rates:
            found["eval_images_per_s"] = statistics.median(rates[EVALUATION])
        return found

    return {
        "device": device_name(device),
        "command": shlex.join(["python", *sys.argv]),
        "date": datetime.date.today().isoformat(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "model": "WildcatNet(ResNet-101, M=4, k=20, alpha=0.7, 20 classes)",
        "size_px": size_px,
        "batch_size": batch_size,
        "precisions": {name: summary(rates) for name, rates in precisions.items()},
        "pipeline_images_per_s_per_core": {name: statistics.median(rates) for name, rates in pipeline.items()},
    }


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


class JpegFolder(ImageDataset):
    """The JPEG files of a folder, as a multi-label dataset with no positive label."""

    task = "multilabel"

    def __init__(self, paths: list[Path], transform: Callable) -> None:
        self._image_paths, self.ids = paths, [p.stem for p in paths]
        self.targets = np.zeros((len(paths), 20), np.int8)
        self.transform = transform


def pipeline_rates(jpegs: list[bytes], size_px: int, repeats: int, rounds: int, cuda: bool) -> dict[str, list[float]]:
    """Images/s on one core of ``dataset[i]`` (read + decode + warp + flip + normalise), for each decoder."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    transform = train_transform(size_px)
    try:
        with tempfile.TemporaryDirectory() as folder:
            paths = [Path(folder) / f"{i:06d}.jpg" for i in range(len(jpegs))]
            for path, data in zip(paths, jpegs):
                path.write_bytes(data)
            datasets = {  # a plain function has no accepts_uint8_tensor: __getitem__ hands it the PIL image
                "decode_jpeg + tensor ops (default)": JpegFolder(paths, transform),
                "PIL decode + PIL warp": JpegFolder(paths, lambda image: transform(image)),
            }

            def rate(dataset: JpegFolder) -> float:
                started = time.perf_counter()
                for _ in range(repeats):
                    for i in range(len(dataset)):
                        dataset[i]
                return repeats * len(dataset) / (time.perf_counter() - started)

            for dataset in datasets.values():
                dataset[0]  # warm-up
            rates = _rounds({name: (lambda d=dataset: rate(d)) for name, dataset in datasets.items()}, rounds)
        if cuda:  # batched GPU decode: the CPU only reads the bytes
            raws = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in jpegs]

            def gpu_rate() -> float:
                torch.cuda.synchronize()
                started = time.perf_counter()
                for _ in range(repeats):
                    images = torchvision.io.decode_jpeg(raws, device="cuda", mode=torchvision.io.ImageReadMode.RGB)
                    [transform(image) for image in images]
                torch.cuda.synchronize()
                return repeats * len(jpegs) / (time.perf_counter() - started)

            gpu_rate()  # warm-up
            rates["decode_jpeg on the GPU, batched"] = [gpu_rate() for _ in range(rounds)]
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
    parser.add_argument("--pipeline-rounds", type=int, default=7, help="alternating rounds per decoder, 3 passes over the JPEGs each")
    parser.add_argument("--compile", action="store_true",
                        help="also time WildcatNet under torch.compile (the first step compiles: ~4.5 min on 2 CPU "
                             "cores with a cold inductor cache, ~15 s with a warm one)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write the medians, the device and this command to PATH (for `wildcat budget --throughput`)")
    args = parser.parse_args()
    cuda = torch.cuda.is_available() and args.device != "cpu"
    device = torch.device("cuda" if cuda else "cpu")
    batch_size = args.batch_size or (16 if cuda else 2)
    steps = args.steps or (20 if cuda else 2)
    if cuda:
        torch.backends.cudnn.benchmark = True
    print(f"device: {device_name(device)}; torch {torch.__version__}, torchvision {torchvision.__version__}")
    print(f"throughput, {args.size_px} px, batch {batch_size}, {steps} steps x {args.rounds} rounds, float32 "
          "(training steps; evaluation: forward only):")
    precisions = {"float32": compare_models(device, batch_size, steps, args.rounds, args.size_px,
                                            compile_model=args.compile, evaluation=True)}
    if cuda:
        print("train throughput with bfloat16 autocast + channels_last:")
        precisions["bfloat16_channels_last"] = compare_models(device, batch_size, steps, args.rounds, args.size_px,
                                                              amp=True, channels_last=True)
    else:
        print("bfloat16 autocast + channels_last: skipped (no CUDA device)")
    jpegs = make_jpegs(args.jpegs)
    print(f"input pipeline, one core: read + decode + warp to {args.size_px} px + flip + normalise, "
          f"{len(jpegs)} JPEGs 500x375 (mean {np.mean([len(j) for j in jpegs]) / 1000:.0f} kB), "
          f"{args.pipeline_rounds} rounds:")
    rates = pipeline_rates(jpegs, args.size_px, repeats=3, rounds=args.pipeline_rounds, cuda=cuda)
    for name, decoder_rates in rates.items():
        print(_line(name, decoder_rates, "images/s per core"))
    ratio = _ratio(rates["decode_jpeg + tensor ops (default)"], rates["PIL decode + PIL warp"])
    print(f"  {'ratio decode_jpeg / PIL':34s} {ratio:8.2f}   (median of the per-round ratios)")
    if args.json:
        atomic_write_json(args.json, throughput_record(device, args.size_px, batch_size, precisions, rates))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
