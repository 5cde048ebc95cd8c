"""Does a network order its units? Remove each hidden unit alone and measure what it costs.

A method that learns an importance ordering puts the units whose removal hurts most first, so the
drop falls with the unit index: the rank correlation between index and drop is then negative.
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from ...layers.dropout import set_width
from ...layers.mlp import TruncatableLinear
from ..logs import progress_bar
from ..task import Task


@torch.inference_mode()
def unit_ablation(
    model: nn.Module, task: Task, split: str = "test", progress: bool = True
) -> pd.DataFrame:
    """For every unit of every truncatable hidden layer, the metric with that unit zeroed:
    rows of ``layer, unit, metric, drop`` (``drop`` = full-width metric minus it)."""
    model.eval()
    set_width(model, None)
    prepared = task.prepare_eval(model, split)
    reference = task.evaluate(model, prepared)
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, TruncatableLinear)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no truncatable hidden layer")
    rows = []
    bar = progress_bar(
        total=sum(m.linear.out_features for _, m in layers), desc="ablation", enabled=progress
    )
    for name, layer in layers:
        for unit in range(layer.linear.out_features):
            handle = layer.register_forward_hook(_zero_output(unit))
            try:
                value = task.evaluate(model, prepared)
            finally:
                handle.remove()
            rows.append(
                {"layer": name, "unit": unit, task.metric: value, "drop": reference - value}
            )
            bar.update()
    bar.close()
    return pd.DataFrame(rows)


def _zero_output(unit: int):
    """A forward hook that zeroes output feature ``unit`` of the layer it is on."""

    def hook(module, args, output):
        output = output.clone()
        output[..., unit] = 0
        return output

    return hook


def index_rank_correlation(ablation: pd.DataFrame) -> pd.Series:
    """Per layer, Spearman's rank correlation between unit index and the drop its removal
    causes: -1 is a perfect ordering (earlier units matter more), about 0 none; NaN when no
    single unit changes the metric."""
    return ablation.groupby("layer").apply(
        # Spearman's rho is Pearson's r of the (tie-averaged) ranks.
        lambda g: g["unit"].rank().corr(g["drop"].rank()),
        include_groups=False,
    )
