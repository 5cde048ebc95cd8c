"""Image folders for super-resolution: loading, bicubic downsampling, random training queries.

Images are kept as ``uint8`` tensors ``[3, H, W]``. Low-resolution (LR) images are made the way
the SR benchmarks make them: bicubic with antialiasing (MATLAB ``imresize``-like; on Set5 it
matches the published MATLAB LR images to within 2 grey levels away from the border) and stored
as 8-bit, so the model always sees quantized LR pixels.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torchvision.datasets.utils import download_and_extract_archive
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from structural_dropout.lab.downloads import DATA_HINT, fetch

from .model import cell_size, pixel_centers

IMAGE_SUFFIXES = {".png", ".bmp", ".jpg", ".jpeg"}

# DIV2K (Agustsson & Timofte 2017): 800 training and 100 validation 2K images.
DIV2K_URL = "https://data.vision.ee.ethz.ch/cvl/DIV2K/"
DIV2K_ARCHIVES = {"DIV2K_train_HR": "DIV2K_train_HR.zip", "DIV2K_valid_HR": "DIV2K_valid_HR.zip"}


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def load_folder(folder: str | Path, download: bool = False) -> dict[str, Tensor]:
    """Every image of ``folder`` as RGB ``uint8`` ``[3, H, W]`` (grayscale ones replicated), by
    file stem. A missing DIV2K folder is downloaded when ``download`` is true."""
    folder = Path(folder)
    if not folder.is_dir() and download and folder.name in DIV2K_ARCHIVES:
        fetch(
            lambda: download_and_extract_archive(
                DIV2K_URL + DIV2K_ARCHIVES[folder.name], download_root=str(folder.parent)
            ),
            folder,
            f"DIV2K ({folder.name})",
        )
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no image folder {folder}; {DATA_HINT} (DIV2K_* folders download with "
            "task.download=true)"
        )
    files = image_files(folder)
    if not files:
        raise FileNotFoundError(f"{folder} holds no {sorted(IMAGE_SUFFIXES)} images")
    return {path.stem: read_image(path) for path in files}


def read_image(path: str | Path) -> Tensor:
    """An image file as RGB ``uint8`` ``[3, H, W]`` (grayscale and palette images converted)."""
    with Image.open(path) as image:
        return TF.pil_to_tensor(image.convert("RGB"))


def write_image(image: Tensor, path: str | Path) -> None:
    """Save a ``uint8`` ``[3, H, W]`` tensor (PNG for a ``.png`` path)."""
    TF.to_pil_image(image.cpu()).save(path)


def resize(image: Tensor, height: int, width: int) -> Tensor:
    """Bicubic resize with antialiasing of a ``uint8`` image (rounded back to ``uint8``)."""
    return TF.resize(
        image, [height, width], interpolation=InterpolationMode.BICUBIC, antialias=True
    )


def modcrop(image: Tensor, scale: int) -> Tensor:
    """Crop the bottom and right edges so both sides are multiples of ``scale``."""
    height, width = image.shape[-2:]
    return image[..., : height - height % scale, : width - width % scale]


def downsample(hr: Tensor, scale: float) -> Tensor:
    """The benchmark LR image: ``hr`` (already a multiple of ``scale``) shrunk by ``scale``."""
    height, width = hr.shape[-2:]
    return resize(hr, round(height / scale), round(width / scale))


def to_float(image: Tensor) -> Tensor:
    return image.float() / 255


class QuerySampler:
    """Random training examples as in LIIF: an HR crop of ``lr_size * s`` pixels for a scale ``s``
    drawn uniformly from ``[min_scale, max_scale]``, randomly flipped and transposed, its bicubic
    LR version of ``lr_size`` pixels, and ``queries`` random HR pixels with their coordinates,
    cells and colours."""

    def __init__(
        self,
        images: list[Tensor],
        lr_size: int,
        queries: int,
        min_scale: float = 1.0,
        max_scale: float = 4.0,
    ):
        if not 1 <= min_scale <= max_scale:
            raise ValueError(f"need 1 <= min_scale <= max_scale, got {min_scale}, {max_scale}")
        if not 1 <= queries <= lr_size**2:
            raise ValueError(f"queries={queries} must be in 1..lr_size**2={lr_size**2}")
        largest = round(lr_size * max_scale)
        self.images = [image for image in images if min(image.shape[-2:]) >= largest]
        if not self.images:
            raise ValueError(
                f"no training image is at least {largest} pixels on each side "
                f"(lr_size={lr_size} x max_scale={max_scale})"
            )
        self.lr_size, self.queries = lr_size, queries
        self.min_scale, self.max_scale = min_scale, max_scale

    def example(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        scale = self.min_scale + (self.max_scale - self.min_scale) * torch.rand(()).item()
        hr_size = round(self.lr_size * scale)
        image = self.images[int(torch.randint(len(self.images), ()))]
        top = int(torch.randint(image.shape[1] - hr_size + 1, ()))
        left = int(torch.randint(image.shape[2] - hr_size + 1, ()))
        hr = image[:, top : top + hr_size, left : left + hr_size]
        flips = torch.rand(3) < 0.5
        if flips[0]:
            hr = hr.flip(-1)
        if flips[1]:
            hr = hr.flip(-2)
        if flips[2]:
            hr = hr.transpose(-1, -2)
        lr = to_float(resize(hr, self.lr_size, self.lr_size))
        pick = torch.randperm(hr_size * hr_size)[: self.queries]
        coord = pixel_centers(hr_size, hr_size)[pick]
        cell = cell_size(hr_size, hr_size).expand_as(coord)
        colour = to_float(hr).flatten(1).T[pick]
        return lr, coord, cell, colour

    def batch(self, size: int) -> tuple[Tensor, ...]:
        examples = [self.example() for _ in range(size)]
        return tuple(torch.stack(parts) for parts in zip(*examples, strict=True))
