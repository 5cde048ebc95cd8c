"""Truncatable transformer pieces: heads and feed-forward units cut to a prefix equal the plain
exported model, count its parameters, get no gradient above the cut and stay causal."""

import pytest
import torch
from torch import nn

from structural_dropout import DropoutSpec, count_params, export, fixed_cut, set_width
from structural_dropout.layers.transformer import (
    CausalSelfAttention,
    TransformerBlock,
    TruncatableFeedForward,
    TruncatableSelfAttention,
    export_shape,
    set_shape,
    shape_params,
)

D, HEADS, FFN, VOCAB, T = 16, 4, 32, 11, 7
NESTED = DropoutSpec(p=1.0)


class TinyGPT(nn.Module):
    def __init__(self, spec=NESTED, **block):
        super().__init__()
        self.tokens, self.positions = nn.Embedding(VOCAB, D), nn.Embedding(T, D)
        self.blocks = nn.Sequential(*(TransformerBlock(D, HEADS, FFN, spec, **block) for _ in "ab"))
        self.norm, self.head = nn.LayerNorm(D), nn.Linear(D, VOCAB)

    def forward(self, idx):
        x = self.tokens(idx) + self.positions(torch.arange(idx.shape[1]))
        return self.head(self.norm(self.blocks(x)))


def model(**kwargs):
    torch.manual_seed(0)
    gpt = TinyGPT(**kwargs)
    with torch.no_grad():  # non-trivial biases and norms, so that a slicing slip shows
        for p in gpt.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return gpt.eval()


IDX = torch.randint(0, VOCAB, (3, T), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("width", [1, 5, 8, 9, 17, 31, 32])
def test_a_width_equals_its_export_and_counts_its_parameters(width):
    gpt = model()
    set_width(gpt, width)
    dense = export(gpt, width)
    assert torch.allclose(gpt(IDX), dense(IDX), atol=1e-5)
    assert count_params(gpt, width) == sum(p.numel() for p in dense.parameters())
    attention = dense.blocks[0].attention
    assert type(attention) is CausalSelfAttention
    assert attention.heads == -(-width * HEADS // FFN)  # heads follow the feed-forward axis
    assert dense.blocks[0].ffn[0].out_features == width
    plain = {type(m) for m in dense.modules()} - {TinyGPT, nn.Sequential, TransformerBlock}
    assert plain == {nn.Embedding, nn.LayerNorm, nn.Linear, nn.GELU, nn.Dropout,
                     CausalSelfAttention}  # fmt: skip


@pytest.mark.parametrize(("ffn", "heads"), [(None, 1), (None, 3), (7, None), (20, 2), (32, 4)])
def test_heads_and_units_set_apart_equal_their_export(ffn, heads):
    gpt = model()
    set_shape(gpt, ffn=ffn, heads=heads)
    dense = export_shape(gpt, ffn=ffn, heads=heads)
    assert torch.allclose(gpt(IDX), dense(IDX), atol=1e-5)
    assert shape_params(gpt, ffn, heads) == sum(p.numel() for p in dense.parameters())
    assert dense.blocks[1].attention.heads == (HEADS if heads is None else heads)
    assert dense.blocks[1].ffn[0].out_features == (FFN if ffn is None else ffn)


def masked_reference(gpt, ffn, heads):
    """The obvious slow form: every unit and head computed, those above the cut zeroed (and the
    kept ones rescaled), in a copy whose layers are never cut."""
    full = model()
    full.load_state_dict(gpt.state_dict())
    for block in full.blocks:
        attention, feed = block.attention, block.ffn

        def attend(x, a=attention, keep=heads):
            q, k, v = (f(x).view(*x.shape[:2], HEADS, -1).transpose(1, 2)
                       for f in (a.query, a.key, a.value))  # fmt: skip
            y = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            y = y * (torch.arange(HEADS) < keep).view(1, HEADS, 1, 1) * HEADS / keep
            return a.out(y.transpose(1, 2).reshape(*x.shape[:2], D))

        def feed_forward(x, f=feed, keep=ffn):
            h = f.up.activation(f.up.linear(x)) * (torch.arange(FFN) < keep) * FFN / keep
            return f.down(h)

        attention.forward, feed.forward = attend, feed_forward
    return full


@pytest.mark.parametrize("width", [4, 9, 24])
def test_the_sliced_path_equals_the_masked_one(width):
    gpt = model()
    set_width(gpt, width)
    reference = masked_reference(gpt, width, -(-width * HEADS // FFN))
    assert torch.allclose(gpt(IDX), reference(IDX), atol=1e-5)


def test_gradients_never_reach_heads_or_units_above_the_cut_and_none_are_computed():
    gpt = model().train()
    block = gpt.blocks[0]
    shapes = []
    for layer in (block.attention.query, block.attention.value, block.ffn.up.linear):
        layer.register_forward_hook(lambda m, args, out: shapes.append(out.shape[-1]))
    with fixed_cut(gpt, 12):  # 12 of 32 units, 2 of 4 heads
        gpt(IDX).square().mean().backward()
    assert shapes == [2 * D // HEADS, 2 * D // HEADS, 12]  # sliced weights, not masks
    inner = 2 * (D // HEADS)
    for projection in (block.attention.query, block.attention.key, block.attention.value):
        assert projection.weight.grad[inner:].abs().sum() == 0
        assert projection.weight.grad[:inner].abs().sum() > 0
    assert block.attention.out.weight.grad[:, inner:].abs().sum() == 0
    assert block.ffn.up.linear.weight.grad[12:].abs().sum() == 0
    assert block.ffn.up.linear.weight.grad[:12].abs().sum() > 0
    assert block.ffn.down.weight.grad[:, 12:].abs().sum() == 0


@pytest.mark.parametrize("width", [1, 13, 32])
def test_no_future_token_changes_an_earlier_logit_at_any_width(width):
    gpt = model()
    set_width(gpt, width)
    changed = IDX.clone()
    changed[:, 4:] = (changed[:, 4:] + 1) % VOCAB
    before, after = gpt(IDX), gpt(changed)
    assert torch.equal(before[:, :4], after[:, :4])
    assert not torch.allclose(before[:, 4:], after[:, 4:])


def test_only_what_is_nested_is_cut():
    gpt = model(nest_heads=False)  # MatFormer's choice: the feed-forward layers only
    dense = export(gpt, 8)
    assert dense.blocks[0].attention.heads == HEADS and dense.blocks[0].ffn[0].out_features == 8
    with pytest.raises(ValueError, match="no nested layer to set heads=2"):
        set_shape(gpt, heads=2)


def test_bad_settings_are_one_line_errors():
    with pytest.raises(ValueError, match="d_model=10 is not a multiple of heads=4"):
        TruncatableSelfAttention(10, 4)
    with pytest.raises(ValueError, match="cannot be cut per sample"):
        TruncatableSelfAttention(16, 4, DropoutSpec(p=1.0, per_sample=True))
    with pytest.raises(ValueError, match="heads=5 is outside 1..4"):
        set_shape(model(), heads=5)
    with pytest.raises(ValueError, match="ffn=0 is outside 1..32"):
        set_shape(model(), ffn=0)
    with pytest.raises(ValueError, match="hidden units=33 is outside 1..32"):
        TruncatableFeedForward(D, FFN).export_at(33)
