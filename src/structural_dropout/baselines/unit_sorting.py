"""Order the hidden units of a trained MLP by importance, after training (the `sorted` baseline).

A plain network has no ordering: truncating it keeps arbitrary units. Permuting each hidden layer
so its most important units come first gives an ordering without retraining; a permutation of
hidden units does not change the full-width function, only what each prefix keeps.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..layers.mlp import TruncatableMLP


def connection_importance(incoming: Tensor, outgoing: Tensor) -> Tensor:
    """Per hidden unit, the L1 norm of its incoming weights times that of its outgoing weights.

    ``incoming``: ``[units, inputs]``; ``outgoing``: ``[outputs, units]``. The product does not
    change when a ReLU unit's incoming weights are scaled by ``a > 0`` and its outgoing by ``1/a``
    (the same function), which either norm alone would.
    """
    return incoming.abs().sum(dim=1) * outgoing.abs().sum(dim=0)


def _permute_rows(module: nn.Module, order: Tensor) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        tensor = getattr(module, name, None)
        if tensor is not None:
            tensor.copy_(tensor[order])


@torch.no_grad()
def sort_units(mlp: TruncatableMLP) -> list[Tensor]:
    """Permute every hidden layer of ``mlp`` in place, most important unit first; returns each
    layer's importance scores in the new order (non-increasing).

    Importance is ``connection_importance`` of the unit's (BatchNorm-scaled) weights. Layers are
    sorted first to last, so each layer's outgoing weights are read in their final order.
    """
    scores = []
    for i, block in enumerate(mlp.blocks):
        following = mlp.blocks[i + 1].linear if i + 1 < len(mlp.blocks) else mlp.head
        incoming = block.linear.weight
        if block.norm is not None and block.norm.affine:
            gain = block.norm.weight / torch.sqrt(block.norm.running_var + block.norm.eps)
            incoming = incoming * gain.abs()[:, None]
        importance = connection_importance(incoming, following.weight)
        order = torch.argsort(importance, descending=True, stable=True)
        _permute_rows(block.linear, order)
        if block.norm is not None:
            _permute_rows(block.norm, order)
        following.weight.copy_(following.weight[:, order])
        scores.append(importance[order])
    return scores
