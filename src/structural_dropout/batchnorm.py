"""Per-width BatchNorm statistics, re-estimated on a few batches (as universally slimmable nets do).

By default a truncated layer uses the first ``k`` entries of the statistics shared by all widths.
Those were averaged over training steps at every cut, so at a small width they can be off;
re-estimating them at that width, on a few training batches, costs a few forward passes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .truncatable import truncatable_parts


def width_dependent_norms(model: nn.Module) -> list[_BatchNorm]:
    """The BatchNorm layers whose inputs change with the width.

    A model can say which (its own ``width_dependent_norms()``, e.g. PointNet's, whose T-Nets
    change the features the head's input is computed from); otherwise those of its truncatable
    parts (``Truncatable.width_dependent_norms``).
    """
    if hasattr(model, "width_dependent_norms"):
        return model.width_dependent_norms()
    return [norm for part in truncatable_parts(model) for norm in part.width_dependent_norms()]


@contextmanager
def recalibrated_norms(model: nn.Module, calibrate: Callable[[], object]) -> Iterator[None]:
    """Inside the block, the width-dependent BatchNorm layers hold statistics re-estimated by
    ``calibrate()`` (a few forward passes at the current width); on exit the shared ones return.
    """
    norms = width_dependent_norms(model)
    if not norms:
        raise ValueError(
            f"{type(model).__name__} has no width-dependent BatchNorm layer to recalibrate; "
            "evaluate it without recalibration (sweep.recalibrate_bn=false)"
        )
    saved = [
        ({k: v.clone() for k, v in n.state_dict().items()}, n.momentum, n.training) for n in norms
    ]
    try:
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a plain average over the calibration batches
            norm.train()
        calibrate()
        for norm in norms:
            norm.eval()
        yield
    finally:
        for norm, (state, momentum, training) in zip(norms, saved, strict=True):
            norm.load_state_dict(state)
            norm.momentum = momentum
            norm.train(training)
