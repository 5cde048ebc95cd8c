"""The truncatable MLP against dense models built by hand from its kept units."""

import pytest
import torch
from torch import nn

from structural_dropout import TruncatableMLP, count_params, export, fixed_cut, set_width
from structural_dropout.spec import PLAIN, DropoutSpec


def dense_from_prefix(model: TruncatableMLP, k: int) -> nn.Sequential:
    """The obvious dense model: first-k weights, BatchNorm stats sliced, rescale applied after."""

    class Scale(nn.Module):
        def __init__(self, factor):
            super().__init__()
            self.factor = factor

        def forward(self, x):
            return x * self.factor

    layers, n_in = [], model.in_features
    for block in model.blocks:
        width = block.dropout.width
        kk = min(k, width)
        linear = nn.Linear(n_in, kk)
        linear.weight.data = block.linear.weight.data[:kk, :n_in].clone()
        linear.bias.data = block.linear.bias.data[:kk].clone()
        layers.append(linear)
        if block.norm is not None:
            norm = nn.BatchNorm1d(kk)
            norm.weight.data = block.norm.weight.data[:kk].clone()
            norm.bias.data = block.norm.bias.data[:kk].clone()
            norm.running_mean = block.norm.running_mean[:kk].clone()
            norm.running_var = block.norm.running_var[:kk].clone()
            layers.append(norm)
        layers.append(nn.ReLU())
        if block.dropout.rescale and kk < width:
            layers.append(Scale(width / kk))
        n_in = kk
    head = nn.Linear(n_in, model.out_features)
    head.weight.data = model.head.weight.data[:, :n_in].clone()
    head.bias.data = model.head.bias.data.clone()
    return nn.Sequential(*layers, head).eval()


def trained_model(batch_norm: bool, spec: DropoutSpec | None = None) -> TruncatableMLP:
    torch.manual_seed(0)
    model = TruncatableMLP(20, [16, 12], 5, spec or DropoutSpec(), batch_norm=batch_norm)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(20):  # move BatchNorm statistics and weights away from their initial values
        loss = model(torch.randn(32, 20) * 2 + 1).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("spec", [DropoutSpec(), PLAIN])
def test_width_k_equals_dense_model_from_first_k_units(batch_norm, spec):
    model = trained_model(batch_norm, spec)
    x = torch.randn(64, 20)
    for k in (1, 5, 12, 13, 16):
        dense = dense_from_prefix(model, k)
        set_width(model, k)
        with torch.no_grad():
            assert torch.allclose(model(x), dense(x), atol=1e-5)
            assert torch.allclose(model.export(k)(x), dense(x), atol=1e-5)
        assert count_params(model, k) == sum(p.numel() for p in dense.parameters())


def test_full_width_eval_is_the_plain_network():
    model = trained_model(batch_norm=False)
    x = torch.randn(8, 20)
    plain = nn.Sequential(
        nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 5)
    )
    plain.load_state_dict(
        {
            "0.weight": model.blocks[0].linear.weight,
            "0.bias": model.blocks[0].linear.bias,
            "2.weight": model.blocks[1].linear.weight,
            "2.bias": model.blocks[1].linear.bias,
            "4.weight": model.head.weight,
            "4.bias": model.head.bias,
        }
    )
    with torch.no_grad():
        assert torch.allclose(model(x), plain(x), atol=1e-6)


def test_mnist_param_counts():
    model = TruncatableMLP(784, [256, 256], 10)
    # 784*k + k + k*k + k + 10*k + 10: each layer counted once, the output layer included.
    for k in (1, 32, 256):
        assert count_params(model, k) == 784 * k + k + k * k + k + 10 * k + 10
    assert count_params(model) == sum(p.numel() for p in model.parameters())


def test_a_training_cut_is_the_same_function_as_that_eval_width():
    model = trained_model(batch_norm=False).train()
    x = torch.randn(8, 20)
    with torch.no_grad(), fixed_cut(model, 7):
        train_out = model(x)
    model.eval()
    set_width(model, 7)
    with torch.no_grad():
        assert torch.allclose(train_out, model(x), atol=1e-6)


def test_full_layers_keep_the_first_hidden_layers_whole():
    torch.manual_seed(0)
    model = TruncatableMLP(6, [16, 16, 16], 3, DropoutSpec(p=1.0), full_layers=2)
    assert [block.dropout is None for block in model.blocks] == [True, True, False]
    model.eval()
    set_width(model, 4)
    assert [block.kept(4) for block in model.blocks] == [16, 16, 4]
    assert count_params(model, 4) == (6 * 16 + 16) + (16 * 16 + 16) + (16 * 4 + 4) + (4 * 3 + 3)
    x = torch.randn(5, 6)
    with torch.no_grad():
        torch.testing.assert_close(export(model, 4)(x), model(x))
    with pytest.raises(ValueError, match="full_layers=3 must leave at least one"):
        TruncatableMLP(6, [16, 16, 16], 3, DropoutSpec(p=1.0), full_layers=3)
