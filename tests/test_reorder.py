"""The `sorted` baseline: a post-hoc permutation of hidden units by importance."""

import pytest
import torch

from structural_dropout import TruncatableMLP, set_width
from structural_dropout.baselines.unit_sorting import connection_importance, sort_units
from structural_dropout.spec import PLAIN


def trained_plain(batch_norm: bool) -> TruncatableMLP:
    torch.manual_seed(0)
    model = TruncatableMLP(10, [24, 16], 4, PLAIN, batch_norm=batch_norm)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(30):  # move weights and BatchNorm statistics away from their initial values
        loss = model(torch.randn(32, 10)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.mark.parametrize("batch_norm", [False, True])
def test_sorting_keeps_the_full_width_function_and_orders_units(batch_norm):
    model = trained_plain(batch_norm)
    x = torch.randn(50, 10)
    with torch.no_grad():
        before = model(x)
    scores = sort_units(model)
    with torch.no_grad():
        assert torch.allclose(model(x), before, atol=1e-5)
    for score in scores:
        assert (score[:-1] >= score[1:]).all()
    # Sorting an already sorted network changes nothing.
    again = sort_units(model)
    for a, b in zip(scores, again, strict=True):
        assert torch.allclose(a, b)


def test_sorted_prefix_keeps_the_most_important_units():
    model = trained_plain(batch_norm=False)
    first = model.blocks[0]
    importance = connection_importance(first.linear.weight, model.blocks[1].linear.weight)
    top = set(importance.topk(5).indices.tolist())
    weights = first.linear.weight.clone()
    sort_units(model)
    kept = {
        next(i for i in range(len(weights)) if torch.equal(weights[i], row))
        for row in first.linear.weight[:5]
    }
    assert kept == top
    set_width(model, 5)  # the pruned model still runs
    assert model(torch.randn(3, 10)).shape == (3, 4)


def test_importance_ignores_rescaling_between_layers():
    incoming, outgoing = torch.randn(6, 3), torch.randn(2, 6)
    scale = torch.rand(6) + 0.5
    assert torch.allclose(
        connection_importance(incoming, outgoing),
        connection_importance(incoming * scale[:, None], outgoing / scale),
    )
