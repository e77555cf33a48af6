"""Feature extractors for :class:`wildcat.nn.model.WildcatNet`.

The paper (Section 3.1) uses an ImageNet-pretrained ResNet-101 up to ``conv5`` (``layer4`` in
torchvision), dropping global average pooling and the fully-connected layer: ``W/32 x H/32``
maps with 2048 channels. For the offline embedded default, where no pretrained weights can be
downloaded and a ResNet is too slow on two CPU cores, ``"cnn6"`` is a compact CNN trained from
scratch with output stride 8 (12x12 maps at 96 px).
"""

from __future__ import annotations

import urllib.error
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision
from torch import nn

from wildcat.engine.config import BACKBONE_STRIDES, BACKBONES
from wildcat.errors import WildcatError


class WeightsUnavailableError(WildcatError, RuntimeError):
    """Pretrained weights could not be downloaded (offline, host down)."""

#: torchvision ResNets: builder function and weights enum.
RESNETS: dict[str, tuple[Callable[..., torchvision.models.ResNet], type]] = {
    name: (getattr(torchvision.models, name), getattr(torchvision.models, f"ResNet{name[6:]}_Weights"))
    for name in BACKBONES
    if name.startswith("resnet")
}

#: Layer widths and strides of the compact ``cnn6`` backbone (3x3 conv + BatchNorm + ReLU).
CNN6_WIDTHS = (16, 32, 64, 64, 64, 64)
CNN6_STRIDES = (2, 2, 1, 2, 1, 1)



class Backbone(nn.Module):
    """A feature extractor: ``(N, 3, H, W) -> (N, out_channels, H / stride, W / stride)``."""

    def __init__(self, body: nn.Module, out_channels: int, output_stride: int) -> None:
        super().__init__()
        self.body = body
        self.out_channels = out_channels
        self.output_stride = output_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _cnn6() -> Backbone:
    layers: list[nn.Module] = []
    in_channels = 3
    for width, stride in zip(CNN6_WIDTHS, CNN6_STRIDES):
        layers += [
            nn.Conv2d(in_channels, width, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        in_channels = width
    return Backbone(nn.Sequential(*layers), in_channels, BACKBONE_STRIDES["cnn6"])


def _resnet_state_dict(name: str, weights: str) -> dict[str, torch.Tensor]:
    """The state_dict for ``weights`` (``"imagenet"`` or a local file) of ResNet ``name``."""
    if weights == "imagenet":
        enum = RESNETS[name][1].IMAGENET1K_V1
        try:
            return enum.get_state_dict(progress=True)
        except (urllib.error.URLError, OSError) as error:
            raise WeightsUnavailableError(
                f"could not download the ImageNet weights of {name} from {enum.url} ({error}); "
                f"without internet, download that file elsewhere and pass its path as weights="
            ) from error
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(
            f"weights={weights!r} is neither 'imagenet' nor an existing file: pass None, "
            f"'imagenet' or the path of a torchvision {name} state_dict"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def build_backbone(name: str, weights: str | None = None) -> Backbone:
    """Build the feature extractor ``name`` (one of :data:`BACKBONES`).

    Args:
        name: ``"resnet18" | "resnet34" | "resnet50" | "resnet101" | "resnet152" | "cnn6"``.
        weights: ``None`` (random init), ``"imagenet"`` (torchvision's IMAGENET1K_V1 weights,
            downloaded) or the path of a local torchvision ResNet ``state_dict``.

    Returns:
        A :class:`Backbone` up to ``layer4`` for ResNets (no avgpool / fc).
    """
    if name == "cnn6":
        if weights is not None:
            raise ValueError(f"backbone 'cnn6' is trained from scratch: weights must be None, got {weights!r}")
        return _cnn6()
    if name not in RESNETS:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    resnet = RESNETS[name][0](weights=None)
    if weights is not None:
        state = _resnet_state_dict(name, weights)
        try:
            missing, unexpected = resnet.load_state_dict(state, strict=False)
        except RuntimeError as error:  # tensor shapes differ: another architecture
            raise ValueError(f"{weights} is not a {name} state_dict: {str(error).splitlines()[0]}") from error
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing or unexpected:
            raise ValueError(
                f"{weights} is not a {name} state_dict: {len(missing)} missing keys "
                f"(e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})"
            )
    body = nn.Sequential(
        resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool,
        resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4,
    )
    return Backbone(body, resnet.fc.in_features, BACKBONE_STRIDES[name])
