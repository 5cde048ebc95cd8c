"""The training loop and periodic validation, shared by every experiment."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import save_checkpoint
from .layer import set_width
from .sandwich import Sandwich, sandwich_loss
from .sweep import evaluate_at_width
from .task import Task


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
    prepared = task.prepare_eval(model, split)
    calibration = task.prepare_eval(model, "calibration") if recalibrate_bn else None
    metrics = {}
    try:
        for width in widths:
            metrics[f"{split}_{task.metric}@{width or 'full'}"] = evaluate_at_width(
                model, task, width, prepared, calibration
            )
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
    ``sandwich``: train several widths per step (from ``dropout.sandwich``; see ``Sandwich``).
    ``hooks``: a method's training hooks (``pipeline.method_hooks``): ``penalty(model)`` is added
    to each step's loss, ``after_step(model, step, total)`` runs after each optimizer step.
    """

    epochs: int
    validate_every: int = 1
    checkpoint_every: int = 1
    val_widths: Sequence[int | None] = (None,)
    val_split: str = "val"
    precision: str = "fp32"
    grad_clip: float | None = None
    recalibrate_bn: bool = False
    sandwich: Sandwich | None = None
    hooks: object | None = None

    def __post_init__(self):
        if min(self.epochs, self.validate_every, self.checkpoint_every) < 1:
            raise ValueError(
                f"epochs={self.epochs}, validate_every={self.validate_every} and "
                f"checkpoint_every={self.checkpoint_every} must be >= 1"
            )
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {self.precision!r}")


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
) -> list[dict]:
    """Train, validating and checkpointing as ``settings`` says; returns the validation history.

    Checkpoints hold the weights, optimizer, scheduler and random-number states, so ``resume``
    (a loaded checkpoint) continues exactly where it was written: the result is the same as a
    run that was never interrupted. The scheduler is stepped once per epoch. A non-finite loss
    stops training with an error; the last checkpoint written before it stays valid.
    """
    device_type = next(model.parameters()).device.type
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
    bar = tqdm(
        total=settings.epochs * steps_per_epoch,
        initial=(first_epoch - 1) * steps_per_epoch,
        desc="train",
        disable=not progress,
    )
    start = time.perf_counter()
    for epoch in range(first_epoch, settings.epochs + 1):
        model.train()
        loss_sum, steps = 0.0, 0
        for batch in task.train_batches():
            with torch.autocast(device_type, torch.bfloat16, enabled=settings.precision == "bf16"):
                if settings.sandwich is None:
                    loss = task.loss(model, batch)
                else:
                    loss = sandwich_loss(model, task, batch, settings.sandwich)
                if hasattr(settings.hooks, "penalty"):
                    loss = loss + settings.hooks.penalty(model)
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"non-finite loss {value} at epoch {epoch}, step {steps + 1}; "
                    f"the last good checkpoint (if any) is {checkpoint_path}"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
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
            bar.write(" ".join(f"{k}={_fmt(v)}" for k, v in record.items()))
        if epoch % settings.checkpoint_every == 0 or last:
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
