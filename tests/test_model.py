"""Tests for wildcat.model.WildcatNet and wildcat.backbones."""

from __future__ import annotations

import socket

import pytest
import torch
import torchvision

from wildcat.backbones import build_backbone
from wildcat.model import WildcatNet
from wildcat.pooling import wildcat_pool2d


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
