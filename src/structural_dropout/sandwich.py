"""Several widths per training step: the "sandwich rule" of universally slimmable networks.

With one random cut per step (the paper), the full width is trained on few steps, and it ends
below a plain model of the same size. Training the full width on every step, beside one or more
random cuts, keeps the full model on par with a plain one while every prefix still learns.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

from torch import Tensor, nn

from .layer import fixed_cut, structural_layers


@dataclass(frozen=True)
class Sandwich:
    """Which widths each training step trains; the step's loss is the mean of their losses.

    full: the full width. smallest: the smallest cut of the grid (``lower_bound``).
    random: how many random cuts, drawn as the dropout layers draw them (``p``, grid,
    ``distribution``). distill: the narrower widths learn the full width's predictions
    (in-place distillation, ``task.distill_loss``) instead of the targets; needs ``full``.
    """

    full: bool = True
    smallest: bool = False
    random: int = 1
    distill: bool = False

    def __post_init__(self):
        if isinstance(self.random, bool) or not isinstance(self.random, int) or self.random < 0:
            raise ValueError(f"sandwich random must be an int >= 0, got {self.random!r}")
        if self.passes == 0:
            raise ValueError("a sandwich step must train at least one width")
        if self.distill and not self.full:
            raise ValueError("sandwich distill needs full=true: the full width is the teacher")

    @property
    def passes(self) -> int:
        """Forward passes (and losses) per training step."""
        return int(self.full) + int(self.smallest) + self.random


def sandwich_loss(model: nn.Module, task, batch, rule: Sandwich) -> Tensor:
    """The mean loss of ``task`` on ``batch`` over the widths ``rule`` names.

    With ``rule.distill`` the task must have ``predict(model, batch)``,
    ``criterion(prediction, batch)`` and ``distill_loss(prediction, teacher)``.
    """
    layers = structural_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no StructuralDropout layer to sandwich")
    if rule.distill and not all(
        hasattr(task, name) for name in ("predict", "criterion", "distill_loss")
    ):
        raise ValueError(
            f"{type(task).__name__} cannot distill: it needs predict, criterion and distill_loss"
        )
    widest = max(layers, key=lambda layer: layer.width)
    fixed = [widest.width] * rule.full + [widest.lower_bound] * rule.smallest
    losses, teacher = [], None
    for width in [*fixed, *[None] * rule.random]:  # None: a random cut
        with fixed_cut(model, width) if width is not None else nullcontext():
            if not rule.distill:
                losses.append(task.loss(model, batch))
            elif teacher is None:  # the first pass is the full width
                prediction = task.predict(model, batch)
                losses.append(task.criterion(prediction, batch))
                teacher = prediction.detach()
            else:
                losses.append(task.distill_loss(task.predict(model, batch), teacher))
    return sum(losses) / len(losses)
