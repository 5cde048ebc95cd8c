"""PSNR as the super-resolution benchmarks compute it.

The convention (as in EDSR, RCAN, LIIF's benchmark evaluation and MATLAB's evaluation scripts):
the prediction is clamped to ``[0, 1]`` and rounded to 8 bits, both images are converted to the
luma (Y) channel of ITU-R BT.601 YCbCr, ``shave`` pixels (the scale) are removed at each border,
and PSNR = ``10 log10(1 / MSE)`` with pixel values in ``[0, 1]``, averaged over the images of a set.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# BT.601 luma from RGB in [0, 1]: Y = 16/255 + (65.481 R + 128.553 G + 24.966 B) / 255. The
# 16/255 offset cancels in the difference of two images, so it is left out.
Y_WEIGHTS = torch.tensor([65.481, 128.553, 24.966]) / 255


def quantize(image: Tensor) -> Tensor:
    """Clamp to ``[0, 1]`` and round to the nearest of 256 levels, as a saved 8-bit image."""
    return (image.clamp(0, 1) * 255).round() / 255


def luma(rgb: Tensor, dim: int = -1) -> Tensor:
    """The BT.601 Y channel (without its constant offset) of RGB values along ``dim``."""
    shape = [1] * rgb.dim()
    shape[dim] = 3
    return (rgb * Y_WEIGHTS.to(rgb).view(shape)).sum(dim)


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB of a mean squared error on ``[0, 1]`` values; ``inf`` for identical images."""
    return math.inf if mse == 0 else -10 * math.log10(mse)


def psnr(prediction: Tensor, target: Tensor, shave: int = 0) -> float:
    """Y-channel PSNR of ``[3, H, W]`` images in ``[0, 1]`` with ``shave`` border pixels removed;
    the prediction is quantized to 8 bits first."""
    if prediction.shape != target.shape:
        raise ValueError(f"shapes differ: {tuple(prediction.shape)} vs {tuple(target.shape)}")
    difference = luma(quantize(prediction) - target, dim=0)
    height, width = difference.shape
    if min(height, width) <= 2 * shave:
        raise ValueError(f"a {height}x{width} image has nothing left after shaving {shave} pixels")
    difference = difference[shave : height - shave, shave : width - shave]
    return psnr_from_mse(difference.double().pow(2).mean().item())
