"""Drop Pruning ("Stochastic Model Pruning via Weight Dropping Away and Back", 2020), a seed
baseline: gradual magnitude pruning made stochastic; one sparsity per run.

Every weight matrix (or convolution kernel) of the truncatable layers gets a 0/1 mask
(``torch.nn.utils.prune``). Every ``interval`` steps between ``start`` and ``end`` (fractions of
training) the pruned share of each matrix grows towards ``sparsity`` on the cubic schedule of
Zhu & Gupta (2017). An update first *drops back* a random ``drop_back`` share of the pruned
weights (they return with the value they had), then *drops away* the weights still needed, drawn
at random from the ``pool`` times as many smallest-magnitude unpruned weights, instead of always
the smallest. The last update, at ``end``, is deterministic (the smallest weights) and reaches
``sparsity`` exactly; the rest of training fine-tunes the survivors. Parameters are counted as
non-zero weights and biases.

``scope="layer"`` prunes every matrix to the same share; ``scope="global"`` ranks the weights of
all matrices together (one magnitude threshold), so that the share of each layer follows its
weights' sizes: in a CNN the few weights of the first convolution then survive, and the large
fully connected matrix takes most of the pruning, as in the LeNet-5 results of the pruning
literature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import prune

from ..export import export
from ..layers.conv import SlicedConv2d
from ..layers.mlp import SlicedLinear


def _pruned_layers(model: nn.Module) -> list[nn.Module]:
    layers = [m for m in model.modules() if isinstance(m, SlicedLinear | SlicedConv2d)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no SlicedLinear / SlicedConv2d to prune")
    return layers


def count_nonzero_params(model: nn.Module, width: int | None = None) -> int:
    """Non-zero entries of the model's parameters at ``width`` (the model as exported)."""
    return sum(int(p.count_nonzero()) for p in export(model, width).parameters())


@dataclass(frozen=True)
class DropPruning:
    """The training hooks of Drop Pruning (see the module docstring)."""

    sparsity: float = 0.9
    start: float = 0.1
    end: float = 0.7
    interval: int = 100
    pool: float = 2.0
    drop_back: float = 0.1
    scope: str = "layer"

    def __post_init__(self):
        if self.scope not in ("layer", "global"):
            raise ValueError(f"scope must be 'layer' or 'global', got {self.scope!r}")
        if not 0.0 <= self.sparsity < 1.0 or not 0.0 <= self.start < self.end <= 1.0:
            raise ValueError(
                f"need 0 <= sparsity < 1 and 0 <= start < end <= 1, got sparsity={self.sparsity}, "
                f"start={self.start}, end={self.end}"
            )
        if self.interval < 1 or self.pool < 1 or not 0.0 <= self.drop_back <= 1.0:
            raise ValueError("need interval >= 1, pool >= 1 and drop_back in [0, 1]")

    def prepare(self, model: nn.Module) -> None:
        """Give every weight matrix of the truncatable layers an all-ones mask."""
        for layer in _pruned_layers(model):
            prune.identity(layer, "weight")

    def target(self, step: int, total: int) -> float:
        """The pruned share after training step ``step`` of ``total`` (cubic schedule)."""
        first, last = round(self.start * total), round(self.end * total)
        progress = min(max((step - first) / max(last - first, 1), 0.0), 1.0)
        return self.sparsity * (1.0 - (1.0 - progress) ** 3)

    @torch.no_grad()
    def after_step(self, model: nn.Module, step: int, total: int) -> None:
        """Update the masks on the schedule's steps (``step`` counts from 1)."""
        first, last = round(self.start * total), round(self.end * total)
        final = step == last
        if not (final or (first <= step < last and (step - first) % self.interval == 0)):
            return
        share = self.target(step, total)
        layers = _pruned_layers(model)
        groups = [[layer] for layer in layers] if self.scope == "layer" else [layers]
        for group in groups:
            mask = torch.cat([layer.weight_mask.flatten() for layer in group])
            magnitude = torch.cat([layer.weight_orig.abs().flatten() for layer in group])
            self._update(mask, magnitude, round(share * mask.numel()), final)
            sizes = [layer.weight_mask.numel() for layer in group]
            for layer, part in zip(group, mask.split(sizes), strict=True):
                layer.weight_mask.copy_(part.view_as(layer.weight_mask))

    def _update(self, flat: torch.Tensor, magnitude: torch.Tensor, needed: int, final: bool):
        """Prune ``needed`` entries of the flat 0/1 ``flat`` mask, in place."""
        if final:  # exact: the smallest (with pruned weights at zero) go
            order = (magnitude * flat).argsort()
            flat.fill_(1)[order[:needed]] = 0
            return
        pruned = (flat == 0).nonzero().squeeze(1)
        back = pruned[torch.rand(len(pruned), device=flat.device) < self.drop_back]
        flat[back] = 1  # dropped back
        missing = needed - int((flat == 0).sum())
        if missing <= 0:
            return
        alive = flat.nonzero().squeeze(1)
        pool = alive[magnitude[alive].argsort()[: math.ceil(self.pool * missing)]]
        away = pool[torch.randperm(len(pool), device=flat.device)[:missing]]
        flat[away] = 0  # dropped away

    def finalize(self, model: nn.Module) -> nn.Module:
        """Make the masks permanent: plain weights holding zeros where pruned."""
        for layer in _pruned_layers(model):
            prune.remove(layer, "weight")
        return model

    count_params = staticmethod(count_nonzero_params)
