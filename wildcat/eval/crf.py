"""Dense-CRF refinement of class maps (WILDCAT Table 9: weakly supervised segmentation).

A fully connected CRF (Krähenbühl & Koltun, "Efficient Inference in Fully Connected CRFs with
Gaussian Edge Potentials", NIPS 2011) with the energy

    E(x) = sum_i -log P(x_i) + sum_{i<j} mu(x_i, x_j) [w_g k_g(p_i, p_j) + w_b k_b(p_i, p_j, I_i, I_j)]

where ``k_g = exp(-|p_i - p_j|^2 / (2 sxy_g^2))`` (smoothness) and
``k_b = exp(-|p_i - p_j|^2 / (2 sxy_b^2) - |I_i - I_j|^2 / (2 srgb^2))`` (appearance), ``mu`` is
the Potts model and inference is the mean-field approximation. The implementation is
``pydensecrf`` (lucasb-eyer/pydensecrf, installed from the ``pydensecrf2`` distribution).
"""

from __future__ import annotations

import ctypes
import numbers
import os
import signal
import sys
from dataclasses import dataclass, fields

import numpy as np
import pydensecrf.densecrf as dcrf
from pydensecrf.utils import unary_from_softmax

from wildcat.engine.config import FIELDS

__all__ = ["CRFParams", "crf_marginals", "crf_refine", "die_with_parent"]

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@dataclass(frozen=True)
class CRFParams:
    """Dense-CRF hyperparameters (Potts compatibilities, kernel widths in pixels / RGB levels).

    The defaults are the experiment config's ``crf_*`` keys (:class:`~wildcat.engine.config.ExperimentConfig`,
    where they are written once): those of Krähenbühl & Koltun's reference example (``dense_inference``)
    and of the pydensecrf README: ``addPairwiseGaussian(sxy=3, compat=3)``,
    ``addPairwiseBilateral(sxy=80, srgb=13, compat=10)``, also used for weakly supervised VOC
    segmentation (e.g. jiwoon-ahn/psa ``imutils.crf_inference``). DeepLab's cross-validated VOC
    values are different (DeepLab-v2 ResNet-101: ``gaussian 1 px / 3``,
    ``bilateral 67 px, 3 RGB / 4``); WILDCAT does not publish its CRF settings.

    Attributes:
        iterations: mean-field iterations (>= 1).
        gaussian_sxy: spatial std of the smoothness kernel, in pixels of the image given.
        gaussian_compat: weight of the smoothness kernel.
        bilateral_sxy: spatial std of the appearance kernel, in pixels of the image given
            (scale it with the image if the image is resized).
        bilateral_srgb: colour std of the appearance kernel, in 0-255 RGB levels.
        bilateral_compat: weight of the appearance kernel.
    """

    iterations: int = FIELDS["crf_iterations"].default
    gaussian_sxy: float = FIELDS["crf_gaussian_sxy"].default
    gaussian_compat: float = FIELDS["crf_gaussian_compat"].default
    bilateral_sxy: float = FIELDS["crf_bilateral_sxy"].default
    bilateral_srgb: float = FIELDS["crf_bilateral_srgb"].default
    bilateral_compat: float = FIELDS["crf_bilateral_compat"].default

    def __post_init__(self) -> None:
        iterations = self.iterations
        if isinstance(iterations, bool) or not isinstance(iterations, numbers.Integral) or iterations < 1:
            raise ValueError(f"CRFParams.iterations must be an int >= 1, got {self.iterations!r}")
        for field in fields(self)[1:]:
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
                raise ValueError(f"CRFParams.{field.name} must be a number >= 0, got {value!r}")
        for name in ("gaussian_sxy", "bilateral_sxy", "bilateral_srgb"):
            if getattr(self, name) == 0:
                raise ValueError(f"CRFParams.{name} is a kernel width and must be > 0, got 0")


def _check_inputs(image: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    probs = np.asarray(probs)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(
            f"image must be uint8 (0-255 RGB), got dtype {image.dtype}: "
            "convert it, e.g. np.asarray(pil_image)"
        )
    if probs.ndim != 3:
        raise ValueError(f"probs must be (K, H, W) class probabilities, got shape {probs.shape}")
    if probs.shape[1:] != image.shape[:2]:
        raise ValueError(
            f"probs {probs.shape} must be (K, H, W) with (H, W) = {image.shape[:2]} as the image: "
            "upsample the class maps to the image size first"
        )
    if probs.shape[0] < 1 or probs.shape[1] < 1 or probs.shape[2] < 1:
        raise ValueError(f"probs must have at least one class and one pixel, got shape {probs.shape}")
    if not np.issubdtype(probs.dtype, np.floating):
        raise ValueError(f"probs must be floating point probabilities, got dtype {probs.dtype}")
    if not np.all(np.isfinite(probs)) or probs.min() < 0:
        raise ValueError("probs must be finite and >= 0")
    sums = probs.sum(axis=0)
    if not np.allclose(sums, 1.0, atol=1e-3):
        worst = float(sums.flat[np.argmax(np.abs(sums - 1.0))])
        raise ValueError(
            f"probs must sum to 1 over the K classes at every pixel (found a sum of {worst:.4g}): "
            "apply a softmax over K"
        )
    return image, probs


def crf_marginals(
    image: np.ndarray, probs: np.ndarray, params: CRFParams = CRFParams(), min_prob: float = 1e-5
) -> np.ndarray:
    """Mean-field marginals of the dense CRF with unary ``-log(probs)``.

    Args:
        image: ``(H, W, 3)`` uint8 RGB image.
        probs: ``(K, H, W)`` class probabilities, summing to 1 over ``K`` at every pixel.
        params: the CRF hyperparameters.
        min_prob: probabilities are clipped to ``[min_prob, 1]`` before the log (no ``log(0)``);
            pydensecrf's ``unary_from_softmax`` default.

    Returns:
        ``(K, H, W)`` float32 marginals ``Q`` after ``params.iterations`` mean-field steps.

    Raises:
        ValueError: wrong shapes or dtypes, probabilities that do not sum to 1.
    """
    image, probs = _check_inputs(image, probs)
    num_classes, height, width = probs.shape
    if not 0 < min_prob < 1:
        raise ValueError(f"min_prob={min_prob!r} must be in (0, 1)")
    crf = dcrf.DenseCRF2D(width, height, num_classes)
    unary = unary_from_softmax(probs.astype(np.float32), clip=min_prob)  # (K, H*W) float32
    crf.setUnaryEnergy(np.require(unary, np.float32, ["C", "W"]))
    crf.addPairwiseGaussian(sxy=float(params.gaussian_sxy), compat=float(params.gaussian_compat))
    crf.addPairwiseBilateral(
        sxy=float(params.bilateral_sxy),
        srgb=float(params.bilateral_srgb),
        rgbim=np.require(image, np.uint8, ["C", "W"]),  # Cython memoryview: C order, writable
        compat=float(params.bilateral_compat),
    )
    q = crf.inference(int(params.iterations))
    return np.asarray(q, dtype=np.float32).reshape(num_classes, height, width)


def crf_refine(
    image: np.ndarray, probs: np.ndarray, params: CRFParams = CRFParams(), min_prob: float = 1e-5,
    labels: np.ndarray | None = None,
) -> np.ndarray:
    """Refine class probabilities into a label map with a dense CRF (``argmax`` of the marginals).

    Args:
        image: ``(H, W, 3)`` uint8 RGB image.
        probs: ``(K, H, W)`` class probabilities (e.g. a softmax over background + class maps,
            upsampled to the image size), summing to 1 over ``K``.
        params: the CRF hyperparameters (:class:`CRFParams`).
        min_prob: clip before the log, see :func:`crf_marginals`.
        labels: ``(K,)`` the label of each channel of ``probs`` (default ``0 .. K-1``), e.g. the
            dataset's ids of the classes that a CRF over a subset of them was given.

    Returns:
        ``(H, W)`` int64 label map with values in ``labels`` (first channel on ties).
    """
    best = np.argmax(crf_marginals(image, probs, params, min_prob), axis=0).astype(np.int64)
    if labels is None:
        return best
    labels = np.asarray(labels, np.int64)
    if labels.shape != (probs.shape[0],):
        raise ValueError(f"labels must give one label per channel of probs: shape {labels.shape} for {probs.shape[0]} channels")
    return labels[best]


def die_with_parent(parent_pid: int) -> None:
    """Initializer of CRF worker processes (here, so that they import no torch): on Linux, the
    kernel SIGKILLs this process when the thread that started it ends, even when its process
    is SIGKILLed; if ``parent_pid`` has already gone, it dies now. A no-op on other systems."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl
        os.kill(os.getpid(), signal.SIGKILL)
