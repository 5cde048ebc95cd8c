"""MNIST as in-memory tensors: read once, normalised once, batched by indexing."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from structural_dropout.lab.downloads import DATA_HINT, fetch

# Mean and std of the 60k training pixels (scaled to [0, 1]).
MEAN, STD = 0.1307, 0.3081

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def raw_folder(root: str | Path) -> Path:
    """Where the four idx files live, in torchvision's layout: ``<root>/MNIST/raw``."""
    return Path(root).expanduser() / "MNIST" / "raw"


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path) -> np.ndarray:
    """Parse an idx file (plain or gzipped) of unsigned bytes: images or labels."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    ndim = magic & 0xFF
    if magic >> 8 != 0x08 or ndim not in (1, 3):
        raise ValueError(f"{path} is not an idx file of unsigned bytes (magic {magic:#x})")
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: {array.size} bytes for shape {shape}")
    return array.reshape(shape)


def load_split(root: str | Path, split: str, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as normalised float32 ``[N, 784]`` and labels as int64 ``[N]``.

    Reads ``<root>/MNIST/raw`` (plain or ``.gz`` files, so a read-only mirror works as is). When
    files are missing, ``download=True`` fetches them with torchvision (checksums verified);
    ``download=False`` raises an error naming the expected path.
    """
    folder = raw_folder(root)
    paths = [_find(folder, name) for name in FILES[split]]
    if None in paths:
        if not download:
            raise FileNotFoundError(
                f"MNIST {split} files not found in {folder} (expected {FILES[split][0]}[.gz] and "
                f"{FILES[split][1]}[.gz]); {DATA_HINT} (as MNIST/raw), or allow downloads with "
                "task.download=true"
            )
        # Imported here: torchvision's import costs seconds (it loads torch._dynamo), and only a
        # download needs it.
        from torchvision.datasets import MNIST

        fetch(
            lambda: MNIST(str(Path(root).expanduser()), train=split == "train", download=True),
            folder,
            f"MNIST {split} files",
        )
        paths = [_find(folder, name) for name in FILES[split]]
    images, labels = (read_idx(p) for p in paths)
    if len(images) != len(labels):
        raise ValueError(f"{folder}: {len(images)} images but {len(labels)} labels for {split}")
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    return (x - MEAN) / STD, torch.from_numpy(labels.astype(np.int64))
