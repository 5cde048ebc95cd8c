"""Truncatable convolutions: a CNN at width w is the exported dense CNN, counted and recalibrated
the same way as the MLPs, and a user's own nn.Sequential CNN exports too."""

import copy

import pytest
import torch
from torch import nn

from structural_dropout import (
    DropoutSpec,
    StructuralDropout,
    count_params,
    export,
    fixed_cut,
    load_export,
    model_width,
    recalibrated_norms,
    save_export,
    set_width,
)
from structural_dropout.layers.conv import TruncatableCNN

WIDTHS = [1, 7, 20, 33, 50, 101, 250, 499, 500, None]


def lenet(batch_norm: bool = False, rescale: bool = True) -> TruncatableCNN:
    """LeNet-5 as the pruning literature uses it (431,080 parameters), trained a few steps so that
    BatchNorm statistics and every weight are non-trivial."""
    torch.manual_seed(0)
    spec = DropoutSpec(p=1.0, rescale=rescale)
    model = TruncatableCNN((1, 28, 28), [20, 50], [500], 10, spec, batch_norm=batch_norm)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()
    for _ in range(3):
        loss = model(torch.randn(16, 1, 28, 28)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def test_lenet_has_the_literatures_size_and_one_width_axis():
    model = lenet()
    assert sum(p.numel() for p in model.parameters()) == 431_080  # 520 + 25,050 + 400,500 + 5,010
    assert model_width(model) == 500 and model.positions == 16  # 50 channels x 4 x 4
    set_width(model, 100)  # a fifth of every layer
    kept = [block.dropout.eval_width for block in [*model.convs, *model.fcs]]
    assert kept == [4, 10, 100]


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("rescale", [True, False])
def test_the_cnn_at_a_width_is_its_export(batch_norm, rescale):
    model = lenet(batch_norm, rescale)
    x = torch.randn(8, 1, 28, 28)
    for width in WIDTHS:
        set_width(model, width)
        dense = export(model, width)
        assert all(type(m).__module__.startswith("torch.nn") for m in dense.modules())
        with torch.no_grad():
            torch.testing.assert_close(dense(x), model(x), rtol=1e-5, atol=1e-5)
        assert count_params(model, width) == sum(p.numel() for p in dense.parameters())
    set_width(model, None)


def test_gradients_never_reach_channels_above_the_cut():
    model = lenet(batch_norm=True).train()
    model.zero_grad(set_to_none=False)  # zeros, so that an untouched weight shows as 0
    with fixed_cut(model, 100):  # conv1 keeps 4 of 20, conv2 10 of 50, fc 100 of 500
        model(torch.randn(4, 1, 28, 28)).sum().backward()
    conv1, conv2, fc = model.convs[0].conv, model.convs[1].conv, model.fcs[0].linear
    assert conv1.weight.grad[4:].abs().sum() == 0 and conv1.weight.grad[:4].abs().sum() > 0
    assert conv2.weight.grad[10:].abs().sum() == 0 and conv2.weight.grad[:, 4:].abs().sum() == 0
    assert fc.weight.grad[:, 10 * 16 :].abs().sum() == 0 and fc.weight.grad[100:].abs().sum() == 0
    assert model.convs[0].norm.weight.grad[4:].abs().sum() == 0


def _masked_copy(model: TruncatableCNN) -> nn.Sequential:
    """The same network computed at full width with mask-mode dropout (the slow, obvious form)."""
    c1, c2, fc = model.convs[0], model.convs[1], model.fcs[0]
    masked = nn.Sequential(
        nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2), StructuralDropout(20, dim=1, axis=500),
        nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2), StructuralDropout(50, dim=1, axis=500),
        nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), StructuralDropout(500), nn.Linear(500, 10),
    )  # fmt: skip
    for dense, sliced in zip([masked[0], masked[4], masked[9], masked[12]],
                             [c1.conv, c2.conv, fc.linear, model.head], strict=True):  # fmt: skip
        dense.load_state_dict(sliced.state_dict())
    return masked


def test_the_sliced_path_equals_a_masked_one():
    model = lenet().train()
    masked = _masked_copy(model).train()
    x = torch.randn(4, 1, 28, 28)
    for width in [3, 60, 100, 499, 500]:
        with fixed_cut(model, width), fixed_cut(masked, width):
            torch.testing.assert_close(model(x), masked(x), rtol=1e-5, atol=1e-5)


def test_a_users_sequential_cnn_exports_and_reloads(tmp_path):
    model = _masked_copy(lenet()).eval()
    x = torch.randn(3, 1, 28, 28)
    for width in [1, 100, 333, None]:
        set_width(model, width)
        dense = export(model, width)
        assert not any(isinstance(m, StructuralDropout) for m in dense.modules())
        with torch.no_grad():
            torch.testing.assert_close(dense(x), model(x), rtol=1e-5, atol=1e-5)
    set_width(model, 100)
    dense = export(model, 100)
    assert dense[0].out_channels == 4 and dense[3].in_channels == 4 and dense[7].in_features == 160
    save_export(dense, tmp_path, [x])
    with torch.no_grad():
        torch.testing.assert_close(load_export(tmp_path)(x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("layer", "needle"),
    [
        (nn.LocalResponseNorm(2), "cannot fold the cut through LocalResponseNorm"),
        (nn.Conv2d(8, 4, 3, groups=2), "cannot cut the inputs of a grouped Conv2d"),
    ],
)
def test_a_cut_it_cannot_fold_is_an_error_naming_the_layer(layer, needle):
    after = [layer] if isinstance(layer, nn.Conv2d) else [layer, nn.Conv2d(8, 4, 3)]
    model = nn.Sequential(nn.Conv2d(3, 8, 3), StructuralDropout(8, dim=1), *after)
    with pytest.raises(ValueError, match=needle):
        export(model, 4)


def test_a_flatten_into_a_linear_that_does_not_fit_the_channels_is_an_error():
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3), StructuralDropout(8, dim=1), nn.Flatten(), nn.Linear(12, 2)
    )
    with pytest.raises(ValueError, match="inputs are the 8 channels times their positions"):
        export(model, 4)


def test_recalibration_re_estimates_every_batchnorm_at_the_width():
    model = lenet(batch_norm=True)
    data = torch.randn(64, 1, 28, 28)
    set_width(model, 100)  # conv1 keeps 4 channels, conv2 10, fc 100
    calibrating = copy.deepcopy(model)  # calibration normalises with batch statistics
    for norm in calibrating.width_dependent_norms():
        norm.train()
    with torch.no_grad():
        pre1 = calibrating.convs[0].conv(data, 4)
        pre2 = calibrating.convs[1].conv(calibrating.convs[0](data), 10)
    with recalibrated_norms(model, lambda: model(data)):
        for norm, pre in [(model.convs[0].norm, pre1), (model.convs[1].norm, pre2)]:
            k = pre.shape[1]
            torch.testing.assert_close(norm.running_mean[:k], pre.mean(dim=(0, 2, 3)))
            torch.testing.assert_close(
                norm.running_var[:k], pre.var(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5
            )
    assert len(model.width_dependent_norms()) == 3


def test_a_width_cap_builds_the_exported_architecture_to_train_from_scratch():
    capped = TruncatableCNN((1, 28, 28), [20, 50], [500], 10, DropoutSpec(p=0.0, width_cap=100))
    assert (capped.channels, capped.hidden, model_width(capped)) == ([4, 10], [100], 100)
    assert count_params(capped) == count_params(lenet(), 100)


def test_per_sample_cuts_cut_each_images_channels_at_every_position():
    """Nested Dropout on a CNN: each image keeps its own prefix of a layer's channels, the same
    at every position of its feature maps (a channel is one unit), and the model runs so."""
    torch.manual_seed(0)
    layer = StructuralDropout(20, p=1.0, per_sample=True, rescale=False, dim=1).train()
    maps = torch.rand(200, 20, 6, 6) + 1.0  # no zeros of its own
    out = layer(maps)
    alive = out != 0
    kept = alive[:, :, 0, 0].sum(dim=1)
    assert torch.equal(alive, (torch.arange(20) < kept[:, None])[:, :, None, None].expand_as(maps))
    assert kept.unique().numel() > 5  # images draw different cuts
    assert torch.equal(out[alive], maps[alive])
    spec = DropoutSpec(p=1.0, per_sample=True, shared_cut=False, rescale=False)
    model = TruncatableCNN((1, 28, 28), [20, 50], [500], 10, spec).train()
    assert model(torch.rand(8, 1, 28, 28)).shape == (8, 10)  # every block cuts per image
