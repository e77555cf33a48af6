"""WildcatNet: backbone + multi-map transfer layer + WILDCAT pooling (paper Section 3, Figure 2).

``features (N, D, h, w) --1x1 conv--> (N, C*M, h, w) --class-wise--> (N, C, h, w) --spatial--> (N, C)``

``M = 1`` is the baseline without modalities; ``kmax=1, kmin=0`` is max pooling (GMP) and
``kmax="all", kmin=0`` is global average pooling (GAP): see :mod:`wildcat.pooling`.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from wildcat.backbones import build_backbone
from wildcat.pooling import ClassWisePool, RegionCount, WildcatPool2d


class WildcatNet(nn.Module):
    """The WILDCAT network.

    Args:
        num_classes: ``C``.
        backbone: a name from :data:`wildcat.backbones.BACKBONES` (the paper: ``"resnet101"``).
        weights: ``None``, ``"imagenet"`` or the path of a local torchvision ResNet state_dict.
        num_maps: ``M``, modality maps per class (the paper's main setting: 4).
        kmax: ``k+`` (count, fraction of the regions, or ``"all"``); the paper keeps 20 of the
            196 regions at 448 px, about 0.1.
        kmin: ``k-``; ``None`` means ``kmin = kmax``.
        alpha: weight of the lowest regions (paper: 0.7).
    """

    def __init__(
        self,
        num_classes: int,
        backbone: str = "resnet101",
        weights: str | None = None,
        num_maps: int = 4,
        kmax: RegionCount = 0.1,
        kmin: RegionCount | None = None,
        alpha: float = 0.7,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if not isinstance(num_maps, int) or num_maps < 1:
            raise ValueError(f"num_maps must be an int >= 1, got {num_maps!r}")
        self.num_classes = num_classes
        self.num_maps = num_maps
        self.features = build_backbone(backbone, weights)
        self.transfer = nn.Conv2d(self.features.out_channels, num_classes * num_maps, kernel_size=1, bias=True)
        self.class_pool = ClassWisePool(num_maps)
        self.spatial_pool = WildcatPool2d(kmax, kmin, alpha)

    @property
    def output_stride(self) -> int:
        """Input pixels per class-map region along each side (32 for ResNets)."""
        return self.features.output_stride

    def class_maps(self, x: Tensor) -> Tensor:
        """``(N, 3, H, W) -> (N, C, h, w)``: class maps after class-wise pooling, before spatial
        pooling (used for pointwise localization and segmentation, paper Section 4.3)."""
        return self.class_pool(self.transfer(self.features(x)))

    def forward(self, x: Tensor) -> Tensor:
        """``(N, 3, H, W) -> (N, C)`` class scores."""
        return self.spatial_pool(self.class_maps(x))

    def param_groups(self, lr: float, lrp: float) -> list[dict[str, Any]]:
        """SGD parameter groups for fine-tuning: the backbone at ``lr * lrp``, the transfer
        layer at ``lr`` (the paper fine-tunes all layers; the official code uses ``lrp = 0.1``)."""
        return [
            {"params": list(self.features.parameters()), "lr": lr * lrp},
            {"params": list(self.transfer.parameters()), "lr": lr},
        ]
