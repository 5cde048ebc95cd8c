"""Truncatable fully connected layers: they compute only the units a cut keeps."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..spec import PLAIN, DropoutSpec
from .dropout import StructuralDropout, rescale_factor, share_cuts


class SlicedLinear(nn.Linear):
    """``nn.Linear`` that takes a prefix of its inputs and can return a prefix of its outputs."""

    def forward(self, x: Tensor, out_features: int | None = None) -> Tensor:
        k = self.out_features if out_features is None else out_features
        bias = None if self.bias is None else self.bias[:k]
        return F.linear(x, self.weight[:k, : x.shape[-1]], bias)


def sliced_batch_norm(norm: _BatchNorm, x: Tensor, k: int) -> Tensor:
    """BatchNorm (1d or 2d) over the first ``k`` channels (dim 1, or the last of a 2-d input),
    sharing (and updating) the full statistics."""
    momentum = 0.0 if norm.momentum is None else norm.momentum
    if norm.training and norm.track_running_stats:
        norm.num_batches_tracked.add_(1)
        if norm.momentum is None:  # cumulative moving average, as nn.BatchNorm does
            momentum = 1.0 / float(norm.num_batches_tracked)
    use_batch_stats = norm.training or not norm.track_running_stats
    running = (norm.running_mean, norm.running_var) if norm.track_running_stats else (None, None)
    return F.batch_norm(
        x,
        None if running[0] is None else running[0][:k],
        None if running[1] is None else running[1][:k],
        None if norm.weight is None else norm.weight[:k],
        None if norm.bias is None else norm.bias[:k],
        use_batch_stats,
        momentum,
        norm.eps,
    )


class TruncatableBlock(nn.Module):
    """What every truncatable layer block shares: ``units`` outputs, then (unless ``dropout`` is
    None) the structural dropout that keeps a prefix of them."""

    dropout: StructuralDropout | None

    @property
    def units(self) -> int:
        raise NotImplementedError

    def kept(self, width: int | None = None) -> int:
        """Units kept at model width ``width`` (None: full); a narrower layer keeps all of them."""
        if self.dropout is None or width is None:
            return self.units
        return self.dropout.kept(width)

    def active_units(self) -> int:
        """Units this forward pass keeps: the cut drawn for this step, or the width set."""
        return self.units if self.dropout is None else self.dropout.active_width()

    def input_scale(self, width: int | None) -> float:
        """The factor this layer's rescaling applies to the next layer's input at ``width``."""
        if self.dropout is None:
            return 1.0
        return rescale_factor(self.kept(width), self.dropout.width, self.dropout.rescale)


class TruncatableLinear(TruncatableBlock):
    """Hidden layer: linear → [BatchNorm] → activation → structural dropout.

    Only the kept units are computed: the weight rows, bias, and BatchNorm statistics and affine
    parameters are sliced to the cut, and the input may itself be a prefix of ``in_features``.
    ``dropout=None`` makes a layer that always keeps all its units (no width applies to it);
    ``axis``: the model width its structural dropout follows (``StructuralDropout``'s ``axis``).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        dropout: DropoutSpec | None = PLAIN,
        batch_norm: bool = False,
        activation: Callable[[], nn.Module] = nn.ReLU,
        axis: int | None = None,
    ):
        super().__init__()
        self.linear = SlicedLinear(in_features, out_features)
        self.norm = nn.BatchNorm1d(out_features) if batch_norm else None
        self.activation = activation()
        standard_p = 0.0 if dropout is None else dropout.standard_p
        self.standard = nn.Dropout(standard_p) if standard_p > 0 else None
        self.dropout = (
            None
            if dropout is None
            else StructuralDropout(out_features, dropout.cut_settings(), mode="slice", axis=axis)
        )
        self.gate: nn.Module | None = None  # a learned per-unit dropout (Dropout Compaction)

    @property
    def units(self) -> int:
        return self.linear.out_features

    def forward(self, x: Tensor) -> Tensor:
        k = self.active_units()  # drawn once: with per-layer cuts each call draws a new one
        return self.activate(self.linear(x, k), k)

    def activate(self, y: Tensor, k: int | None = None) -> Tensor:
        """The rest of the layer after the linear map, keeping ``k`` units (default: the active
        ones). ``y`` may be wider, e.g. computed once at full width: it is sliced."""
        k = self.active_units() if k is None else k
        y = y[..., :k]
        if self.norm is not None:
            y = sliced_batch_norm(self.norm, y, k)
        y = self.activation(y)
        if self.standard is not None:
            y = self.standard(y)
        if self.gate is not None:
            y = self.gate(y)
        return y if self.dropout is None else self.dropout.keep(y, k)


class TruncatableMLP(nn.Module):
    """An MLP whose hidden layers can be truncated to any prefix width.

    ``hidden`` lists the hidden widths, e.g. ``[256, 256]`` for 784 → 256 → 256 → 10. The output
    layer is never truncated; it reads whatever prefix the last hidden layer kept.
    ``full_layers``: the first this many hidden layers are never cut (no structural dropout, and
    no ordinary dropout either): only the later layers shrink with the width.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        dropout: DropoutSpec | None = PLAIN,
        batch_norm: bool = False,
        activation: Callable[[], nn.Module] = nn.ReLU,
        full_layers: int = 0,
    ):
        super().__init__()
        if not hidden:
            raise ValueError("hidden must list at least one hidden width")
        if not 0 <= full_layers < len(hidden):
            raise ValueError(
                f"full_layers={full_layers} must leave at least one of the {len(hidden)} hidden "
                "layers to cut"
            )
        if dropout is not None and dropout.width_cap is not None:
            hidden = [min(h, dropout.width_cap) for h in hidden]
        widths = [in_features, *hidden]
        self.blocks = nn.ModuleList(
            TruncatableLinear(a, b, None if i < full_layers else dropout, batch_norm, activation)
            for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True))
        )
        self.head = SlicedLinear(widths[-1], out_features)
        self.in_features, self.out_features, self.hidden = in_features, out_features, list(hidden)
        if dropout is not None and dropout.shared_cut:
            share_cuts(self)

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x)

    def project(self, x: Tensor) -> Tensor:
        """The first hidden layer's pre-activations at full width. The input is never cut, so
        these do not depend on the width: a sweep computes them once and passes them to
        ``forward_projected`` at every width."""
        return self.blocks[0].linear(x)

    def forward_projected(self, projected: Tensor) -> Tensor:
        """``forward`` from ``project``'s output, at the width set with ``set_width``. It skips the
        module's pre-forward hooks, so in training (where a hook draws the shared cut) call the
        module itself."""
        x = self.blocks[0].activate(projected)
        for block in self.blocks[1:]:
            x = block(x)
        return self.head(x)

    # The `Truncatable` protocol (structural_dropout.truncatable): counting, export and
    # BatchNorm recalibration reach the MLP only through these three methods.

    def width_dependent_norms(self) -> list[nn.BatchNorm1d]:
        """The BatchNorm layers of the hidden layers: their inputs change with the width."""
        return [block.norm for block in self.blocks if block.norm is not None]

    def num_params(self, width: int | None = None) -> int:
        """Parameters of ``export(width)``, counted without building it."""
        total, n_in = 0, self.in_features
        for block in self.blocks:
            k = block.kept(width)
            total += n_in * k + (0 if block.linear.bias is None else k)
            if block.norm is not None and block.norm.affine:
                total += 2 * k
            n_in = k
        return (
            total + n_in * self.out_features + (0 if self.head.bias is None else self.out_features)
        )

    @torch.no_grad()
    def export(self, width: int | None = None) -> nn.Sequential:
        """A plain ``nn.Sequential`` holding only the units kept at ``width`` (eval behaviour).

        The ``width / c`` rescaling is folded into the next layer's input weights.
        """
        if any(block.gate is not None for block in self.blocks):
            raise ValueError("a gated MLP exports after DropoutCompaction.finalize compacts it")
        layers: list[nn.Module] = []
        n_in, scale = self.in_features, 1.0
        for block in self.blocks:
            k = block.kept(width)
            layers.append(dense_linear(block.linear, k, n_in, scale))
            if block.norm is not None:
                layers.append(dense_batch_norm(block.norm, k))
            layers.append(copy.deepcopy(block.activation))
            n_in, scale = k, block.input_scale(width)
        layers.append(dense_linear(self.head, self.out_features, n_in, scale))
        return nn.Sequential(*layers).eval()


def truncatable_mlps(model: nn.Module, purpose: str) -> list[TruncatableMLP]:
    """Every ``TruncatableMLP`` of ``model`` (itself included); an error naming ``purpose`` (what
    the caller would do to them) when there is none."""
    mlps = [m for m in model.modules() if isinstance(m, TruncatableMLP)]
    if not mlps:
        raise ValueError(f"{type(model).__name__} has no TruncatableMLP to {purpose}")
    return mlps


def dense_linear(linear: nn.Linear, n_out: int, n_in: int, in_scale: float = 1.0) -> nn.Linear:
    """A new ``nn.Linear`` holding the first ``n_out`` outputs and ``n_in`` inputs of ``linear``,
    its input weights multiplied by ``in_scale``."""
    dense = nn.Linear(n_in, n_out, bias=linear.bias is not None)
    dense.weight.copy_(linear.weight[:n_out, :n_in] * in_scale)
    if linear.bias is not None:
        dense.bias.copy_(linear.bias[:n_out])
    return dense


def dense_batch_norm(norm: _BatchNorm, k: int) -> _BatchNorm:
    """A new BatchNorm of ``norm``'s kind holding its first ``k`` channels (statistics too)."""
    dense = type(norm)(
        k,
        eps=norm.eps,
        momentum=norm.momentum,
        affine=norm.affine,
        track_running_stats=norm.track_running_stats,
    )
    state = {name: t[:k] if t.dim() else t for name, t in norm.state_dict().items()}
    dense.load_state_dict(state)
    return dense
