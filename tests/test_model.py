"""Tests for wildcat.nn.model.WildcatNet and wildcat.nn.backbones."""

from __future__ import annotations

import socket

import pytest
import torch
import torchvision
from torch import nn

from wildcat.engine.config import class_map_side
from wildcat.nn.backbones import build_backbone
from wildcat.nn.model import WildcatNet
from wildcat.nn.pooling import wildcat_pool2d


@pytest.mark.parametrize(
    ("backbone", "size", "map_side"),
    [("resnet18", 224, 7), ("resnet18", 320, 10), ("resnet50", 224, 7), ("cnn6", 96, 12), ("cnn6", 64, 8)],
)
def test_shapes(backbone, size, map_side):
    torch.manual_seed(0)
    model = WildcatNet(5, backbone=backbone, num_maps=2, kmax=0.2).eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        maps = model.class_maps(x)
        scores = model(x)
    assert maps.shape == (2, 5, map_side, map_side)
    assert scores.shape == (2, 5)
    assert model.output_stride * map_side == size
    assert torch.allclose(scores, wildcat_pool2d(maps, 0.2, None, 0.7))


@pytest.mark.parametrize(("backbone", "size"), [("cnn6", 1), ("cnn6", 50), ("cnn6", 97), ("resnet18", 33), ("resnet18", 100)])
def test_class_map_side_is_the_backbones_own(backbone, size):
    # The torch-free size the config validates k+ / k- against (wildcat.engine.config) is the real one.
    model = WildcatNet(2, backbone=backbone, num_maps=1, kmax=1, kmin=0).eval()
    with torch.no_grad():
        maps = model.class_maps(torch.zeros(1, 3, size, size))
    assert maps.shape[-2:] == (class_map_side(backbone, size),) * 2


def test_m1_is_the_single_map_baseline():
    """An M=4 model whose 4 maps per class are copies of an M=1 model's map scores identically."""
    torch.manual_seed(0)
    single = WildcatNet(3, backbone="cnn6", num_maps=1, kmax=2, kmin=2, alpha=0.7).eval()
    multi = WildcatNet(3, backbone="cnn6", num_maps=4, kmax=2, kmin=2, alpha=0.7).eval()
    multi.features.load_state_dict(single.features.state_dict())
    with torch.no_grad():
        multi.transfer.weight.copy_(single.transfer.weight.repeat_interleave(4, dim=0))
        multi.transfer.bias.copy_(single.transfer.bias.repeat_interleave(4, dim=0))
        x = torch.randn(2, 3, 64, 64)
        assert torch.allclose(multi(x), single(x), atol=1e-6)
        assert torch.allclose(multi.class_maps(x), single.class_maps(x), atol=1e-6)


def test_param_groups_split_backbone_and_transfer():
    model = WildcatNet(4, backbone="cnn6", num_maps=2)
    groups = model.param_groups(lr=0.01, lrp=0.1)
    assert [g["lr"] for g in groups] == pytest.approx([0.001, 0.01])
    grouped = {id(p) for g in groups for p in g["params"]}
    assert grouped == {id(p) for p in model.parameters()}
    assert {id(p) for p in groups[1]["params"]} == {id(model.transfer.weight), id(model.transfer.bias)}


def test_local_state_dict_is_loaded(tmp_path):
    torch.manual_seed(3)
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    backbone = build_backbone("resnet18", str(path))
    assert torch.equal(backbone.body[0].weight, reference.conv1.weight)
    assert torch.equal(backbone.body[7][1].conv2.weight, reference.layer4[1].conv2.weight)


def test_wrong_state_dict_is_rejected(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(ValueError, match="not a resnet50 state_dict"):
        build_backbone("resnet50", str(path))


def test_missing_weights_file():
    with pytest.raises(FileNotFoundError, match="neither 'imagenet' nor an existing file"):
        build_backbone("resnet18", "/nonexistent/weights.pth")


def test_offline_imagenet_fails_with_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no cached weights

    def refuse(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(RuntimeError) as info:
        WildcatNet(3, backbone="resnet18", weights="imagenet")
    message = str(info.value)
    assert "\n" not in message
    assert "could not download the ImageNet weights of resnet18" in message
    assert "pass its path as weights=" in message


@pytest.mark.parametrize(("kwargs", "match"), [({"backbone": "vgg16"}, "unknown backbone"), ({"num_maps": 0}, "num_maps"),
                                               ({"alpha": -1.0}, "alpha"), ({"weights": "imagenet"}, "cnn6")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WildcatNet(3, **{"backbone": "cnn6", **kwargs})


# Architecture order (paper Table 5): conv then pooling (WILDCAT) vs pooling then conv (GAP-style).


class _FixedFeatures(nn.Module):
    """A stand-in backbone that returns its input as the ``(N, D, h, w)`` features."""

    out_channels = 2
    output_stride = 1

    def forward(self, x):
        return x


def _with_features(model: WildcatNet, weight, bias) -> WildcatNet:
    model.features = _FixedFeatures()
    model.transfer = nn.Conv2d(2, len(weight), kernel_size=1).double()
    with torch.no_grad():
        model.transfer.weight.copy_(torch.tensor(weight, dtype=torch.float64)[:, :, None, None])
        model.transfer.bias.copy_(torch.tensor(bias, dtype=torch.float64))
    return model


def test_orders_by_hand():
    """D = 2 feature maps, C = M = 1, k+ = k- = 1, alpha = 1; transfer weights (1, -1), bias 0.5.
    pool-conv: f1 -> max 4 + min 1 = 5, f2 -> 5 + (-1) = 4; score 5 - 4 + 0.5 = 1.5.
    conv-pool: map f1 - f2 + 0.5 = [[1.5, 3.5], [-1.5, 4.5]]; score 4.5 + (-1.5) = 3.0."""
    features = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, -1.0], [5.0, 0.0]]]], dtype=torch.float64)
    scores = {}
    for order in ("conv-pool", "pool-conv"):
        model = _with_features(WildcatNet(1, backbone="cnn6", num_maps=1, kmax=1, kmin=1, alpha=1.0, order=order), [[1.0, -1.0]], [0.5])
        scores[order] = model(features)
        maps, pooled = model.maps_and_scores(features)
        assert torch.equal(pooled, scores[order])
        assert torch.equal(maps, torch.tensor([[[[1.5, 3.5], [-1.5, 4.5]]]], dtype=torch.float64))  # CAM-style in both
    assert scores["pool-conv"].tolist() == [[1.5]]
    assert scores["conv-pool"].tolist() == [[3.0]]


@pytest.mark.parametrize("num_maps", [1, 3])
def test_orders_agree_with_linear_pooling(num_maps):
    """With GAP (kmax="all", kmin=0) pooling and the transfer layer commute: both orders score alike."""
    torch.manual_seed(0)
    conv_pool = WildcatNet(4, backbone="cnn6", num_maps=num_maps, kmax="all", kmin=0, alpha=0.0).eval()
    pool_conv = WildcatNet(4, backbone="cnn6", num_maps=num_maps, kmax="all", kmin=0, alpha=0.0, order="pool-conv").eval()
    pool_conv.load_state_dict(conv_pool.state_dict())  # same parameters: the order adds none
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(pool_conv(x), conv_pool(x), atol=1e-5)
        assert torch.equal(pool_conv.class_maps(x), conv_pool.class_maps(x))


def test_orders_differ_with_wildcat_pooling():
    torch.manual_seed(0)
    conv_pool = WildcatNet(4, backbone="cnn6", num_maps=2, kmax=2, alpha=0.7).eval()
    pool_conv = WildcatNet(4, backbone="cnn6", num_maps=2, kmax=2, alpha=0.7, order="pool-conv").eval()
    pool_conv.load_state_dict(conv_pool.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(pool_conv(x), conv_pool(x), atol=1e-3)


@pytest.mark.parametrize("order", ["conv-pool", "pool-conv"])
def test_order_shapes_and_one_pass(order):
    torch.manual_seed(0)
    model = WildcatNet(5, backbone="cnn6", num_maps=2, kmax=0.2, order=order).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        maps, scores = model.maps_and_scores(x)
        assert maps.shape == (2, 5, 8, 8) and scores.shape == (2, 5)
        assert torch.equal(scores, model(x))
        assert torch.equal(maps, model.class_maps(x))
    assert model.order == order


def test_pool_conv_gradcheck():
    """float64 gradients of the pool-conv scores w.r.t. the features and the transfer weights."""
    torch.manual_seed(0)
    model = _with_features(WildcatNet(3, backbone="cnn6", num_maps=1, kmax=2, kmin=1, alpha=0.7, order="pool-conv"),
                           torch.randn(3, 2).tolist(), torch.randn(3).tolist())
    features = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)  # distinct values: no ties
    assert torch.autograd.gradcheck(model, (features,))
    weight = model.transfer.weight.detach().clone().requires_grad_(True)

    def of_weight(w):
        return torch.func.functional_call(model, {"transfer.weight": w}, (features.detach(),))

    assert torch.autograd.gradcheck(of_weight, (weight,))


def test_pool_conv_state_dict_round_trip(tmp_path):
    torch.manual_seed(0)
    model = WildcatNet(3, backbone="cnn6", num_maps=2, kmax=2, order="pool-conv").eval()
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    restored = WildcatNet(3, backbone="cnn6", num_maps=2, kmax=2, order="pool-conv").eval()
    restored.load_state_dict(torch.load(path, weights_only=True))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(restored(x), model(x))


def test_bad_order():
    with pytest.raises(ValueError, match="order must be one of conv-pool | pool-conv"):
        WildcatNet(3, backbone="cnn6", order="pool-then-conv")


def test_config_validates_the_order():
    from wildcat.engine.config import ConfigError, ExperimentConfig, make_config

    assert ExperimentConfig().order == "conv-pool"
    assert make_config({"order": "pool-conv"}).order == "pool-conv"
    with pytest.raises(ConfigError, match="config key 'order': bad value 'gap'; allowed: conv-pool | pool-conv"):
        make_config({"order": "gap"})
