"""Dropout Compaction (Kubo, Tucker & Wiesler 2016), a seed baseline: one model size per run.

Every hidden unit (a convolution's unit: its channel) gets its own dropout retention probability
``theta``, learned with the weights;
a sparsity-inducing prior on ``theta`` (here ``strength * sum(theta)`` added to the loss: an
exponential prior on each unit's retention, i.e. a price per expected kept unit) pushes unneeded
units towards being dropped always. After training, units
whose ``theta`` is below ``threshold`` are removed and the rest keep ``theta`` folded into the next
layer's weights (dropout's evaluation rule: the expected mask). A stronger prior gives a smaller
model; each strength is one training run.

Gradients reach ``theta`` through a relaxed Bernoulli mask (Concrete distribution), rounded to a
hard 0/1 mask in the forward pass (straight-through): our choice of estimator.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.distributions import RelaxedBernoulli

from ..layers.conv import TruncatableCNN
from ..layers.mlp import TruncatableMLP
from ..spec import PLAIN
from ..truncatable import replace_parts


class RetentionGate(nn.Module):
    """Dropout with a learned retention probability per unit: ``x * mask`` in training (mask ~
    Bernoulli(theta)), ``x * theta`` in evaluation. Reads a prefix of the units if ``x`` is
    narrower than ``width``. ``channels=True``: the units are dim 1 of ``[B, C, H, W]`` maps, one
    mask entry per sample and channel."""

    def __init__(
        self, width: int, init: float = 0.9, temperature: float = 0.5, channels: bool = False
    ):
        super().__init__()
        if not 0.0 < init < 1.0 or temperature <= 0:
            raise ValueError(
                f"init must be in (0, 1) and temperature > 0, got {init}, {temperature}"
            )
        self.logit = nn.Parameter(torch.full((width,), math.log(init / (1 - init))))
        self.temperature, self.channels = temperature, channels

    @property
    def retention(self) -> Tensor:
        return torch.sigmoid(self.logit)

    def forward(self, x: Tensor) -> Tensor:
        if self.channels:
            theta = self.retention[: x.shape[1]].to(x.dtype).view(1, -1, 1, 1)
            shape = (*x.shape[:2], 1, 1)
        else:
            theta = self.retention[: x.shape[-1]].to(x.dtype)
            shape = x.shape
        if not self.training:
            return x * theta
        soft = RelaxedBernoulli(torch.tensor(self.temperature), probs=theta.expand(shape)).rsample()
        hard = (soft > 0.5).to(x.dtype)
        return x * (hard + soft - soft.detach())  # forward: 0/1; backward: the relaxed mask's

    def extra_repr(self) -> str:
        return f"width={len(self.logit)}, temperature={self.temperature}"


@dataclass(frozen=True)
class DropoutCompaction:
    """The training hooks of Dropout Compaction (see the module docstring)."""

    strength: float = 0.003
    init: float = 0.9
    temperature: float = 0.5
    threshold: float = 0.5

    def __post_init__(self):
        if self.strength < 0 or not 0.0 < self.threshold < 1.0:
            raise ValueError(
                f"strength must be >= 0 and threshold in (0, 1), got {self.strength}, "
                f"{self.threshold}"
            )

    def prepare(self, model: nn.Module) -> None:
        """Give every hidden layer of every truncatable MLP or CNN its retention gates."""
        for part in _compactable(model):
            for block in part.blocks if isinstance(part, TruncatableMLP) else part.convs:
                block.gate = self._gate(block)
            for block in [] if isinstance(part, TruncatableMLP) else part.fcs:
                block.gate = self._gate(block)

    def _gate(self, block: nn.Module) -> RetentionGate:
        if hasattr(block, "conv"):
            return RetentionGate(block.conv.out_channels, self.init, self.temperature, True)
        return RetentionGate(block.linear.out_features, self.init, self.temperature)

    def penalty(self, model: nn.Module) -> Tensor:
        thetas = torch.cat([g.retention for g in model.modules() if isinstance(g, RetentionGate)])
        return self.strength * thetas.sum()

    @torch.no_grad()
    def finalize(self, model: nn.Module) -> nn.Module:
        """The model with every gated MLP or CNN replaced by a smaller plain one (units below
        ``threshold`` removed, the others ordered by retention, highest first, with it folded
        into the weights); returns the model to use (``model`` itself unless it is one)."""
        _compactable(model)
        return replace_parts(model, (TruncatableMLP, TruncatableCNN), self.compact)

    def _kept(self, blocks) -> list[tuple[Tensor, Tensor]]:
        """Per block, the units to keep (highest retention first) and their retentions."""
        kept = []
        for block in blocks:
            theta = block.gate.retention
            order = torch.argsort(theta, descending=True, stable=True)
            count = max(1, int((theta >= self.threshold).sum()))  # a layer keeps one unit at least
            kept.append((order[:count], theta[order[:count]]))
        return kept

    def compact(self, part: nn.Module) -> nn.Module:
        if isinstance(part, TruncatableCNN):
            return self.compact_cnn(part)
        mlp = part
        kept = self._kept(mlp.blocks)
        activation = mlp.blocks[0].activation
        small = TruncatableMLP(
            mlp.in_features,
            [len(index) for index, _ in kept],
            mlp.out_features,
            PLAIN,
            batch_norm=mlp.blocks[0].norm is not None,
            activation=lambda: copy.deepcopy(activation),
        )
        previous, scale = slice(None), None
        for (index, theta), block, new in zip(kept, mlp.blocks, small.blocks, strict=True):
            weight = block.linear.weight[index][:, previous]
            new.linear.weight.copy_(weight if scale is None else weight * scale)
            new.linear.bias.copy_(block.linear.bias[index])
            _copy_norm(block.norm, new.norm, index)
            previous, scale = index, theta
        small.head.weight.copy_(mlp.head.weight[:, previous] * scale)
        small.head.bias.copy_(mlp.head.bias)
        return small.to(mlp.head.weight.device)

    def compact_cnn(self, cnn: TruncatableCNN) -> TruncatableCNN:
        """``compact`` for a CNN: channels kept by retention, the first fully connected layer
        keeping the columns of the kept channels (``positions`` columns each)."""
        convs, fcs = self._kept(cnn.convs), self._kept(cnn.fcs)
        first = cnn.convs[0]
        activation = first.activation
        small = TruncatableCNN(
            cnn.in_shape,
            [len(index) for index, _ in convs],
            [len(index) for index, _ in fcs],
            cnn.out_features,
            PLAIN,
            kernel_size=first.conv.kernel_size[0],
            pool=None if first.pool is None else first.pool.kernel_size,
            padding=first.conv.padding[0],
            batch_norm=first.norm is not None,
            activation=lambda: copy.deepcopy(activation),
        )
        previous, scale = slice(None), None
        for (index, theta), block, new in zip(convs, cnn.convs, small.convs, strict=True):
            weight = block.conv.weight[index][:, previous]
            new.conv.weight.copy_(weight if scale is None else weight * scale.view(1, -1, 1, 1))
            new.conv.bias.copy_(block.conv.bias[index])
            _copy_norm(block.norm, new.norm, index)
            previous, scale = index, theta
        positions = torch.arange(cnn.positions)  # channel c holds columns c * positions + p
        previous = (previous[:, None] * cnn.positions + positions).flatten()
        scale = scale.repeat_interleave(cnn.positions)
        for (index, theta), block, new in zip(fcs, cnn.fcs, small.fcs, strict=True):
            new.linear.weight.copy_(block.linear.weight[index][:, previous] * scale)
            new.linear.bias.copy_(block.linear.bias[index])
            _copy_norm(block.norm, new.norm, index)
            previous, scale = index, theta
        small.head.weight.copy_(cnn.head.weight[:, previous] * scale)
        small.head.bias.copy_(cnn.head.bias)
        return small.to(cnn.head.weight.device)


def _copy_norm(norm: nn.Module | None, new: nn.Module | None, index: Tensor) -> None:
    if norm is not None:
        for key, value in norm.state_dict().items():
            getattr(new, key).copy_(value[index] if value.dim() else value)


def _compactable(model: nn.Module) -> list[nn.Module]:
    """Every truncatable MLP or CNN of ``model`` (outermost first); an error when there is none."""
    parts = [m for m in model.modules() if isinstance(m, TruncatableMLP | TruncatableCNN)]
    if not parts:
        name = type(model).__name__
        raise ValueError(f"{name} has no TruncatableMLP or TruncatableCNN to compact")
    return parts
