"""Benchmark PSNR of a LIIF model at many decoder widths, and of bicubic upsampling.

For each image and scale, the encoder runs once; then, for each chunk of queried pixels, the
width-independent part (gathered features, offsets, cells, ensemble weights and the first decoder
layer's full-width pre-activations) is computed once and decoded at every width before moving on.
Memory stays bounded by the chunk size whatever the image size, and only the shaved interior
(the pixels the PSNR counts) is queried.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .data import downsample, modcrop, resize, to_float
from .metrics import luma, psnr, psnr_from_mse, quantize
from .model import LIIF, cell_size, pixel_centers


def benchmark_pair(image: Tensor, scale: int) -> tuple[Tensor, Tensor]:
    """HR (cropped to a multiple of ``scale``) and its bicubic LR, ``uint8``."""
    hr = modcrop(image, scale)
    return hr, downsample(hr, scale)


def width_tails(decoder, widths: Sequence[int], dtype: torch.dtype) -> list[nn.Module]:
    """For each width, the decoder after its first linear map as plain dense layers in ``dtype``
    (the rescaling folded into the weights): applied to the first ``width`` full-width
    pre-activations it gives the decoder's output at that width."""
    tails = [decoder.export(width)[1:].to(dtype) for width in widths]
    for tail in tails:
        for module in list(tail)[1:]:  # not the first: its input is a view of shared values
            if isinstance(module, nn.ReLU):
                module.inplace = True  # saves a copy per layer; ReLU was ~15% of the sweep
    return tails


@torch.inference_mode()
def psnr_by_width(
    model: LIIF,
    hr: Tensor,
    lr: Tensor,
    scale: int,
    tails: Sequence[nn.Module] | None = None,
    chunk: int = 4096,
) -> list[float]:
    """Y-channel PSNR (``scale`` pixels shaved) of the model's ``hr``-sized rendering of ``lr``
    (both ``uint8`` ``[3, H, W]``) at each width whose ``width_tails`` are given (build them once
    for many images); ``tails=None``: once, at the width the model is set to. Equal to
    ``metrics.psnr`` of the full rendering (tested).

    Tails in bfloat16 run the per-width layers in bfloat16 (about 2x faster on CPUs with AVX-512
    BF16); the encoder, the gathering and the first decoder layer stay float32.
    """
    device = next(model.parameters()).device
    height, width = hr.shape[-2:]
    encoded = model.encode(to_float(lr)[None].to(device))
    coords = pixel_centers(height, width, device, shave=scale)
    target = luma(to_float(hr[:, scale : height - scale, scale : width - scale]).flatten(1).T)
    target = target.to(device)
    cell = cell_size(height, width, device)
    decoder = model.decoder
    if tails is None:  # as set: the truncatable decoder itself
        steps = [(None, decoder.forward_projected)]
    else:
        steps = [(next(tail.parameters()), tail) for tail in tails]
    squared = torch.zeros(len(steps), dtype=torch.float64, device=device)
    for start in range(0, len(coords), chunk):
        coord = coords[start : start + chunk][None]
        inputs, weights = model.query_inputs(encoded, coord, cell.expand_as(coord))
        projected = decoder.project(inputs)
        expected = target[start : start + chunk]
        for i, (first_weight, decode) in enumerate(steps):
            kept = projected
            if first_weight is not None:  # a tail reads the first `width` pre-activations
                kept = projected[..., : first_weight.shape[1]].to(first_weight.dtype)
            rgb = model.blend(decode(kept).float(), weights)[0]
            error = luma(quantize(rgb)) - expected
            squared[i] += error.double().pow(2).sum()
    return [psnr_from_mse(value / len(coords)) for value in squared.tolist()]


def bicubic_psnr(hr: Tensor, lr: Tensor, scale: int) -> float:
    """PSNR of plain bicubic upsampling of ``lr`` to ``hr``'s size (the baseline)."""
    upsampled = resize(lr, *hr.shape[-2:])
    return psnr(to_float(upsampled), to_float(hr), shave=scale)
