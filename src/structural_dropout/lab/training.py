"""The training loop and periodic validation, shared by every experiment."""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..layers.dropout import set_width
from ..rules import Sandwich, sandwich_loss
from .checkpoint import save_checkpoint
from .distributed import Distributed
from .logs import progress_bar
from .provenance import native_bf16
from .sweep import evaluate_at_width
from .task import Task

log = logging.getLogger(__name__)


@torch.no_grad()
def validate(
    model: nn.Module,
    task: Task,
    widths: Sequence[int | None],
    split: str,
    recalibrate_bn: bool = False,
) -> dict:
    """The task metric on ``split`` at each width (None: full); the model is left at full width.

    ``recalibrate_bn``: re-estimate the width-dependent BatchNorm statistics at each width on the
    task's ``"calibration"`` split first (see ``batchnorm.recalibrated_norms``).
    """
    was_training = model.training
    model.eval()
    prepared = {split: task.prepare_eval(model, split)}
    calibration = task.prepare_eval(model, "calibration") if recalibrate_bn else None
    metrics = {}
    try:
        for width in widths:
            metrics[f"{split}_{task.metric}@{width or 'full'}"] = evaluate_at_width(
                model, task, width, prepared, calibration
            )[split]
    finally:
        set_width(model, None)
        model.train(was_training)
    return metrics


@dataclass(frozen=True)
class TrainerSettings:
    """The ``trainer`` node of the config.

    ``validate_every`` / ``checkpoint_every``: in epochs (the last epoch always does both).
    ``precision="bf16"`` runs the forward pass under bfloat16 autocast (about 2x faster on CPUs
    with AVX-512 BF16); validation stays float32. ``grad_clip`` caps the gradient norm: a step at
    a tiny cut multiplies features by up to ``width``, and without a cap its rare huge gradients
    can derail training (PointNet's T-Nets). ``recalibrate_bn``: validate with BatchNorm
    statistics re-estimated per width, as the sweep does with ``sweep.recalibrate_bn``.
    ``rule``: the multi-width training rule (``trainer.rule``, e.g. ``rule=sandwich``; None:
    one random cut per step, drawn by the layers, as in the paper). ``hooks``: a method's training
    hooks (``build.MethodHooks``): ``penalty(model)`` is added to each step's loss,
    ``after_step(model, step, total)`` runs after each optimizer step. ``divergence_factor``:
    stop with an error when the mean loss of the steps since the last check (every 50 steps and
    at each epoch's end) exceeds this many times the first step's loss (None: never).
    ``teacher``: the frozen model the rule distils from (``rule.teacher``; built by
    ``build.build_run`` from ``trainer.teacher.checkpoint``).
    """

    epochs: int
    validate_every: int = 1
    checkpoint_every: int = 1
    val_widths: Sequence[int | None] = (None,)
    val_split: str = "val"
    precision: str = "fp32"
    grad_clip: float | None = None
    recalibrate_bn: bool = False
    divergence_factor: float | None = 1000.0
    rule: Sandwich | None = None
    hooks: object | None = None
    teacher: torch.nn.Module | None = None

    def __post_init__(self):
        if min(self.epochs, self.validate_every, self.checkpoint_every) < 1:
            raise ValueError(
                f"epochs={self.epochs}, validate_every={self.validate_every} and "
                f"checkpoint_every={self.checkpoint_every} must be >= 1"
            )
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {self.precision!r}")
        if self.divergence_factor is not None and not self.divergence_factor > 1:
            raise ValueError(
                f"trainer.divergence_factor must be > 1 or null, got {self.divergence_factor!r}"
            )


def step_loss(model: nn.Module, task: Task, batch, settings: TrainerSettings) -> torch.Tensor:
    """One training step's loss: the rule's over the widths it trains (no rule: the task's at the
    cut the layers draw), plus the method's penalty."""
    if settings.rule is None:
        loss = task.loss(model, batch)
    else:
        loss = sandwich_loss(model, task, batch, settings.rule, settings.teacher)
    if hasattr(settings.hooks, "penalty"):
        loss = loss + settings.hooks.penalty(model)
    return loss


def rng_state() -> dict:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Divergence:
    """Watches the training loss: non-finite, or far above where it started, is an error."""

    CHECK_EVERY = 50

    def __init__(self, factor: float | None, checkpoint: Path):
        self.factor, self.checkpoint = factor, checkpoint
        self.start: float | None = None  # the first step's loss
        self.window: list[float] = []

    def _fail(self, what: str, where: str) -> None:
        last = (
            f"the last good checkpoint is {self.checkpoint}"
            if self.checkpoint.is_file()
            else "no checkpoint was written yet"
        )
        raise FloatingPointError(f"training diverged: {what} at {where}; {last}")

    def observe(self, loss: float, where: str) -> None:
        if not math.isfinite(loss):
            self._fail(f"non-finite loss {loss}", where)
        if self.start is None:
            self.start = loss
            return
        self.window.append(loss)
        if len(self.window) >= self.CHECK_EVERY:
            self.check(where)

    def check(self, where: str) -> None:
        """Compare the steps seen since the last check with the start (then forget them)."""
        if self.factor is None or not self.window or self.start is None:
            self.window.clear()
            return
        start = self.start
        recent = sum(self.window) / len(self.window)
        self.window.clear()
        if recent > self.factor * max(start, 1e-8):
            self._fail(
                f"mean loss {recent:.4g} over the last steps is above {self.factor:g} x the "
                f"first step's {start:.4g} (trainer.divergence_factor)",
                where,
            )


def train(
    model: nn.Module,
    task: Task,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    settings: TrainerSettings,
    *,
    checkpoint_path: Path,
    config: dict,
    resume: dict | None = None,
    progress: bool = True,
    distributed: Distributed | None = None,
) -> list[dict]:
    """Train, validating and checkpointing as ``settings`` says; returns the validation history.

    Checkpoints hold the weights, optimizer, scheduler and random-number states, so ``resume``
    (a loaded checkpoint) continues exactly where it was written: the result is the same as a
    run that was never interrupted. The scheduler is stepped once per epoch. A non-finite or
    diverging loss (``settings.divergence_factor``) stops training with an error; the last
    checkpoint written before it stays valid. Each validation is logged (``logging``).
    ``distributed``: train on this rank's slice of every batch, the gradients averaged over the
    ranks; only rank 0 writes the checkpoint (``lab/distributed.py``).
    """
    main = distributed is None or distributed.main
    device_type = next(model.parameters()).device.type
    if settings.precision == "bf16" and device_type == "cpu" and native_bf16() is False:
        log.warning(
            "trainer.precision=bf16 on a CPU without bfloat16 instructions (%s): autocast is "
            "emulated and many times slower than fp32 here (PointNet's step: 5.8 s vs 0.87 s on "
            "AVX2); trainer.precision=fp32 is faster, with other rounding",
            torch.backends.cpu.get_cpu_capability(),
        )
    history: list[dict] = []
    first_epoch = 1
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(resume["scheduler"])
        set_rng_state(resume["rng"])
        history, first_epoch = list(resume["history"]), resume["epoch"] + 1
    steps_per_epoch = task.steps_per_epoch
    bar = progress_bar(
        total=settings.epochs * steps_per_epoch,
        initial=(first_epoch - 1) * steps_per_epoch,
        desc="train",
        enabled=progress and main,
    )
    divergence = Divergence(settings.divergence_factor, checkpoint_path)
    log.info(
        "training %d epochs of %d steps from epoch %d",
        settings.epochs,
        steps_per_epoch,
        first_epoch,
    )
    # "seconds" counts the training wall time of every session of the run (resumes included).
    start = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)
    for epoch in range(first_epoch, settings.epochs + 1):
        model.train()
        if distributed is not None:
            distributed.seed_epoch(config["seed"], epoch)
        loss_sum, steps = 0.0, 0
        for batch in task.train_batches():
            share = 1.0
            if distributed is not None:
                batch, share = distributed.shard(batch)
            with torch.autocast(device_type, torch.bfloat16, enabled=settings.precision == "bf16"):
                loss = step_loss(model, task, batch, settings)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if distributed is None:
                value = loss.item()
            else:  # the whole batch's gradient and loss on every rank
                value = distributed.average_gradients(model.parameters(), loss, share)
            divergence.observe(value, f"epoch {epoch}, step {steps + 1}")
            if settings.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            loss_sum, steps = loss_sum + value, steps + 1
            if hasattr(settings.hooks, "after_step"):
                total = settings.epochs * steps_per_epoch
                settings.hooks.after_step(model, (epoch - 1) * steps_per_epoch + steps, total)
            bar.update()
            if steps % 50 == 0:
                bar.set_postfix(epoch=epoch, loss=f"{loss_sum / steps:.4f}")
        divergence.check(f"the end of epoch {epoch}")
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            scheduler.step()
        last = epoch == settings.epochs
        if epoch % settings.validate_every == 0 or last:
            record = {"epoch": epoch, "train_loss": loss_sum / max(steps, 1), "lr": lr}
            record |= validate(
                model, task, settings.val_widths, settings.val_split, settings.recalibrate_bn
            )
            record["seconds"] = time.perf_counter() - start
            history.append(record)
            log.info(" ".join(f"{k}={_fmt(v)}" for k, v in record.items()))
        else:
            log.info(
                "epoch=%d train_loss=%s lr=%s seconds=%.1f",
                epoch,
                _fmt(loss_sum / max(steps, 1)),
                _fmt(lr),
                time.perf_counter() - start,
            )
        if main and (epoch % settings.checkpoint_every == 0 or last):
            save_checkpoint(
                checkpoint_path,
                model=model.state_dict(),
                optimizer=optimizer.state_dict(),
                scheduler=None if scheduler is None else scheduler.state_dict(),
                rng=rng_state(),
                epoch=epoch,
                history=history,
                config=config,
            )
    bar.close()
    return history


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
