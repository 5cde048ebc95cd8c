"""MNIST classification: the Task the shared loops train and sweep."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data import load_split


class MnistTask:
    """Train on the 60k training images minus ``val_size`` held out; the sweep uses the 10k test.

    ``train_limit`` / ``test_limit`` keep only the first N images (for smoke tests).
    ``calibration_size``: training images for re-estimating BatchNorm statistics per width
    (``sweep.recalibrate_bn``, with ``model.batch_norm=true``).
    ``images``: give the model ``[N, 1, 28, 28]`` images (a CNN) instead of ``[N, 784]`` rows.
    """

    metric = "accuracy"

    def __init__(
        self,
        data_dir: str,
        download: bool = True,
        batch_size: int = 128,
        eval_batch_size: int = 5000,
        val_size: int = 5000,
        train_limit: int | None = None,
        test_limit: int | None = None,
        calibration_size: int = 1024,
        images: bool = False,
    ):
        if batch_size < 1 or eval_batch_size < 1 or val_size < 0 or calibration_size < 1:
            raise ValueError(
                f"batch_size={batch_size}, eval_batch_size={eval_batch_size} must be >= 1 "
                f"and calibration_size={calibration_size} >= 1, val_size={val_size} >= 0"
            )
        self.data_dir, self.download = data_dir, download
        self.batch_size, self.eval_batch_size, self.val_size = batch_size, eval_batch_size, val_size
        self.train_limit, self.test_limit = train_limit, test_limit
        self.calibration_size, self.images = calibration_size, images
        self.splits: dict[str, tuple[Tensor, Tensor]] = {}

    def setup(self, device: torch.device) -> None:
        x, y = self._load("train")
        x, y = x[: self.train_limit], y[: self.train_limit]
        if not 0 <= self.val_size < len(x):
            raise ValueError(f"val_size={self.val_size} leaves no training images of {len(x)}")
        n_train = len(x) - self.val_size
        test_x, test_y = self._load("test")
        self.splits = {
            "train": (x[:n_train].to(device), y[:n_train].to(device)),
            "val": (x[n_train:].to(device), y[n_train:].to(device)),
            "test": (test_x[: self.test_limit].to(device), test_y[: self.test_limit].to(device)),
            "calibration": (
                x[: min(self.calibration_size, n_train)].to(device),
                y[: min(self.calibration_size, n_train)].to(device),
            ),
        }

    def _load(self, split: str) -> tuple[Tensor, Tensor]:
        x, y = load_split(self.data_dir, split, self.download)
        return (x.view(-1, 1, 28, 28) if self.images else x), y

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.splits["train"][1]) // self.batch_size)

    def train_batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        x, y = self.splits["train"]
        order = torch.randperm(len(y)).to(y.device)
        for i in range(0, len(y), self.batch_size):
            index = order[i : i + self.batch_size]
            yield x[index], y[index]

    def example_inputs(self) -> tuple[Tensor]:
        return (self.splits["test"][0][:2],)

    def predict(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        return model(batch[0])

    def criterion(self, logits: Tensor, batch: tuple[Tensor, Tensor]) -> Tensor:
        return F.cross_entropy(logits, batch[1])

    def distill_loss(self, logits: Tensor, teacher_logits: Tensor) -> Tensor:
        """Cross-entropy against the teacher's class probabilities (in-place distillation)."""
        return F.cross_entropy(logits, teacher_logits.softmax(dim=-1))

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        return self.criterion(self.predict(model, batch), batch)

    def prepare_eval(self, model: nn.Module, split: str) -> tuple[Tensor, Tensor]:
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}; choose from {sorted(self.splits)}")
        if len(self.splits[split][1]) == 0:
            raise ValueError(f"split {split!r} is empty (val_size=0?)")
        return self.splits[split]

    def evaluate(self, model: nn.Module, prepared: tuple[Tensor, Tensor]) -> float:
        x, y = prepared
        correct = sum(
            (model(x[i : i + self.eval_batch_size]).argmax(1) == y[i : i + self.eval_batch_size])
            .sum()
            .item()
            for i in range(0, len(y), self.eval_batch_size)
        )
        return correct / len(y)
