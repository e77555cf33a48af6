"""Tests for wildcat.nn.pooling (paper Section 3, Eq. 3), in the style of torchvision's test_ops.py."""

from __future__ import annotations

import pytest
import torch

from wildcat.nn.pooling import (
    ClassWisePool,
    WildcatPool2d,
    class_wise_pool,
    resolve_region_count,
    wildcat_pool2d,
)

# A 1x1x3x3 map with distinct values: sorted descending 9, 8, 7, 6, 5, 4, 3, 2, 1.
MAP = torch.tensor([[[[1.0, 9.0, 2.0], [8.0, 3.0, 7.0], [4.0, 6.0, 5.0]]]])


def slow_wildcat_pool(x: torch.Tensor, n_max: int, n_min: int, alpha: float) -> torch.Tensor:
    """Reference: a Python loop that sorts every class map (no topk)."""
    n, c = x.shape[:2]
    out = torch.empty(n, c, dtype=x.dtype)
    for i in range(n):
        for j in range(c):
            values = sorted(x[i, j].flatten().tolist(), reverse=True)
            score = sum(values[:n_max]) / n_max
            if n_min > 0 and alpha > 0:
                score += alpha * sum(values[-n_min:]) / n_min
            out[i, j] = score
    return out


class TestResolveRegionCount:
    @pytest.mark.parametrize(
        ("k", "expected"),
        [(1, 1), (3, 3), (100, 9), (0, 0), (0.1, 1), (0.3, 3), (0.5, 4), (0.05, 1), (2.0, 2), (2.7, 2), ("all", 9)],
    )
    def test_counts(self, k, expected):
        # 0.5 * 9 = 4.5 rounds half to even -> 4; 0.05 * 9 = 0.45 -> max(1, 0) = 1.
        assert resolve_region_count(k, 9) == expected

    def test_paper_setting_at_448px(self):
        # k+ = k- = 20 of the 196 regions at 448 px (supplementary Table 2); 0.1 * 196 = 19.6 -> 20.
        assert resolve_region_count(0.1, 196) == 20

    @pytest.mark.parametrize("k", [-1, -0.5, float("nan"), "max", None, True, [1]])
    def test_invalid(self, k):
        with pytest.raises(ValueError, match="kmax"):
            resolve_region_count(k, 9, "kmax")


class TestClassWisePool:
    def test_hand_computed_mean_of_each_class_maps(self):
        # 2 classes x 2 maps: class 0 owns channels 0, 1; class 1 owns channels 2, 3.
        x = torch.arange(4.0).view(1, 4, 1, 1).expand(1, 4, 2, 2).contiguous()
        out = class_wise_pool(x, 2)
        assert out.shape == (1, 2, 2, 2)
        assert torch.equal(out[0, 0], torch.full((2, 2), 0.5))
        assert torch.equal(out[0, 1], torch.full((2, 2), 2.5))

    def test_m1_is_identity(self):
        x = torch.randn(2, 5, 3, 4)
        assert torch.equal(ClassWisePool(1)(x), x)

    def test_gradient_is_one_over_m(self):
        # The official code's backward forgets 1/M; ours is autograd of a mean.
        x = torch.randn(2, 6, 3, 3, requires_grad=True)
        class_wise_pool(x, 3).sum().backward()
        assert torch.allclose(x.grad, torch.full_like(x, 1 / 3))

    def test_not_divisible_names_both_numbers(self):
        with pytest.raises(ValueError, match=r"10 channels.*num_maps=4"):
            class_wise_pool(torch.zeros(1, 10, 2, 2), 4)

    @pytest.mark.parametrize("m", [0, -2, 1.5])
    def test_invalid_num_maps(self, m):
        with pytest.raises(ValueError, match="num_maps"):
            ClassWisePool(m)


class TestWildcatPool2d:
    @pytest.mark.parametrize(
        ("kmax", "kmin", "alpha", "expected"),
        [
            (1, 0, 1.0, 9.0),  # GMP: the max
            (1, None, 1.0, 9.0 + 1.0),  # max + min
            (2, 2, 1.0, 8.5 + 1.5),  # mean(9, 8) + mean(1, 2)
            (2, 3, 0.5, 8.5 + 0.5 * 2.0),  # mean(9, 8) + 0.5 * mean(1, 2, 3)
            (3, 1, 0.7, 8.0 + 0.7 * 1.0),
            (2, 2, 0.0, 8.5),  # alpha = 0 drops the negative term
            ("all", 0, 1.0, 5.0),  # GAP: the mean of the 9 regions
            (0.3, None, 1.0, 8.0 + 2.0),  # 0.3 * 9 = 2.7 -> 3 regions
            (0.5, 0.1, 1.0, 7.5 + 1.0),  # 4.5 -> 4 regions (half to even); 0.9 -> 1
        ],
    )
    def test_hand_computed(self, kmax, kmin, alpha, expected):
        out = wildcat_pool2d(MAP, kmax, kmin, alpha)
        assert out.shape == (1, 1)
        assert out.item() == pytest.approx(expected)

    def test_no_division_by_two(self):
        # Paper Eq. 3: max + min, not (max + min) / 2 as the official code returns.
        assert wildcat_pool2d(MAP, 1, 1, 1.0).item() == pytest.approx(10.0)

    def test_alpha_and_kmin_change_the_score_when_bottom_is_nonzero(self):
        base = wildcat_pool2d(MAP, 2, 2, 0.7)
        assert wildcat_pool2d(MAP, 2, 2, 0.5) != base
        assert wildcat_pool2d(MAP, 2, 3, 0.7) != base
        assert wildcat_pool2d(MAP, 2, 0, 0.7) != base

    @pytest.mark.parametrize(("h", "w"), [(7, 7), (14, 14), (3, 5)])
    @pytest.mark.parametrize(("kmax", "kmin", "alpha"), [(1, 1, 1.0), (3, 0, 0.0), (0.2, 0.1, 0.7), (5, 2, 0.3)])
    def test_matches_slow_reference(self, h, w, kmax, kmin, alpha):
        torch.manual_seed(0)
        x = torch.randn(3, 4, h, w, dtype=torch.float64)
        n_max = resolve_region_count(kmax, h * w)
        n_min = resolve_region_count(kmin, h * w)
        expected = slow_wildcat_pool(x, n_max, n_min, alpha)
        assert torch.allclose(wildcat_pool2d(x, kmax, kmin, alpha), expected, atol=1e-12)

    def test_gradient_mask_is_exact(self):
        x = MAP.clone().requires_grad_(True)
        wildcat_pool2d(x, 2, 3, 0.6).sum().backward()
        expected = torch.zeros(3, 3)
        expected[MAP[0, 0] >= 8] = 1 / 2  # the 2 highest: 9, 8
        expected[MAP[0, 0] <= 3] = 0.6 / 3  # the 3 lowest: 1, 2, 3
        assert torch.allclose(x.grad[0, 0], expected)
        assert (x.grad[0, 0] == 0).sum() == 4  # 4, 5, 6, 7 get no gradient

    def test_overlapping_sets_add(self):
        # kmax = kmin = all regions of a 1x2 map: every region gets 1/2 + alpha/2.
        x = torch.tensor([[[[1.0, 2.0]]]], requires_grad=True)
        wildcat_pool2d(x, 2, 2, 0.5).sum().backward()
        assert torch.allclose(x.grad, torch.full_like(x, 0.5 + 0.25))

    def test_gradcheck_float64(self):
        torch.manual_seed(1)
        # Distinct values (a random permutation) so that top-k sets are unambiguous.
        x = (torch.randperm(2 * 3 * 5 * 5).double().view(2, 3, 5, 5) / 10).requires_grad_(True)
        assert torch.autograd.gradcheck(lambda t: wildcat_pool2d(t, 3, 2, 0.7), (x,))
        assert torch.autograd.gradcheck(lambda t: wildcat_pool2d(class_wise_pool(t, 3), 2, 0.2, 0.4), (x,))

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [({"kmax": -1}, "kmax"), ({"kmax": 0}, "kmax"), ({"kmin": -2}, "kmin"), ({"alpha": -0.1}, "alpha"),
         ({"alpha": "big"}, "alpha"), ({"kmax": "top"}, "kmax")],
    )
    def test_invalid_arguments(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            wildcat_pool2d(MAP, **kwargs)

    def test_module_validates_at_construction(self):
        with pytest.raises(ValueError, match="alpha"):
            WildcatPool2d(1, 1, alpha=-1)
        with pytest.raises(ValueError, match="kmin"):
            WildcatPool2d(1, kmin=float("nan"))

    def test_module_matches_function_and_exports(self):
        pool = WildcatPool2d(kmax=2, kmin=1, alpha=0.7)
        x = torch.randn(2, 3, 4, 4)
        assert torch.equal(pool(x), wildcat_pool2d(x, 2, 1, 0.7))
        exported = torch.export.export(pool, (x,))
        y = torch.randn(2, 3, 4, 4)
        assert torch.allclose(exported.module()(y), pool(y))
