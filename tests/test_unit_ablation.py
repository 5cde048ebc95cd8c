"""The ordering diagnostic finds the ordering that a constructed model has."""

import pytest
import torch

from structural_dropout import TruncatableMLP
from structural_dropout.lab.reports.unit_ablation import index_rank_correlation, unit_ablation
from structural_dropout.spec import PLAIN


class MatchTask:
    """Metric: minus the mean squared distance to the intact model's outputs (0 when intact)."""

    metric = "closeness"

    def __init__(self, model):
        self.x = torch.rand(64, 4) + 0.5  # positive inputs: every ReLU unit is active
        with torch.no_grad():
            self.target = model(self.x)

    def prepare_eval(self, model, split):
        return self.x

    def evaluate(self, model, x):
        return -(model(x) - self.target).pow(2).mean().item()


def ordered_model(weights: list[float]) -> TruncatableMLP:
    """One hidden layer of 6 units copying the input sum; unit i reaches the output with
    ``weights[i]``, so removing it costs ``weights[i] ** 2`` times the same amount."""
    model = TruncatableMLP(4, [6], 1, PLAIN)
    with torch.no_grad():
        model.blocks[0].linear.weight.fill_(1.0)
        model.blocks[0].linear.bias.zero_()
        model.head.weight.copy_(torch.tensor([weights]))
        model.head.bias.zero_()
    return model


@pytest.mark.parametrize(
    "weights, rho",
    [([6, 5, 4, 3, 2, 1], -1.0), ([1, 2, 3, 4, 5, 6], 1.0)],
)
def test_a_known_ordering_is_found(weights, rho):
    model = ordered_model([float(w) for w in weights])
    ablation = unit_ablation(model, MatchTask(model), progress=False)
    drops = ablation.sort_values("unit")["drop"].tolist()
    assert drops == sorted(drops, reverse=rho < 0) and min(drops) > 0
    assert index_rank_correlation(ablation).tolist() == [pytest.approx(rho)]
