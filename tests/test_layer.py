"""Properties of the structural dropout layer itself."""

import pytest
import torch
from torch import nn

from structural_dropout import (
    StructuralDropout,
    TruncatableMLP,
    fixed_cut,
    model_width,
    set_width,
    share_cuts,
    structural_dropout,
    structural_dropout_mask,
)
from structural_dropout.spec import CUT_KNOBS, CutSettings, DropoutSpec


def draws(layer: StructuralDropout, n: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.tensor([layer.draw_cut(generator) for _ in range(n)])


def test_identity_at_full_width_in_eval():
    layer = StructuralDropout(32, p=1.0).eval()
    x = torch.randn(8, 32)
    assert torch.equal(layer(x), x)


def test_identity_in_training_at_p_zero():
    layer = StructuralDropout(32, p=0.0).train()
    x = torch.randn(8, 32)
    for _ in range(20):
        assert torch.equal(layer(x), x)


@pytest.mark.parametrize("p", [0.1, 0.3, 0.7])
def test_truncation_rate_matches_p(p):
    layer = StructuralDropout(64, p=p)
    cuts = draws(layer, 20000, seed=1)
    rate = (cuts < 64).float().mean().item()
    # A truncating step may still draw the full width (1 of 64 grid points).
    assert rate == pytest.approx(p * 63 / 64, abs=0.015)


def test_cuts_stay_on_grid_and_reach_full_width():
    layer = StructuralDropout(40, p=1.0, lower_bound=5, step=7)
    cuts = draws(layer, 5000)
    grid = {5, 12, 19, 26, 33, 40}
    assert set(cuts.tolist()) == grid  # every grid point, full width included, nothing else
    counts = torch.bincount(cuts)[sorted(grid)].float()
    assert (counts / counts.sum() - 1 / len(grid)).abs().max() < 0.03  # uniform


def test_log_uniform_cuts_are_proportional_to_one_over_cut():
    layer = StructuralDropout(64, p=1.0, lower_bound=8, step=8, distribution="log_uniform")
    cuts = draws(layer, 20000)
    grid = list(range(8, 65, 8))
    assert set(cuts.tolist()) == set(grid)
    frequency = torch.bincount(cuts)[grid].double() / len(cuts)
    expected = 1 / torch.tensor(grid, dtype=torch.float64)
    assert torch.allclose(frequency, expected / expected.sum(), atol=0.01)
    assert frequency[0] / frequency[-1] == pytest.approx(8, rel=0.15)  # P(8) / P(64) = 64 / 8


def test_unknown_distribution_is_rejected():
    with pytest.raises(ValueError, match="distribution"):
        StructuralDropout(8, distribution="normal")
    with pytest.raises(ValueError, match="distribution"):
        DropoutSpec(distribution="poisson")


def test_p_one_truncates_above_023():
    """The original code stored acos(1 - 2p) and so truncated every step for any p > ~0.23."""
    cuts = draws(StructuralDropout(100, p=0.5), 4000)
    assert 0.45 < (cuts < 100).float().mean().item() < 0.55


def test_rescale_keeps_first_features_scaled():
    x = torch.randn(4, 10)
    out = structural_dropout(x, 4, 10, rescale=True)
    assert torch.allclose(out, x[:, :4] * 2.5)
    assert torch.equal(structural_dropout(x, 4, 10, rescale=False), x[:, :4])
    masked = structural_dropout_mask(x, 4, 10)
    assert torch.allclose(masked[:, :4], out) and torch.all(masked[:, 4:] == 0)


def test_feature_dim_is_configurable():
    layer = StructuralDropout(6, dim=1).eval()
    layer.set_width(2)
    x = torch.randn(3, 6, 5)
    out = layer(x)
    assert out.shape == x.shape and torch.all(out[:, 2:] == 0)
    assert torch.allclose(out[:, :2], 3 * x[:, :2])


def test_shared_cut_is_the_same_in_every_layer():
    model = TruncatableMLP(20, [16, 16, 16], 3, DropoutSpec(p=1.0, shared_cut=True)).train()
    seen = []
    for _ in range(30):
        model(torch.randn(2, 20))
        cuts = {block.dropout.cut for block in model.blocks}
        assert len(cuts) == 1
        seen.append(cuts.pop())
    assert len(set(seen)) > 5  # and it changes between steps


@pytest.mark.parametrize(
    "knob", [{"geometric_p": 0.2}, {"per_sample": True}, {"smallest_p": 0.5}, {"p": 0.5}]
)
def test_a_shared_cut_refuses_layers_that_draw_differently(knob):
    """Every knob of the draw is compared (an earlier tuple of knobs left out geometric_p and
    per_sample: a layer with another geometric_p silently drew from the widest layer's)."""
    base = dict(p=1.0, distribution="geometric")
    model = nn.Sequential(
        nn.Linear(4, 8),
        StructuralDropout(8, **base),
        nn.Linear(8, 6),
        StructuralDropout(6, **(base | knob)),
    ).train()
    share_cuts(model)
    with pytest.raises(ValueError, match="same cut settings"):
        model(torch.randn(2, 4))


def test_a_shared_cut_allows_layers_that_only_rescale_differently():
    model = nn.Sequential(
        nn.Linear(4, 8), StructuralDropout(8), nn.Linear(8, 6), StructuralDropout(6, rescale=False)
    ).train()
    share_cuts(model)
    assert model(torch.randn(2, 4)).shape == (2, 6)


def test_knobs_are_defined_once_and_read_through_the_layer():
    layer = StructuralDropout(16, p=0.5, lower_bound=4, geometric_p=0.3, per_sample=True)
    assert layer.settings == CutSettings(p=0.5, lower_bound=4, geometric_p=0.3, per_sample=True)
    for name in CUT_KNOBS:  # every knob readable on the layer and shown by its repr
        assert getattr(layer, name) == getattr(layer.settings, name)
        assert f"{name}={getattr(layer.settings, name)}" in repr(layer)
    spec = DropoutSpec(p=0.5, lower_bound=4, shared_cut=False)
    assert spec.cut_settings() == CutSettings(p=0.5, lower_bound=4)
    with pytest.raises(ValueError, match="lower_bound must be an int >= 1 .*got 0"):
        DropoutSpec(lower_bound=0)  # no width is involved: the message names the knob only


def test_per_layer_cuts_differ():
    model = TruncatableMLP(20, [64, 64], 3, DropoutSpec(p=1.0, shared_cut=False)).train()
    widths = []
    hooks = [
        b.register_forward_hook(lambda m, i, o: widths.append(o.shape[-1])) for b in model.blocks
    ]
    for _ in range(20):
        model(torch.randn(2, 20))
    for hook in hooks:
        hook.remove()
    pairs = list(zip(widths[::2], widths[1::2], strict=True))
    assert any(a != b for a, b in pairs)


def test_gradients_never_reach_units_above_the_cut():
    torch.manual_seed(0)
    model = TruncatableMLP(12, [10, 10], 4, DropoutSpec(p=1.0, shared_cut=False)).train()
    with fixed_cut(model, 3):
        model(torch.randn(5, 12)).sum().backward()
    first, second = model.blocks
    assert torch.all(first.linear.weight.grad[3:] == 0)
    assert torch.all(first.linear.bias.grad[3:] == 0)
    assert torch.all(second.linear.weight.grad[3:] == 0)
    assert torch.all(second.linear.weight.grad[:, 3:] == 0)
    assert torch.all(model.head.weight.grad[:, 3:] == 0)
    assert first.linear.weight.grad[:3].abs().sum() > 0


@pytest.mark.parametrize("batch_norm", [False, True])
def test_sliced_fast_path_equals_masked_slow_path(batch_norm):
    """Training at cut c computes only c units; the result equals masking a full-width pass."""
    torch.manual_seed(0)
    model = TruncatableMLP(12, [10, 8], 4, DropoutSpec(p=1.0), batch_norm=batch_norm).train()
    x = torch.randn(16, 12)
    for cut in (1, 3, 8):
        with fixed_cut(model, cut):
            fast = model(x)
        h = x
        for block in model.blocks:
            z = nn.functional.linear(h, block.linear.weight, block.linear.bias)
            if batch_norm:  # batch statistics over the kept units only (the rest are masked)
                norm = block.norm
                z = nn.functional.batch_norm(z, None, None, norm.weight, norm.bias, True)
            kept = min(cut, block.dropout.width)
            h = structural_dropout_mask(torch.relu(z), kept, block.dropout.width)
        slow = model.head(h)
        assert torch.allclose(fast, slow, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(width=8, p=-0.1), "p must be"),
        (dict(width=8, p=1.5), "1.5"),
        (dict(width=8, lower_bound=0), "lower_bound must be an int >= 1 .*got 0"),
        (dict(width=8, lower_bound=9), "lower_bound=9"),
        (dict(width=8, step=0), "step must be"),
        (dict(width=0), "width must be"),
    ],
)
def test_bad_layer_values_raise(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        StructuralDropout(**kwargs)


def test_bad_eval_widths_raise():
    layer = StructuralDropout(8)
    for width in (0, 9):
        with pytest.raises(ValueError, match=f"width={width}"):
            layer.set_width(width)
    model = TruncatableMLP(4, [8, 6], 2, DropoutSpec())
    with pytest.raises(ValueError, match="width=9"):
        set_width(model, 9)
    set_width(model, 7)  # narrower layers keep all their units
    assert [b.dropout.eval_width for b in model.blocks] == [7, 6]


def test_bad_spec_values_raise():
    with pytest.raises(ValueError, match="p must be"):
        DropoutSpec(p=2.0)
    with pytest.raises(ValueError, match="step must be"):
        DropoutSpec(step=0)
    with pytest.raises(ValueError, match="standard_p must be"):
        DropoutSpec(standard_p=1.5)
    with pytest.raises(ValueError, match="width_cap must be"):
        DropoutSpec(width_cap=0)


def test_geometric_cuts_decay_by_the_ratio():
    layer = StructuralDropout(200, p=1.0, distribution="geometric", geometric_p=0.1)
    cuts = draws(layer, 20000)
    counts = torch.bincount(cuts, minlength=201).double()
    assert counts[1] / counts[2] == pytest.approx(1 / 0.9, rel=0.1)
    assert cuts.double().mean().item() == pytest.approx(10, rel=0.05)  # 1 + (1 - 0.1) / 0.1


def test_per_sample_cuts_keep_a_prefix_of_each_row():
    torch.manual_seed(0)
    layer = StructuralDropout(16, p=1.0, per_sample=True, rescale=False).train()
    x = torch.rand(500, 16) + 1.0  # no zeros of its own
    out = layer(x)
    kept = (out != 0).sum(dim=1)
    assert torch.equal(out != 0, torch.arange(16) < kept[:, None])  # a prefix in every row
    assert kept.unique().numel() > 10  # rows draw different cuts
    assert torch.equal(out[out != 0], x[out != 0])
    layer.eval()
    assert torch.equal(layer(x), x)  # evaluation: full width, no masks


def test_per_sample_mlp_masks_rows_and_fixed_cut_still_pins():
    torch.manual_seed(0)
    spec = DropoutSpec(per_sample=True, shared_cut=False, rescale=False)
    model = TruncatableMLP(6, [32], 2, spec).train()
    block = model.blocks[0]
    hidden = block(torch.randn(300, 6))
    assert hidden.shape == (300, 32)
    assert ((hidden != 0).sum(dim=1) < 32).float().mean() > 0.5  # most rows cut
    with fixed_cut(model, 5):
        assert block(torch.randn(4, 6)).shape == (4, 5)  # a pinned pass slices as usual


@pytest.mark.parametrize("distribution", ["uniform", "geometric"])
def test_smallest_p_puts_its_mass_on_the_smallest_cut(distribution):
    """Measured over many draws, per step and per sample: the smallest cut gets ``smallest_p``
    plus its share of the rest under the distribution."""
    knobs = dict(p=1.0, lower_bound=8, step=4, distribution=distribution, geometric_p=0.1)
    layer = StructuralDropout(64, smallest_p=0.3, **knobs)
    grid = torch.arange(len(layer.grid()), dtype=torch.float64)
    shape = torch.ones_like(grid) if distribution == "uniform" else 0.9**grid
    share = (shape[0] / shape.sum()).item()  # the smallest cut's share under the distribution
    expected = 0.3 + 0.7 * share
    step_cuts = draws(layer, 20000)
    sample_cuts = layer.draw_cuts(20000, torch.Generator().manual_seed(1))
    for cuts in (step_cuts, sample_cuts):
        assert (cuts == 8).double().mean().item() == pytest.approx(expected, abs=0.015)
        assert set(cuts.tolist()) <= set(layer.grid())
    without = draws(StructuralDropout(64, **knobs), 20000)
    assert (without == 8).double().mean().item() == pytest.approx(share, abs=0.015)


def test_a_layer_on_an_axis_keeps_its_share_of_the_model_width():
    narrow = StructuralDropout(20, axis=500, lower_bound=32)  # a lower bound on the axis
    kept = [narrow.kept(w) for w in range(1, 501)]
    assert kept[0] == 1 and kept[-1] == 20 and kept[24] == 1 and kept[25] == 2  # ceil(w/25)
    assert all(a <= b for a, b in zip(kept, kept[1:], strict=False))  # shrinks with the model
    assert narrow.grid()[0] == 32 and narrow.grid()[-1] == 500
    assert StructuralDropout(20).kept(300) == 20  # no axis: min(width, own width)
    with pytest.raises(ValueError, match="lower_bound=32 is above the layer width 20"):
        StructuralDropout(20, lower_bound=32)
    with pytest.raises(ValueError, match="axis must be an int >= 1"):
        StructuralDropout(20, axis=0)


def test_set_width_and_a_shared_cut_shrink_layers_on_an_axis_together():
    model = nn.Sequential(
        nn.Linear(4, 20), StructuralDropout(20, axis=100), nn.Linear(20, 100),
        StructuralDropout(100), nn.Linear(100, 3),
    )  # fmt: skip
    narrow, wide = model[1], model[3]
    assert model_width(model) == 100
    set_width(model, 30)
    assert (narrow.eval_width, wide.eval_width) == (6, 30)
    share_cuts(model)
    model.train()
    pairs = set()
    for _ in range(200):
        model(torch.randn(2, 4))
        pairs.add((narrow.cut, wide.cut))
    assert len(pairs) > 20
    assert all(n == -(-w * 20 // 100) for n, w in pairs)  # one cut, each layer its share
    with fixed_cut(model, 50):
        assert (narrow.cut, wide.cut) == (10, 50)


def test_per_sample_cuts_on_an_axis_keep_each_rows_share():
    torch.manual_seed(0)
    layer = StructuralDropout(10, axis=40, p=1.0, per_sample=True, rescale=False).train()
    out = layer(torch.rand(400, 10) + 1.0)
    kept = (out != 0).sum(dim=1)
    assert torch.equal(out != 0, torch.arange(10) < kept[:, None])
    assert set(kept.tolist()) == set(range(1, 11))  # ceil(c / 4) of cuts 1..40:
    assert (kept == 10).float().mean() < 0.2  # a tenth each, not min(c, 10) (31 of 40 at 10)
