"""Dropout Compaction (Kubo, Tucker & Wiesler 2016), a seed baseline: one model size per run.

Every hidden unit gets its own dropout retention probability ``theta``, learned with the weights;
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

from ..layers.mlp import TruncatableMLP, replace_mlps, truncatable_mlps
from ..spec import PLAIN


class RetentionGate(nn.Module):
    """Dropout with a learned retention probability per unit: ``x * mask`` in training (mask ~
    Bernoulli(theta)), ``x * theta`` in evaluation. Reads a prefix of the units if ``x`` is
    narrower than ``width``."""

    def __init__(self, width: int, init: float = 0.9, temperature: float = 0.5):
        super().__init__()
        if not 0.0 < init < 1.0 or temperature <= 0:
            raise ValueError(
                f"init must be in (0, 1) and temperature > 0, got {init}, {temperature}"
            )
        self.logit = nn.Parameter(torch.full((width,), math.log(init / (1 - init))))
        self.temperature = temperature

    @property
    def retention(self) -> Tensor:
        return torch.sigmoid(self.logit)

    def forward(self, x: Tensor) -> Tensor:
        theta = self.retention[: x.shape[-1]].to(x.dtype)
        if not self.training:
            return x * theta
        soft = RelaxedBernoulli(torch.tensor(self.temperature), probs=theta.expand_as(x)).rsample()
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
        """Give every hidden layer of every truncatable MLP its retention gates."""
        for mlp in truncatable_mlps(model, "compact"):
            for block in mlp.blocks:
                block.gate = RetentionGate(block.linear.out_features, self.init, self.temperature)

    def penalty(self, model: nn.Module) -> Tensor:
        thetas = torch.cat([g.retention for g in model.modules() if isinstance(g, RetentionGate)])
        return self.strength * thetas.sum()

    @torch.no_grad()
    def finalize(self, model: nn.Module) -> nn.Module:
        """The model with every gated MLP replaced by a smaller plain one (units below
        ``threshold`` removed, the others ordered by retention, highest first, with it folded
        into the weights); returns the model to use (``model`` itself unless it is an MLP)."""
        return replace_mlps(model, self.compact)

    def compact(self, mlp: TruncatableMLP) -> TruncatableMLP:
        kept = []
        for block in mlp.blocks:
            theta = block.gate.retention
            order = torch.argsort(theta, descending=True, stable=True)
            count = max(1, int((theta >= self.threshold).sum()))  # a layer keeps one unit at least
            kept.append((order[:count], theta[order[:count]]))
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
            if block.norm is not None:
                for key, value in block.norm.state_dict().items():
                    getattr(new.norm, key).copy_(value[index] if value.dim() else value)
            previous, scale = index, theta
        small.head.weight.copy_(mlp.head.weight[:, previous] * scale)
        small.head.bias.copy_(mlp.head.bias)
        return small.to(mlp.head.weight.device)
