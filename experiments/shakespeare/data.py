"""Tiny Shakespeare as one tensor of character ids, split by position into train / val / test."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from structural_dropout.lab.downloads import DATA_HINT, fetch

# karpathy/char-rnn's copy, the one nanoGPT's shakespeare_char reads (1,115,394 characters).
URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
MD5 = "6fb458f1232090904fb40fe944165e91"
SPLITS = ("train", "val", "test")


def text_file(root: str | Path) -> Path:
    return Path(root).expanduser() / "tinyshakespeare" / "input.txt"


def load_text(root: str | Path, download: bool) -> str:
    """The corpus as one string from ``<root>/tinyshakespeare/input.txt``; when it is missing,
    ``download=True`` fetches it (checksum verified), ``download=False`` is an error."""
    path = text_file(root)
    if not path.is_file():
        if not download:
            raise FileNotFoundError(
                f"Tiny Shakespeare not found at {path}; {DATA_HINT}, or allow downloads with "
                "task.download=true"
            )
        # Imported here: torchvision's import costs seconds, and only a download needs it.
        from torchvision.datasets.utils import download_url

        fetch(lambda: download_url(URL, str(path.parent), path.name, MD5), path.parent,
              "Tiny Shakespeare")  # fmt: skip
    return path.read_text(encoding="utf-8")


class Vocabulary:
    """The corpus's distinct characters, sorted; a character's id is its index."""

    def __init__(self, text: str):
        self.chars = sorted(set(text))
        self.ids = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> Tensor:
        unknown = sorted(set(text) - self.ids.keys())
        if unknown:
            raise ValueError(f"characters outside the vocabulary: {unknown}")
        return torch.tensor([self.ids[c] for c in text], dtype=torch.long)

    def decode(self, ids: Tensor) -> str:
        return "".join(self.chars[i] for i in ids.tolist())


def split_by_position(ids: Tensor, val: float, test: float) -> dict[str, Tensor]:
    """The first ``1 - val - test`` of the text for training, then ``val``, then ``test`` (by
    position, so no window of one split overlaps another's)."""
    if not (0 < val < 1 and 0 < test < 1 and val + test < 1):
        raise ValueError(f"val={val} and test={test} must be fractions in (0, 1) summing below 1")
    n = len(ids)
    a, b = round(n * (1 - val - test)), round(n * (1 - test))
    return {"train": ids[:a], "val": ids[a:b], "test": ids[b:]}
