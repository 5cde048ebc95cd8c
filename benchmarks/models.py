"""The models the benchmarks time: each as a structural-dropout model and as a native dense one.

Timings do not depend on the weights, so every model is freshly initialised with ``SEED``.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from experiments.pointnet.model import PointNet
from experiments.shakespeare.model import CharGPT
from structural_dropout import PLAIN, DropoutSpec, TruncatableCNN, TruncatableMLP

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


def lenet5() -> TruncatableCNN:
    """LeNet-5 as ``experiment=lenet5`` builds it (20 and 50 channels, 500 hidden units)."""
    torch.manual_seed(SEED)
    return TruncatableCNN((1, 28, 28), [20, 50], [500], 10, DropoutSpec()).eval()


class SparseLinear(nn.Module):
    """``nn.Linear`` whose weight is stored as a CSR sparse matrix (torch's sparse kernels): how
    an unstructured-pruned layer runs when its zeros are skipped."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        with warnings.catch_warnings():  # "sparse CSR support is in beta": known, and timed
            warnings.simplefilter("ignore", UserWarning)
            self.weight = linear.weight.detach().to_sparse_csr()
        self.bias = linear.bias.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias[:, None], self.weight, x.T).T


@torch.no_grad()
def magnitude_pruned(model: nn.Sequential, sparsity: float, sparse: bool) -> nn.Sequential:
    """A copy of a dense ``model`` with the ``sparsity`` smallest-magnitude share of every
    weight set to zero (as Drop Pruning leaves them); ``sparse``: its linear layers in CSR."""
    pruned = copy.deepcopy(model)
    for i, layer in enumerate(pruned):
        if isinstance(layer, nn.Linear | nn.Conv2d):
            weight = layer.weight
            cut = weight.abs().flatten().kthvalue(max(1, round(sparsity * weight.numel()))).values
            weight.mul_(weight.abs() > cut)
            if sparse and isinstance(layer, nn.Linear):
                pruned[i] = SparseLinear(layer)
    return pruned.eval()


# The character-level GPT as ``experiment=shakespeare profile=cpu`` builds it.
CHAR_GPT = {"vocab_size": 65, "context": 128, "d_model": 128, "layers": 4, "heads": 4,
            "ffn_hidden": 512}  # fmt: skip


def char_gpt() -> CharGPT:
    torch.manual_seed(SEED)
    return CharGPT(**CHAR_GPT, dropout=DropoutSpec()).eval()


def example_input(name: str, batch: int) -> torch.Tensor:
    if name == "char_gpt":  # a batch of full-context windows of character ids
        return torch.randint(CHAR_GPT["vocab_size"], (batch, CHAR_GPT["context"]))
    if name == "pointnet":
        return torch.randn(batch, 1024, 3)
    if name == "lenet5":
        return torch.randn(batch, 1, 28, 28)
    return torch.randn(batch, MLPS[name][0])
