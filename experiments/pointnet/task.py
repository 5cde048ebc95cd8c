"""ModelNet classification with PointNet: the Task the shared loops train and sweep."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data import load_modelnet


def rotate_about_up(points: Tensor) -> Tensor:
    """A random rotation of each cloud ``[B, N, 3]`` about the z (up) axis."""
    angle = torch.rand(len(points), device=points.device) * 2 * math.pi
    cos, sin = angle.cos(), angle.sin()
    zero, one = torch.zeros_like(angle), torch.ones_like(angle)
    rotation = torch.stack([cos, -sin, zero, sin, cos, zero, zero, zero, one], dim=1).view(-1, 3, 3)
    return points @ rotation.transpose(1, 2)


def stratified_holdout(labels: Tensor, fraction: float, generator: torch.Generator) -> Tensor:
    """A boolean mask over ``labels`` marking a seeded ``fraction`` of each class (rounded, at
    least one shape of every class with two or more) for validation."""
    held = torch.zeros(len(labels), dtype=torch.bool)
    for label in labels.unique().tolist():
        members = (labels == label).nonzero().flatten()
        count = min(len(members) - 1, max(1, round(fraction * len(members)))) if fraction else 0
        held[members[torch.randperm(len(members), generator=generator)[:count]]] = True
    return held


class PointNetTask:
    """Train with rotation about the up axis and clipped jitter; validation and test points are
    fixed. ``val_fraction`` of each class of the training set (seeded by ``eval_seed``) is held
    out for validation; the official test set is for reporting only.

    ``num_points`` points per cloud are drawn (without replacement) from the cached clouds: a
    fresh subset each training step, one seeded subset for validation and test, so every width
    sees exactly the same inputs. ``cache_backbone`` lets the sweep reuse the width-independent
    part of the network (off: the naive per-width full evaluation, for comparison).
    """

    metric = "accuracy"

    def __init__(
        self,
        data_dir: str,
        cache_dir: str,
        dataset: str = "ModelNet10",
        source: str = "pcd",
        download: bool = True,
        cache_points: int = 1024,
        num_points: int = 1024,
        batch_size: int = 32,
        eval_batch_size: int = 64,
        val_fraction: float = 0.1,
        regularizer: float = 0.001,
        jitter: float = 0.01,
        jitter_clip: float = 0.05,
        cache_backbone: bool = True,
        calibration_size: int = 512,
        eval_seed: int = 0,
        train_limit: int | None = None,
        test_limit: int | None = None,
    ):
        if not 1 <= num_points <= cache_points:
            raise ValueError(f"num_points={num_points} must be in 1..cache_points={cache_points}")
        if batch_size < 2:
            raise ValueError(f"batch_size={batch_size}: BatchNorm needs at least 2 clouds a batch")
        if not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction={val_fraction} must be in [0, 1)")
        self.data_dir, self.cache_dir, self.dataset, self.source = (
            data_dir,
            cache_dir,
            dataset,
            source,
        )
        self.download, self.cache_points, self.num_points = download, cache_points, num_points
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_fraction = val_fraction
        self.regularizer, self.jitter, self.jitter_clip = regularizer, jitter, jitter_clip
        self.cache_backbone, self.eval_seed = cache_backbone, eval_seed
        self.calibration_size = calibration_size
        self.train_limit, self.test_limit = train_limit, test_limit
        self.splits: dict[str, tuple[Tensor, Tensor]] = {}

    def setup(self, device: torch.device) -> None:
        data = load_modelnet(
            self.data_dir,
            self.dataset,
            self.source,
            self.cache_points,
            self.cache_dir,
            self.download,
        )
        self.classes = data["classes"]
        generator = torch.Generator().manual_seed(self.eval_seed)
        x, y = data["train"]
        # A fixed shuffle before limiting / holding out, so subsets cover every class.
        order = torch.randperm(len(y), generator=generator)[: self.train_limit]
        x, y = x[order], y[order]
        held = stratified_holdout(y, self.val_fraction, generator)
        (x, y), (val_x, val_y) = (x[~held], y[~held]), (x[held], y[held])
        test_x, test_y = data["test"]
        order = torch.randperm(len(test_y), generator=generator)[: self.test_limit]
        test_x, test_y = test_x[order], test_y[order]
        self.splits = {
            "train": (x.to(device), y.to(device)),
            "val": (self._fixed_subset(val_x, generator).to(device), val_y.to(device)),
            "test": (self._fixed_subset(test_x, generator).to(device), test_y.to(device)),
            # Training shapes with fixed points, no augmentation: for BatchNorm recalibration.
            "calibration": (
                self._fixed_subset(x[: self.calibration_size], generator).to(device),
                y[: self.calibration_size].to(device),
            ),
        }

    def _fixed_subset(self, clouds: Tensor, generator: torch.Generator) -> Tensor:
        if self.num_points == clouds.shape[1] or len(clouds) == 0:
            return clouds[:, : self.num_points]
        index = torch.stack(
            [
                torch.randperm(clouds.shape[1], generator=generator)[: self.num_points]
                for _ in range(len(clouds))
            ]
        )
        return torch.gather(clouds, 1, index.unsqueeze(-1).expand(-1, -1, 3))

    @property
    def steps_per_epoch(self) -> int:
        return len(self.splits["train"][1]) // self.batch_size  # drop the last partial batch

    def train_batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        x, y = self.splits["train"]
        order = torch.randperm(len(y)).to(y.device)
        for step in range(self.steps_per_epoch):
            index = order[step * self.batch_size : (step + 1) * self.batch_size]
            points = x[index]
            if self.num_points < points.shape[1]:
                keep = torch.rand(points.shape[:2], device=points.device).argsort(dim=1)
                keep = keep[:, : self.num_points]
                points = torch.gather(points, 1, keep.unsqueeze(-1).expand(-1, -1, 3))
            points = rotate_about_up(points)
            noise = (torch.randn_like(points) * self.jitter).clamp(
                -self.jitter_clip, self.jitter_clip
            )
            yield points + noise, y[index]

    def example_inputs(self) -> tuple[Tensor]:
        return (self.splits["test"][0][:2],)

    def predict(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        """Logits of a training forward; its feature-transform regulariser is kept for the
        ``criterion`` of these logits (the sandwich rule calls the two in pairs)."""
        logits = model(batch[0])
        self._regularization = self.regularizer * model.orthogonality_loss()
        return logits

    def criterion(self, logits: Tensor, batch: tuple[Tensor, Tensor]) -> Tensor:
        return F.cross_entropy(logits, batch[1]) + self._regularization

    def distill_loss(self, logits: Tensor, teacher_logits: Tensor) -> Tensor:
        """Cross-entropy against the teacher's class probabilities (in-place distillation)."""
        return F.cross_entropy(logits, teacher_logits.softmax(dim=-1))

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        return self.criterion(self.predict(model, batch), batch)

    def prepare_eval(self, model: nn.Module, split: str) -> tuple[list, Tensor]:
        """Batches of the width-independent features (or of raw points, without caching)."""
        if split not in self.splits or len(self.splits[split][1]) == 0:
            raise ValueError(f"split {split!r} is unknown or empty")
        x, y = self.splits[split]
        batches = [x[i : i + self.eval_batch_size] for i in range(0, len(y), self.eval_batch_size)]
        if self.cache_backbone:
            batches = [model.precompute(b) for b in batches]
        return batches, y

    def evaluate(self, model: nn.Module, prepared: tuple[list, Tensor]) -> float:
        batches, y = prepared
        run = model.classify if self.cache_backbone else model
        predicted = torch.cat([run(b).argmax(1) for b in batches])
        return (predicted == y).float().mean().item()
