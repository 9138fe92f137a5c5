"""Similarity of two uint8 RGB renderings [3, h, w] of the same area, over their valid pixels.

Every metric takes ``reference`` and ``candidate`` (same shape; [h, w] grey images are
accepted too) and an optional ``valid`` mask [h, w]; pixels outside the mask never count.
Values are in grey levels (0..255) unless said otherwise.
"""

import math
from dataclasses import dataclass

import numpy as np

from ..engine.errors import InputError

DATA_RANGE = 255.0
# Wang et al. (2004): 11 x 11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03.
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


@dataclass(frozen=True)
class Comparison:
    psnr: float
    ssim: float
    mae: float
    histogram_distance: float


def compare(reference, candidate, valid=None):
    """All four metrics at once."""
    return Comparison(
        psnr=psnr(reference, candidate, valid),
        ssim=ssim(reference, candidate, valid),
        mae=mean_absolute_error(reference, candidate, valid),
        histogram_distance=histogram_distance(reference, candidate, valid),
    )


def mean_absolute_error(reference, candidate, valid=None):
    a, b, mask = _prepare(reference, candidate, valid)
    return float(np.abs(a - b)[:, mask].mean())


def psnr(reference, candidate, valid=None, data_range=DATA_RANGE):
    """Peak signal-to-noise ratio in dB; infinite for identical images."""
    a, b, mask = _prepare(reference, candidate, valid)
    mse = float(((a - b) ** 2)[:, mask].mean())
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def ssim(reference, candidate, valid=None, data_range=DATA_RANGE):
    """Mean structural similarity (Wang et al. 2004), averaged over channels and valid pixels.

    Local statistics are Gaussian-weighted over the valid pixels of each window only (the
    weights renormalised), so nodata and the image border never leak into the statistics.
    """
    a, b, mask = _prepare(reference, candidate, valid)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    weights = mask.astype(np.float64)
    weight_sum = _gaussian_filter(weights)
    scores = []
    # Pixels with no valid neighbour divide by zero; they are outside the mask and never averaged.
    with np.errstate(divide="ignore", invalid="ignore"):
        for x, y in zip(a, b):
            scores.append(_ssim_channel(x, y, weights, weight_sum, c1, c2)[mask].mean())
    return float(np.mean(scores))


def _ssim_channel(x, y, weights, weight_sum, c1, c2):
    x = x * weights
    y = y * weights
    mu_x = _gaussian_filter(x) / weight_sum
    mu_y = _gaussian_filter(y) / weight_sum
    var_x = _gaussian_filter(x * x) / weight_sum - mu_x**2
    var_y = _gaussian_filter(y * y) / weight_sum - mu_y**2
    cov = _gaussian_filter(x * y) / weight_sum - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def histogram_distance(reference, candidate, valid=None):
    """Earth mover's distance between the value distributions, in grey levels, mean over channels.

    It ignores where values are (a shuffled image has distance 0) and measures how far the
    colours moved: adding 10 to every pixel gives 10.
    """
    a, b, mask = _prepare(reference, candidate, valid)
    distances = []
    for x, y in zip(a, b):
        cdf_x = np.cumsum(np.bincount(x[mask].astype(np.int64), minlength=256)) / mask.sum()
        cdf_y = np.cumsum(np.bincount(y[mask].astype(np.int64), minlength=256)) / mask.sum()
        distances.append(np.abs(cdf_x - cdf_y).sum())
    return float(np.mean(distances))


def _prepare(reference, candidate, valid):
    reference = np.asarray(reference)
    candidate = np.asarray(candidate)
    if reference.shape != candidate.shape:
        raise InputError(f"cannot compare images of shapes {reference.shape} and {candidate.shape}")
    if reference.ndim == 2:
        reference, candidate = reference[None], candidate[None]
    if reference.ndim != 3:
        raise InputError(f"expected images [bands, height, width], got shape {reference.shape}")
    for name, image in (("reference", reference), ("candidate", candidate)):
        if image.dtype != np.uint8:
            raise InputError(f"the {name} image must be uint8 (a rendering), got {image.dtype}")
    mask = np.ones(reference.shape[1:], bool) if valid is None else np.asarray(valid, bool)
    if mask.shape != reference.shape[1:]:
        raise InputError(f"valid mask of shape {mask.shape} does not match images of shape {reference.shape}")
    if not mask.any():
        raise InputError("no valid pixel in common: nothing to compare")
    return reference.astype(np.float64), candidate.astype(np.float64), mask


def _gaussian_kernel():
    offsets = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
    kernel = np.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    return kernel / kernel.sum()


def _gaussian_filter(image):
    """Separable Gaussian filter of a [h, w] image with zeros outside it (the mask renormalises)."""
    kernel = _gaussian_kernel()
    height, width = image.shape
    padded = np.pad(image, SSIM_RADIUS)
    rows = sum(weight * padded[i : i + height, :] for i, weight in enumerate(kernel))
    return sum(weight * rows[:, i : i + width] for i, weight in enumerate(kernel))
