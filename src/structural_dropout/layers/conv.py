"""Truncatable convolutions: a cut keeps the first channels, and only those are computed.

``TruncatableCNN`` is a plain CNN (convolution blocks, then fully connected layers) whose every
layer follows one width axis, so a model width ``w`` of ``axis`` is a width multiplier
``w / axis`` shared by layers of different sizes (as slimmable networks shrink them).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from ..spec import PLAIN, DropoutSpec
from .dropout import StructuralDropout, share_cuts
from .mlp import (
    SlicedLinear,
    TruncatableBlock,
    TruncatableLinear,
    dense_batch_norm,
    dense_linear,
    sliced_batch_norm,
)


class SlicedConv2d(nn.Conv2d):
    """``nn.Conv2d`` that takes a prefix of its input channels and can return a prefix of its
    output channels (the kernels are sliced, nothing is masked)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.groups != 1:
            raise ValueError("a truncatable Conv2d cannot be grouped (groups must be 1)")

    def forward(self, x: Tensor, out_channels: int | None = None) -> Tensor:
        k = self.out_channels if out_channels is None else out_channels
        bias = None if self.bias is None else self.bias[:k]
        return self._conv_forward(x, self.weight[:k, : x.shape[1]], bias)


class TruncatableConv2d(TruncatableBlock):
    """Convolution block: conv → [BatchNorm2d] → activation → [max-pool] → structural dropout
    over the channels. Only the kept channels are computed; the input may itself be a prefix of
    ``in_channels``. ``axis``: the model width the block follows (``StructuralDropout``). The
    spec's ordinary dropout (``standard_p``) does not apply to convolutions."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        dropout: DropoutSpec | None = PLAIN,
        batch_norm: bool = False,
        activation: Callable[[], nn.Module] = nn.ReLU,
        pool: int | None = None,
        padding: int = 0,
        axis: int | None = None,
    ):
        super().__init__()
        self.conv = SlicedConv2d(in_channels, out_channels, kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_channels) if batch_norm else None
        self.activation = activation()
        self.pool = None if pool is None else nn.MaxPool2d(pool)
        self.dropout = (
            None
            if dropout is None
            else StructuralDropout(
                out_channels, dropout.cut_settings(), dim=1, mode="slice", axis=axis
            )
        )
        self.gate: nn.Module | None = None  # a learned per-channel dropout (Dropout Compaction)

    @property
    def units(self) -> int:
        return self.conv.out_channels

    def forward(self, x: Tensor) -> Tensor:
        k = self.active_units()
        y = self.conv(x, k)
        if self.norm is not None:
            y = sliced_batch_norm(self.norm, y, k)
        y = self.activation(y)
        if self.pool is not None:
            y = self.pool(y)
        if self.gate is not None:
            y = self.gate(y)
        return y if self.dropout is None else self.dropout.keep(y, k)


class TruncatableCNN(nn.Module):
    """Convolution blocks, a flatten, hidden fully connected layers and an output layer, every
    hidden layer cut by structural dropout on one shared axis.

    ``channels`` lists the blocks' output channels (each: a ``kernel_size`` convolution, the
    activation, a ``pool``-sized max-pool), ``hidden`` the fully connected widths; e.g. LeNet-5
    as the pruning literature uses it: ``TruncatableCNN((1, 28, 28), [20, 50], [500], 10)``.
    ``axis`` (default: the widest layer) is the model width: at width ``w`` every layer keeps
    ``ceil(w * its width / axis)`` units. The flatten keeps ``channels x positions`` inputs
    of the first fully connected layer, a prefix of them since channels come first.

    Ordinary dropout (``dropout.standard_p``) applies to the fully connected layers only, as
    LeNet and AlexNet use it. ``dropout.width_cap`` builds the model that ``export`` gives at
    that width (every layer its share), trained from scratch, its axis the cap.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        channels: Sequence[int],
        hidden: Sequence[int],
        out_features: int,
        dropout: DropoutSpec | None = PLAIN,
        kernel_size: int = 5,
        pool: int | None = 2,
        padding: int = 0,
        batch_norm: bool = False,
        activation: Callable[[], nn.Module] = nn.ReLU,
        axis: int | None = None,
    ):
        super().__init__()
        if not channels:
            raise ValueError("channels must list at least one convolution")
        if len(in_shape) != 3:
            raise ValueError(f"in_shape must be (channels, height, width), got {in_shape!r}")
        self.axis = max([*channels, *hidden]) if axis is None else axis
        if dropout is not None and dropout.width_cap is not None:
            cap = min(dropout.width_cap, self.axis)
            channels, hidden = ([-(-cap * n // self.axis) for n in ns] for ns in (channels, hidden))
            self.axis = cap
        ins = [in_shape[0], *channels]
        self.convs = nn.ModuleList(
            TruncatableConv2d(
                a, b, kernel_size, dropout, batch_norm, activation, pool, padding, self.axis
            )
            for a, b in zip(ins[:-1], ins[1:], strict=True)
        )
        with torch.no_grad():  # the spatial positions each last-block channel flattens to
            x = torch.zeros(1, *in_shape)
            for block in self.convs:
                x = block.pool(block.conv(x)) if block.pool is not None else block.conv(x)
        self.positions = x.shape[2] * x.shape[3]
        widths = [channels[-1] * self.positions, *hidden]
        self.fcs = nn.ModuleList(
            TruncatableLinear(a, b, dropout, batch_norm, activation, self.axis)
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.head = SlicedLinear(widths[-1], out_features)
        self.in_shape, self.out_features = tuple(in_shape), out_features
        self.channels, self.hidden = list(channels), list(hidden)
        if dropout is not None and dropout.shared_cut:
            share_cuts(self)

    def forward(self, x: Tensor) -> Tensor:
        for block in self.convs:
            x = block(x)
        x = x.flatten(1)
        for block in self.fcs:
            x = block(x)
        return self.head(x)

    # The `Truncatable` protocol (structural_dropout.truncatable).

    def width_dependent_norms(self) -> list[nn.Module]:
        """The BatchNorm layers of every block: their inputs change with the width."""
        blocks = [*self.convs, *self.fcs]
        return [block.norm for block in blocks if block.norm is not None]

    def num_params(self, width: int | None = None) -> int:
        """Parameters of ``export(width)``, counted without building it."""
        total, n_in = 0, self.in_shape[0]
        for block in self.convs:
            k = block.kept(width)
            total += n_in * k * block.conv.weight[0, 0].numel()
            total += (0 if block.conv.bias is None else k) + _norm_params(block.norm, k)
            n_in = k
        n_in *= self.positions
        for block in self.fcs:
            k = block.kept(width)
            total += n_in * k + (0 if block.linear.bias is None else k)
            total += _norm_params(block.norm, k)
            n_in = k
        head_bias = 0 if self.head.bias is None else self.out_features
        return total + n_in * self.out_features + head_bias

    @torch.no_grad()
    def export(self, width: int | None = None) -> nn.Sequential:
        """A plain ``nn.Sequential`` of ``Conv2d`` / ``BatchNorm2d`` / activation / ``MaxPool2d``
        blocks, a ``Flatten`` and ``Linear`` layers, holding only what ``width`` keeps (eval
        behaviour; the ``width / c`` rescaling folded into each next layer's input weights)."""
        if any(block.gate is not None for block in [*self.convs, *self.fcs]):
            raise ValueError("a gated CNN exports after DropoutCompaction.finalize compacts it")
        layers: list[nn.Module] = []
        n_in, scale = self.in_shape[0], 1.0
        for block in [*self.convs, None, *self.fcs]:  # None: the flatten between them
            if block is None:
                layers.append(nn.Flatten())
                n_in *= self.positions
                continue
            k = block.kept(width)
            convolution = isinstance(block, TruncatableConv2d)
            dense = dense_conv if convolution else dense_linear
            layers.append(dense(block.conv if convolution else block.linear, k, n_in, scale))
            if block.norm is not None:
                layers.append(dense_batch_norm(block.norm, k))
            layers.append(copy.deepcopy(block.activation))
            if convolution and block.pool is not None:
                layers.append(copy.deepcopy(block.pool))
            n_in, scale = k, block.input_scale(width)
        layers.append(dense_linear(self.head, self.out_features, n_in, scale))
        return nn.Sequential(*layers).eval()


def _norm_params(norm: nn.Module | None, k: int) -> int:
    return 2 * k if norm is not None and norm.affine else 0


def dense_conv(conv: nn.Conv2d, n_out: int, n_in: int, in_scale: float = 1.0) -> nn.Conv2d:
    """A new ``nn.Conv2d`` holding the first ``n_out`` output and ``n_in`` input channels of
    ``conv``, its input weights multiplied by ``in_scale``."""
    dense = nn.Conv2d(
        n_in,
        n_out,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    )
    dense.weight.copy_(conv.weight[:n_out, :n_in] * in_scale)
    if conv.bias is not None:
        dense.bias.copy_(conv.bias[:n_out])
    return dense
