"""Truncatable transformer pieces: a prefix of a feed-forward layer's hidden units, a prefix of an
attention layer's heads; only what a cut keeps is computed.

Both follow one width axis when given one (``axis``: the feed-forward width, say), so a model
width ``w`` shrinks the feed-forward layers to ``w`` units and the attention layers to
``ceil(w * heads / axis)`` heads together; ``set_width`` on one block, or on the attention
layers alone, sets them apart. The residual stream (the model dimension) is never cut: every
block, the embeddings and the output layer read all of it, and its parameters are the
embeddings', not the blocks' (cutting it as well needs a LayerNorm over the kept dimensions in
every block, as HydraViT does, which the exported model would have to reproduce).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..spec import PLAIN, DropoutSpec
from ..truncatable import replace_parts
from .dropout import StructuralDropout, check_width, rescale_factor
from .mlp import SlicedLinear, TruncatableLinear, dense_linear


class CausalSelfAttention(nn.Module):
    """Plain multi-head causal self-attention of ``nn.Linear`` layers: ``heads`` heads of
    ``head_dim`` each (``heads * head_dim`` may be less than ``d_model``: an exported model that
    keeps fewer heads). What ``TruncatableSelfAttention.export`` returns."""

    def __init__(self, d_model: int, heads: int, head_dim: int, bias: bool = True):
        super().__init__()
        inner = heads * head_dim
        self.query = nn.Linear(d_model, inner, bias=bias)
        self.key = nn.Linear(d_model, inner, bias=bias)
        self.value = nn.Linear(d_model, inner, bias=bias)
        self.out = nn.Linear(inner, d_model, bias=bias)
        self.heads, self.head_dim = heads, head_dim

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = (split_heads(f(x), self.head_dim) for f in (self.query, self.key, self.value))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(merge_heads(y))


def split_heads(x: Tensor, head_dim: int) -> Tensor:
    """``[batch, time, heads * head_dim]`` → ``[batch, heads, time, head_dim]``."""
    batch, time, inner = x.shape
    return x.view(batch, time, inner // head_dim, head_dim).transpose(1, 2)


def merge_heads(y: Tensor) -> Tensor:
    """``[batch, heads, time, head_dim]`` → ``[batch, time, heads * head_dim]``."""
    batch, heads, time, head_dim = y.shape
    return y.transpose(1, 2).reshape(batch, time, heads * head_dim)


class TruncatableSelfAttention(nn.Module):
    """Causal self-attention whose heads are cut to a prefix by structural dropout: at ``h``
    kept heads only their rows of the query, key and value projections and their columns of the
    output projection are used (the rest is never computed), and the kept heads' outputs are
    rescaled by ``heads / h`` when ``dropout.rescale``. ``dropout=None``: never cut.
    ``axis``: the model width the head count follows (``StructuralDropout``'s ``axis``);
    ``head_dim`` (default ``d_model / heads``): each head's size (a model built as another's
    export at fewer heads keeps its head size). Per-sample cuts (``dropout.per_sample``) are not
    supported: a batch's samples would need different matrix shapes."""

    def __init__(
        self,
        d_model: int,
        heads: int,
        dropout: DropoutSpec | None = PLAIN,
        axis: int | None = None,
        bias: bool = True,
        head_dim: int | None = None,
    ):
        super().__init__()
        if head_dim is None and d_model % heads:
            raise ValueError(f"d_model={d_model} is not a multiple of heads={heads}")
        if dropout is not None and dropout.per_sample:
            raise ValueError(
                "attention heads cannot be cut per sample: use per_sample=false, or nest the "
                "feed-forward units only (TransformerBlock's nest_heads=False)"
            )
        self.head_dim = d_model // heads if head_dim is None else head_dim
        self.d_model, self.heads, inner = d_model, heads, heads * self.head_dim
        self.query, self.key, self.value = (SlicedLinear(d_model, inner, bias) for _ in "qkv")
        self.out = SlicedLinear(inner, d_model, bias)
        self.dropout = (
            None
            if dropout is None
            else StructuralDropout(heads, dropout.cut_settings(), dim=1, mode="slice", axis=axis)
        )

    def kept(self, width: int | None = None) -> int:
        """Heads kept at model width ``width`` (None: all)."""
        return self.heads if self.dropout is None or width is None else self.dropout.kept(width)

    def forward(self, x: Tensor) -> Tensor:
        h = self.heads if self.dropout is None else self.dropout.active_width()
        inner = h * self.head_dim
        q, k, v = (
            split_heads(f(x, inner), self.head_dim) for f in (self.query, self.key, self.value)
        )
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        if self.dropout is not None:
            y = self.dropout.keep(y, h)  # the heads / h rescaling (dim 1: the heads)
        return self.out(merge_heads(y))

    # The `Truncatable` protocol (structural_dropout.truncatable).

    def width_dependent_norms(self) -> list[nn.Module]:
        return []  # no BatchNorm: LayerNorm reads the residual stream, which is never cut

    def num_params(self, width: int | None = None) -> int:
        """Parameters of ``export(width)``, counted without building it."""
        return self.params_at(self.kept(width))

    def export(self, width: int | None = None) -> CausalSelfAttention:
        return self.export_at(self.kept(width))

    def params_at(self, h: int) -> int:
        """Parameters of ``export_at(h)``."""
        inner = check_width(h, self.heads, "heads") * self.head_dim
        bias = self.out.bias is not None
        return 4 * self.d_model * inner + (3 * inner + self.d_model if bias else 0)

    @torch.no_grad()
    def export_at(self, h: int) -> CausalSelfAttention:
        """A plain ``CausalSelfAttention`` of the first ``h`` heads (the rescaling folded into
        the output projection)."""
        inner = check_width(h, self.heads, "heads") * self.head_dim
        dense = CausalSelfAttention(self.d_model, h, self.head_dim, self.out.bias is not None)
        for name in ("query", "key", "value"):
            setattr(dense, name, dense_linear(getattr(self, name), inner, self.d_model))
        scale = 1.0 if self.dropout is None else rescale_factor(h, self.heads, self.dropout.rescale)
        dense.out = dense_linear(self.out, self.d_model, inner, scale)
        return dense.eval()


class TruncatableFeedForward(nn.Module):
    """A transformer's feed-forward layer, ``d_model → hidden → d_model``, its hidden units cut
    to a prefix by structural dropout (only the kept units are computed); ``dropout=None``:
    never cut. ``axis``: the model width it follows."""

    def __init__(
        self,
        d_model: int,
        hidden: int,
        dropout: DropoutSpec | None = PLAIN,
        axis: int | None = None,
        activation: type[nn.Module] = nn.GELU,
    ):
        super().__init__()
        self.up = TruncatableLinear(d_model, hidden, dropout, activation=activation, axis=axis)
        self.down = SlicedLinear(hidden, d_model)
        self.d_model, self.hidden = d_model, hidden
        self.dropout = self.up.dropout

    def kept(self, width: int | None = None) -> int:
        """Hidden units kept at model width ``width`` (None: all)."""
        return self.up.kept(width)

    def forward(self, x: Tensor) -> Tensor:
        return self.down(self.up(x))

    # The `Truncatable` protocol (structural_dropout.truncatable).

    def width_dependent_norms(self) -> list[nn.Module]:
        return []

    def num_params(self, width: int | None = None) -> int:
        """Parameters of ``export(width)``, counted without building it."""
        return self.params_at(self.kept(width))

    def export(self, width: int | None = None) -> nn.Sequential:
        return self.export_at(self.kept(width))

    def params_at(self, k: int) -> int:
        """Parameters of ``export_at(k)``."""
        check_width(k, self.hidden, "hidden units")
        up_bias = 0 if self.up.linear.bias is None else k
        down_bias = 0 if self.down.bias is None else self.d_model
        return 2 * self.d_model * k + up_bias + down_bias

    @torch.no_grad()
    def export_at(self, k: int) -> nn.Sequential:
        """``Linear → activation → Linear`` of the first ``k`` hidden units (the rescaling folded
        into the second layer; ordinary dropout is the identity in eval mode and left out)."""
        check_width(k, self.hidden, "hidden units")
        if self.up.gate is not None:
            raise ValueError("a gated feed-forward layer exports after Compaction compacts it")
        drop = self.up.dropout
        scale = 1.0 if drop is None else rescale_factor(k, drop.width, drop.rescale)
        return nn.Sequential(
            dense_linear(self.up.linear, k, self.d_model),
            copy.deepcopy(self.up.activation),
            dense_linear(self.down, self.d_model, k, scale),
        ).eval()


class TransformerBlock(nn.Module):
    """A pre-LayerNorm decoder block: ``x + attention(norm(x))``, then ``x + ffn(norm(x))``.
    ``nest_heads`` / ``nest_ffn``: whether structural dropout cuts the heads / the feed-forward
    units; ``axis``: the model width both follow (default: the feed-forward width). Each layer
    draws its own cut in training; for one cut per step in all blocks (``dropout.shared_cut``),
    call ``share_cuts`` on the whole model, as the model owns the step."""

    def __init__(
        self,
        d_model: int,
        heads: int,
        ffn_hidden: int,
        dropout: DropoutSpec | None = PLAIN,
        nest_heads: bool = True,
        nest_ffn: bool = True,
        axis: int | None = None,
        residual_dropout: float = 0.0,
        head_dim: int | None = None,
    ):
        super().__init__()
        axis = ffn_hidden if axis is None else axis
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = TruncatableSelfAttention(
            d_model, heads, dropout if nest_heads else None, axis, head_dim=head_dim
        )
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = TruncatableFeedForward(d_model, ffn_hidden, dropout if nest_ffn else None, axis)
        self.drop = nn.Dropout(residual_dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop(self.attention(self.norm1(x)))
        return x + self.drop(self.ffn(self.norm2(x)))


def nested_parts(
    model: nn.Module,
) -> tuple[list[TruncatableSelfAttention], list[TruncatableFeedForward]]:
    """The attention and feed-forward layers of ``model`` that structural dropout cuts."""
    parts = [m for m in model.modules() if getattr(m, "dropout", None) is not None]
    return (
        [m for m in parts if isinstance(m, TruncatableSelfAttention)],
        [m for m in parts if isinstance(m, TruncatableFeedForward)],
    )


def set_shape(model: nn.Module, ffn: int | None = None, heads: int | None = None) -> None:
    """Evaluate ``model`` with ``ffn`` hidden units in every nested feed-forward layer and
    ``heads`` heads in every nested attention layer (None: all of them), each set apart from the
    other (``set_width`` shrinks both along their shared axis)."""
    attentions, ffns = nested_parts(model)
    for what, value, layers in (("heads", heads, attentions), ("ffn", ffn, ffns)):
        if value is not None and not layers:
            raise ValueError(f"{type(model).__name__} has no nested layer to set {what}={value}")
        for layer in layers:
            if value is not None:
                check_width(value, layer.heads if what == "heads" else layer.hidden, what)
            layer.dropout.set_width(value)


def shape_params(model: nn.Module, ffn: int | None = None, heads: int | None = None) -> int:
    """Parameters of ``export_shape(model, ffn, heads)``, counted without building it."""
    attentions, ffns = nested_parts(model)
    total = sum(p.numel() for p in model.parameters())
    for value, layers in ((heads, attentions), (ffn, ffns)):
        if value is not None:
            total += sum(layer.params_at(value) - layer.num_params() for layer in layers)
    return total


@torch.no_grad()
def export_shape(model: nn.Module, ffn: int | None = None, heads: int | None = None) -> nn.Module:
    """A plain copy of ``model`` (eval mode) with ``ffn`` hidden units and ``heads`` heads in its
    nested layers (None: all): equal outputs to ``model`` after ``set_shape(model, ffn, heads)``."""
    from ..export import export  # the module export imports the layers

    def shaped(part: nn.Module) -> nn.Module:
        if part.dropout is None:  # not nested: export() below copies it whole
            return part
        if isinstance(part, TruncatableSelfAttention):
            return part.export_at(part.heads if heads is None else heads)
        return part.export_at(part.hidden if ffn is None else ffn)

    kinds = (TruncatableSelfAttention, TruncatableFeedForward)
    dense = replace_parts(copy.deepcopy(model), kinds, shaped)
    return export(dense)
