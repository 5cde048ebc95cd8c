"""PointNet (Qi et al. 2017) with structural dropout in its fully connected layers.

The classifier head (1024 → 512 → 256 → classes) and the regressors of the two T-Nets are
truncatable MLPs; the point-wise convolutions are not. A forward pass is split into the part that
no width touches (``precompute``) and the rest (``classify``), so a width sweep runs the first part
once and only the second part per width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import Tensor, nn

from structural_dropout import DropoutSpec, TruncatableMLP, share_cuts

GROUPS = ("head", "input_tnet", "feature_tnet")


class PointwiseMLP(nn.Sequential):
    """The shared per-point MLP: Linear, BatchNorm, ReLU on every point of ``[B, N, C]``.

    The same function as PointNet's 1x1 convolutions, but points-last layout turns each layer
    into one matrix product, which is faster on CPU.
    """

    def __init__(self, channels: Sequence[int]):
        layers: list[nn.Module] = []
        for a, b in zip(channels[:-1], channels[1:], strict=True):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
        super().__init__(*layers)

    def forward(self, x: Tensor) -> Tensor:
        batch, points, _ = x.shape
        return super().forward(x.reshape(batch * points, -1)).view(batch, points, -1)


class TNet(nn.Module):
    """Predicts a ``k x k`` transform from a point set; starts as the identity."""

    def __init__(self, k: int, dropout: DropoutSpec | None):
        super().__init__()
        self.k = k
        self.features = PointwiseMLP([k, 64, 128, 1024])
        self.regressor = TruncatableMLP(1024, [512, 256], k * k, dropout, batch_norm=True)
        nn.init.zeros_(self.regressor.head.weight)
        with torch.no_grad():
            self.regressor.head.bias.copy_(torch.eye(k).flatten())

    def pooled(self, x: Tensor) -> Tensor:
        """``[B, N, k]`` → the max-pooled point features ``[B, 1024]`` (width-independent)."""
        return self.features(x).amax(dim=1)

    def transform(self, pooled: Tensor) -> Tensor:
        return self.regressor(pooled).view(-1, self.k, self.k)


class PointNet(nn.Module):
    """PointNet classifier; ``truncate`` names the groups that get structural dropout."""

    def __init__(
        self,
        num_classes: int,
        dropout: DropoutSpec,
        truncate: Sequence[str] = GROUPS,
    ):
        super().__init__()
        unknown = set(truncate) - set(GROUPS)
        if unknown or not truncate:
            raise ValueError(f"truncate must name some of {GROUPS}, got {list(truncate)}")
        self.truncate = list(truncate)

        # The MLPs draw no cuts of their own: a shared cut is drawn once for the whole network.
        inner = replace(dropout, shared_cut=False)

        def spec(group: str) -> DropoutSpec | None:
            # A group left out gets no structural dropout layer: no width ever applies to it.
            return inner if group in truncate else None

        self.input_tnet = TNet(3, spec("input_tnet"))
        self.mlp1 = PointwiseMLP([3, 64, 64])
        self.feature_tnet = TNet(64, spec("feature_tnet"))
        self.mlp2 = PointwiseMLP([64, 128, 1024])
        self.head = TruncatableMLP(1024, [512, 256], num_classes, spec("head"), batch_norm=True)
        if dropout.shared_cut:
            share_cuts(self)
        self.feature_transform: Tensor | None = None  # of the last forward, for the regulariser

    @property
    def backbone_is_fixed(self) -> bool:
        """True when only the head is truncated: the global feature is then width-independent."""
        return self.truncate == ["head"]

    def precompute(self, points: Tensor) -> dict[str, Tensor]:
        """The width-independent part of a forward pass over ``points [B, N, 3]``."""
        x = points
        if self.backbone_is_fixed:
            return {"global": self._global_feature(x, self.input_tnet.pooled(x))}
        return {"points": x, "input_pooled": self.input_tnet.pooled(x)}

    def classify(self, pre: dict[str, Tensor]) -> Tensor:
        """Logits from ``precompute``'s output at the current width."""
        if "global" not in pre:
            pre = {"global": self._global_feature(pre["points"], pre["input_pooled"])}
        return self.head(pre["global"])

    def _global_feature(self, x: Tensor, input_pooled: Tensor) -> Tensor:
        x = torch.bmm(x, self.input_tnet.transform(input_pooled))  # points as rows: x · T
        x = self.mlp1(x)
        transform = self.feature_tnet.transform(self.feature_tnet.pooled(x))
        if self.training:  # only the training loss reads it; an exported model keeps no state
            self.feature_transform = transform
        x = torch.bmm(x, transform)
        return self.mlp2(x).amax(dim=1)

    def width_dependent_norms(self) -> list[nn.Module]:
        """BatchNorm layers whose input changes with the width (the rest are recalibrated never)."""
        fixed = self.backbone_is_fixed
        part = self.head if fixed else self
        skip = set(self.input_tnet.features.modules())  # runs on raw points: never width-dependent
        return [m for m in part.modules() if isinstance(m, nn.BatchNorm1d) and m not in skip]

    def forward(self, points: Tensor) -> Tensor:
        return self.classify(self.precompute(points))

    def orthogonality_loss(self) -> Tensor:
        """``||I - A Aᵀ||²`` of the last forward's feature transform (PointNet's regulariser)."""
        a = self.feature_transform
        eye = torch.eye(a.shape[1], device=a.device)
        return (eye - a @ a.transpose(1, 2)).pow(2).sum(dim=(1, 2)).mean()
