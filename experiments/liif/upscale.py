"""Super-resolve one image file with a trained LIIF checkpoint, at any scale and decoder width."""

from __future__ import annotations

from pathlib import Path

import torch

from structural_dropout import set_width
from structural_dropout.lab.build import rebuild

from .data import read_image, to_float, write_image
from .model import LIIF


def load_model(checkpoint: str | Path, device: torch.device) -> torch.nn.Module:
    """The LIIF model of a checkpoint written by ``scripts/train.py experiment=liif``."""
    _, run = rebuild(checkpoint, device, with_task=False)
    if not isinstance(run.model, LIIF):
        raise ValueError(f"{checkpoint} holds a {type(run.model).__name__} model, not LIIF")
    return run.model.eval()


def upscale_file(
    checkpoint: str | Path,
    image_path: str | Path,
    scale: float,
    width: int | None,
    output: str | Path,
    device: torch.device,
    chunk: int = 16384,
) -> tuple[Path, tuple[int, int]]:
    """Write ``image_path`` rendered at ``scale`` times its size (``width``: decoder width, None:
    full) as a PNG at ``output``; returns the path and the output size (height, width)."""
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    model = load_model(checkpoint, device)
    image = read_image(image_path)
    height, width_px = (round(side * scale) for side in image.shape[-2:])
    set_width(model.decoder, width)
    rendered = model.upsample(to_float(image)[None].to(device), height, width_px, chunk)[0]
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_image((rendered * 255).round().to(torch.uint8), output)
    return output, (height, width_px)
