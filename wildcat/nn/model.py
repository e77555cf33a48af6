"""WildcatNet: backbone + multi-map transfer layer + WILDCAT pooling (paper Section 3, Figure 2).

``features (N, D, h, w) --1x1 conv--> (N, C*M, h, w) --class-wise--> (N, C, h, w) --spatial--> (N, C)``

``M = 1`` is the baseline without modalities; ``kmax=1, kmin=0`` is max pooling (GMP) and
``kmax="all", kmin=0`` is global average pooling (GAP): see :mod:`wildcat.nn.pooling`.

Two architecture orders (paper Section 4.2, Table 5):

* ``order="conv-pool"`` (WILDCAT): the transfer layer (1x1 conv) at every region, class-wise
  pooling, then the spatial pooling of each class map;
* ``order="pool-conv"`` (GAP-style, as in GAP/CAM networks): the spatial pooling of each of the
  ``D`` feature maps, ``(N, D, h, w) -> (N, D)``, then the transfer layer as a linear layer (the
  same 1x1 conv weights applied to the pooled vector), then class-wise pooling.

With linear pooling (GAP: ``kmax="all", kmin=0``) the two orders give the same scores; with the
WILDCAT pooling (top-k+ / bottom-k- selection) they differ.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from wildcat.engine.config import ORDERS  # the architecture orders of paper Table 5
from wildcat.nn.backbones import build_backbone
from wildcat.nn.pooling import ClassWisePool, RegionCount, WildcatPool2d


class WildcatNet(nn.Module):
    """The WILDCAT network.

    Args:
        num_classes: ``C``.
        backbone: a name from :data:`wildcat.nn.backbones.BACKBONES` (the paper: ``"resnet101"``).
        weights: ``None``, ``"imagenet"`` or the path of a local torchvision ResNet state_dict.
        num_maps: ``M``, modality maps per class (the paper's main setting: 4).
        kmax: ``k+`` (count, fraction of the regions, or ``"all"``); the paper keeps 20 of the
            196 regions at 448 px, about 0.1.
        kmin: ``k-``; ``None`` means ``kmin = kmax``.
        alpha: weight of the lowest regions (paper: 0.7).
        order: ``"conv-pool"`` (WILDCAT) or ``"pool-conv"`` (GAP-style, paper Table 5); the
            spatial pooling ``spatial_pool`` acts on the class maps in the first order and on
            the ``D`` backbone feature maps in the second.

    Use :meth:`maps_and_scores` (one backbone pass) when both the class maps and the scores are
    needed: with ``order="pool-conv"`` the scores are *not* ``spatial_pool(class_maps(x))``.
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
        order: str = "conv-pool",
    ) -> None:
        super().__init__()
        if order not in ORDERS:
            raise ValueError(f"order must be one of {' | '.join(ORDERS)}, got {order!r}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if not isinstance(num_maps, int) or num_maps < 1:
            raise ValueError(f"num_maps must be an int >= 1, got {num_maps!r}")
        self.num_classes = num_classes
        self.num_maps = num_maps
        self.order = order
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
        pooling (used for pointwise localization and segmentation, paper Section 4.3).

        For ``order="pool-conv"`` these are CAM-style maps (Zhou et al. CVPR 2016): the transfer
        layer applied at every region, then class-wise pooling. The network's scores are then not
        the spatial pooling of these maps (except with linear pooling, GAP), but the maps rank
        regions by the transfer layer's response, so localization and segmentation still apply.
        """
        return self.class_pool(self.transfer(self.features(x)))

    def _pooled_scores(self, features: Tensor) -> Tensor:
        """``order="pool-conv"``: ``(N, D, h, w) -> (N, C)``, spatial pooling of the features, then
        the transfer layer on the pooled ``(N, D, 1, 1)`` vector, then class-wise pooling."""
        pooled = self.spatial_pool(features)[:, :, None, None]
        return self.class_pool(F.conv2d(pooled, self.transfer.weight, self.transfer.bias)).flatten(1)

    def maps_and_scores(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(N, 3, H, W) -> ((N, C, h, w) class maps, (N, C) scores)`` with one backbone pass;
        the scores equal ``forward(x)`` in both orders."""
        features = self.features(x)
        maps = self.class_pool(self.transfer(features))
        if self.order == "pool-conv":
            return maps, self._pooled_scores(features)
        return maps, self.spatial_pool(maps)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, 3, H, W) -> (N, C)`` class scores."""
        if self.order == "pool-conv":
            return self._pooled_scores(self.features(x))
        return self.spatial_pool(self.class_maps(x))

    def param_groups(self, lr: float, lrp: float) -> list[dict[str, Any]]:
        """SGD parameter groups for fine-tuning: the backbone at ``lr * lrp``, the transfer
        layer at ``lr`` (the paper fine-tunes all layers; the official code uses ``lrp = 0.1``)."""
        return [
            {"params": list(self.features.parameters()), "lr": lr * lrp},
            {"params": list(self.transfer.parameters()), "lr": lr},
        ]
