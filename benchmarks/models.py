"""The models the benchmarks time: each as a structural-dropout model and as a native dense one.

Timings do not depend on the weights, so every model is freshly initialised with ``SEED``.
"""

from __future__ import annotations

import torch
from torch import nn

from experiments.pointnet.model import PointNet
from structural_dropout import PLAIN, DropoutSpec, TruncatableMLP

SEED = 0  # every model and input of the benchmarks

# name: (inputs, hidden widths, outputs) of the MLPs as the experiments build them; the LIIF
# decoder reads 3x3-unfolded EDSR-baseline features (64 channels), an offset and a cell.
MLPS = {
    "mnist_mlp": (784, [256, 256], 10),
    "liif_decoder": (9 * 64 + 4, [256, 256, 256, 256], 3),
}


def structural_mlp(name: str, dropout: DropoutSpec | None = None) -> TruncatableMLP:
    torch.manual_seed(SEED)
    n_in, hidden, n_out = MLPS[name]
    return TruncatableMLP(n_in, hidden, n_out, DropoutSpec() if dropout is None else dropout)


def plain_mlp(name: str) -> TruncatableMLP:
    """The same MLP without structural dropout (p = 0): every step trains the full width."""
    return structural_mlp(name, PLAIN)


def native_mlp(name: str, width: int) -> nn.Sequential:
    """The dense MLP of ``width`` hidden units per layer, built directly from torch.nn."""
    torch.manual_seed(SEED)
    n_in, hidden, n_out = MLPS[name]
    layers: list[nn.Module] = []
    for n_hidden in hidden:
        layers += [nn.Linear(n_in, min(width, n_hidden)), nn.ReLU()]
        n_in = min(width, n_hidden)
    return nn.Sequential(*layers, nn.Linear(n_in, n_out)).eval()


def pointnet() -> PointNet:
    torch.manual_seed(SEED)
    return PointNet(10, DropoutSpec()).eval()


def example_input(name: str, batch: int) -> torch.Tensor:
    if name == "pointnet":
        return torch.randn(batch, 1024, 3)
    return torch.randn(batch, MLPS[name][0])
