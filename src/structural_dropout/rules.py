"""Multi-width training rules: which widths a training step trains, and its loss.

The paper's rule is one random cut per step, drawn by the layers themselves (no rule: the task's
loss at whatever cut the step drew). ``Sandwich`` is the "sandwich rule" of universally
slimmable networks: several widths per step, their losses averaged (``sandwich_loss``).

With one random cut per step (the paper), the full width is trained on few steps. Training it on
every step, beside one or more random cuts, trains it as often as a plain model while every prefix
still learns; it does not by itself remove what sharing weights with the narrow widths costs
(LIIF's full width stays 0.78 dB under a plain model's on Set5 x4; README).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from .layers.dropout import cuts_per_copy, fixed_cut, structural_layers
from .truncatable import truncatable_parts


class DistillingTask(Protocol):
    """What a task provides so that a rule can distil or batch widths: a prediction, the loss of
    a prediction against the batch's targets, and the loss against a teacher's prediction."""

    def loss(self, model: nn.Module, batch: Any) -> Tensor: ...

    def predict(self, model: nn.Module, batch: Any) -> Tensor: ...

    def criterion(self, prediction: Tensor, batch: Any) -> Tensor: ...

    def distill_loss(self, prediction: Tensor, teacher: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class Sandwich:
    """Which widths each training step trains; the step's loss is the mean of their losses.

    full: the full width. smallest: the smallest cut of the grid (``lower_bound``).
    random: how many random cuts, drawn as the dropout layers draw them (``p``, grid,
    ``distribution``). fixed: widths trained on every step besides those, e.g. ``(32, 64, 128)``
    with ``full`` and ``random=0`` is MatFormer's rule (a few granularities, all every step;
    the widths between them used untrained). distill: the narrower widths learn the full
    width's predictions (in-place distillation, ``task.distill_loss``) instead of the targets;
    needs ``full``.
    teacher: weight of a frozen teacher's predictions (a separately trained model passed to
    ``sandwich_loss``): every width below the full one, and the full one too with
    ``teach_full``, adds ``teacher * task.distill_loss(prediction, teacher's prediction)`` to
    its loss (Once-for-All's knowledge distillation, beside the targets). 0: no teacher.
    full_weight: the full width's loss counts this many times each other width's in the mean,
    so the narrow widths pull less on the shared weights (1: a plain mean).
    batched: run all widths in one forward pass over the batch repeated once per width (needs
    per-sample cuts: each copy's rows are cut at its width); cheaper than one pass per width
    where steps are overhead-bound. Needs ``task.predict`` and ``task.criterion``. Without
    BatchNorm it gives the separate passes' gradients (tested). With BatchNorm in training mode
    it does not: a width-dependent BatchNorm normalizes each unit over all copies stacked (every
    width pooled, zeros of the copies cut below it included) instead of over each width's own
    batch, and every BatchNorm moves its running statistics once per step instead of once per
    width (a width-independent one, e.g. PointNet's per-point layers, normalizes each copy as
    the batch alone would: a repeated batch has the same mean and variance). Tested: the
    gradients differ by more than 1e-3, and match once the statistics are frozen.
    trunk_grad: scale of the gradient the narrower widths send back through each truncatable
    MLP's input into the layers before it (an encoder, a backbone). 1: those layers learn from
    every width alike; 0: from the full width only, as in plain training, so they serve the full
    width alone (LIIF: 0.2 narrowed the full width's gap to plain training in 1,000-step trials
    but widened it over the cpu profile's schedule; README). Needs ``full``.
    """

    full: bool = True
    smallest: bool = False
    random: int = 1
    fixed: tuple[int, ...] = ()
    distill: bool = False
    teacher: float = 0.0
    teach_full: bool = False
    full_weight: float = 1.0
    batched: bool = False
    trunk_grad: float = 1.0

    def __post_init__(self):
        if isinstance(self.random, bool) or not isinstance(self.random, int) or self.random < 0:
            raise ValueError(f"sandwich random must be an int >= 0, got {self.random!r}")
        if self.fixed is None:  # method=matformer leaves its granularities to the user
            raise ValueError(
                "sandwich fixed is not set: list the widths to train every step, "
                "e.g. trainer.rule.fixed=[64,128,256]"
            )
        fixed = tuple(self.fixed)  # a list from a config
        if any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in fixed):
            raise ValueError(f"sandwich fixed must list widths >= 1, got {self.fixed!r}")
        object.__setattr__(self, "fixed", fixed)
        if self.widths == 0:
            raise ValueError("a sandwich step must train at least one width")
        if self.distill and not self.full:
            raise ValueError("sandwich distill needs full=true: the full width is the teacher")
        if not self.teacher >= 0:
            raise ValueError(f"sandwich teacher must be a weight >= 0, got {self.teacher!r}")
        if self.teach_full and not self.teacher:
            raise ValueError("sandwich teach_full needs a teacher weight > 0")
        if not self.full_weight > 0:
            raise ValueError(f"sandwich full_weight must be > 0, got {self.full_weight!r}")
        if not 0 <= self.trunk_grad <= 1:
            raise ValueError(f"sandwich trunk_grad must be in [0, 1], got {self.trunk_grad!r}")
        if self.trunk_grad != 1 and not self.full:
            raise ValueError(
                "sandwich trunk_grad needs full=true: it spares the full width's trunk"
            )

    @property
    def widths(self) -> int:
        """Widths (and losses) per training step: one forward pass each, or one in all when
        ``batched``."""
        return int(self.full) + int(self.smallest) + len(self.fixed) + self.random


def sandwich_loss(
    model: nn.Module,
    task: DistillingTask,
    batch,
    rule: Sandwich,
    teacher: nn.Module | None = None,
) -> Tensor:
    """The mean loss of ``task`` on ``batch`` over the widths ``rule`` names.

    With ``rule.distill`` or a ``teacher`` the task must have ``predict(model, batch)``,
    ``criterion(prediction, batch)`` and ``distill_loss(prediction, teacher)``. ``teacher``: the
    frozen model whose predictions ``rule.teacher`` weighs (given exactly when that is > 0).
    """
    layers = structural_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no StructuralDropout layer to sandwich")
    if (teacher is None) != (rule.teacher == 0):
        raise ValueError(
            "a frozen teacher goes with a sandwich teacher weight > 0 (rule.teacher) and only "
            f"with it: got teacher={type(teacher).__name__}, rule.teacher={rule.teacher}"
        )
    distills = rule.distill or teacher is not None
    needed = ("predict", "criterion") + ("distill_loss",) * distills
    if (distills or rule.batched) and not all(hasattr(task, name) for name in needed):
        raise ValueError(
            f"{type(task).__name__} cannot train a distilled or batched sandwich: it needs "
            f"{', '.join(needed)}"
        )
    widest = max(layers, key=lambda layer: layer.axis)
    fixed = [widest.axis] * rule.full + [widest.lower_bound] * rule.smallest + list(rule.fixed)
    weights = [rule.full_weight] * rule.full + [1.0] * (rule.widths - rule.full)
    widths = [*fixed, *[None] * rule.random]  # None: a random cut
    predictions = None
    if rule.batched:  # every width in one pass over copies of the batch
        copies = tuple(torch.cat([t] * len(widths)) for t in batch)
        with cuts_per_copy(model, widths), trunk_gradient(model, rule.trunk_grad, len(widths)):
            predictions = task.predict(model, copies).chunk(len(widths))

    @contextmanager
    def at_width(i: int, width: int | None) -> Iterator[None]:
        """The cut of the ``i``-th width; after the first (the full one), the trunk's gradient
        scaled."""
        cut = fixed_cut(model, width) if width is not None else nullcontext()
        with cut, trunk_gradient(model, 1.0 if i == 0 else rule.trunk_grad):
            yield

    def predict(i: int, width: int | None) -> Tensor:
        if predictions is not None:
            return predictions[i]
        with at_width(i, width):
            return task.predict(model, batch)

    frozen = None
    if teacher is not None:
        with torch.no_grad():
            frozen = task.predict(teacher, batch)
    losses, full = [], None
    for i, width in enumerate(widths):
        if predictions is None and not distills:  # the task's own loss (it may add terms)
            with at_width(i, width):
                losses.append(task.loss(model, batch))
            continue
        prediction = predict(i, width)
        if full is not None:  # distilled from the full width's prediction (in place)
            loss = task.distill_loss(prediction, full)
        else:  # the labels; with distillation, the first (full) width becomes the teacher
            loss = task.criterion(prediction, batch)
            full = prediction.detach() if rule.distill else None
        if frozen is not None and (rule.teach_full or not (rule.full and i == 0)):
            loss = loss + rule.teacher * task.distill_loss(prediction, frozen)
        losses.append(loss)
    return sum(w * loss for w, loss in zip(weights, losses, strict=True)) / sum(weights)


@contextmanager
def trunk_gradient(model: nn.Module, scale: float, copies: int = 1) -> Iterator[None]:
    """Within: the gradient flowing back out of every truncatable part's input, into the layers
    that computed it, is multiplied by ``scale`` (the forward pass is unchanged). With ``copies``,
    the input is a batch stacked that many times and the first copy (the full width's) is spared.
    """
    if scale == 1:
        yield
        return

    def scaled(x: Tensor) -> Tensor:
        return x * scale + x.detach() * (1 - scale)

    def hook(module: nn.Module, args: tuple) -> tuple:
        x, *rest = args
        if copies == 1:
            x = scaled(x)
        else:
            full, narrower = x.tensor_split([len(x) // copies])
            x = torch.cat([full, scaled(narrower)])
        return (x, *rest)

    parts = truncatable_parts(model)
    if not parts:
        raise ValueError(
            f"{type(model).__name__} has no truncatable part to scale the gradient into"
        )
    handles = [part.register_forward_pre_hook(hook) for part in parts]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
