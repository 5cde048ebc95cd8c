"""The training loop and periodic validation, shared by every experiment."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import save_checkpoint
from .layer import set_width
from .task import Task


@torch.no_grad()
def validate(model: nn.Module, task: Task, widths: Sequence[int | None], split: str) -> dict:
    """The task metric on ``split`` at each width (None: full); the model is left at full width."""
    was_training = model.training
    model.eval()
    prepared = task.prepare_eval(model, split)
    metrics = {}
    try:
        for width in widths:
            if width is not None:
                set_width(model, width)
            metrics[f"{split}_{task.metric}@{width or 'full'}"] = task.evaluate(model, prepared)
    finally:
        if any(w is not None for w in widths):
            set_width(model, None)
        model.train(was_training)
    return metrics


def train(
    model: nn.Module,
    task: Task,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    *,
    epochs: int,
    checkpoint_path: Path,
    config: dict,
    validate_every: int = 1,
    val_widths: Sequence[int | None] = (None,),
    val_split: str = "val",
    precision: str = "fp32",
    grad_clip: float | None = None,
    progress: bool = True,
) -> list[dict]:
    """Train for ``epochs``; validate and checkpoint every ``validate_every`` epochs and at the end.

    The scheduler is stepped once per epoch. ``precision="bf16"`` runs the forward pass under
    bfloat16 autocast (about 2x faster on CPUs with AVX-512 BF16); validation stays float32. A
    non-finite loss stops training with an error; the last checkpoint written before it stays valid.
    ``grad_clip`` caps the gradient norm: a step at a tiny cut multiplies features by up to
    ``width``, and without a cap its rare huge gradients can derail training (PointNet's T-Nets).
    """
    if epochs < 1 or validate_every < 1:
        raise ValueError(f"epochs={epochs} and validate_every={validate_every} must be >= 1")
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    device_type = next(model.parameters()).device.type
    history: list[dict] = []
    bar = tqdm(total=epochs * task.steps_per_epoch, desc="train", disable=not progress)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        loss_sum, steps = 0.0, 0
        for batch in task.train_batches():
            with torch.autocast(device_type, torch.bfloat16, enabled=precision == "bf16"):
                loss = task.loss(model, batch)
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"non-finite loss {value} at epoch {epoch}, step {steps + 1}; "
                    f"the last good checkpoint (if any) is {checkpoint_path}"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            loss_sum, steps = loss_sum + value, steps + 1
            bar.update()
            if steps % 50 == 0:
                bar.set_postfix(epoch=epoch, loss=f"{loss_sum / steps:.4f}")
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            scheduler.step()
        if epoch % validate_every == 0 or epoch == epochs:
            record = {"epoch": epoch, "train_loss": loss_sum / max(steps, 1), "lr": lr}
            record |= validate(model, task, val_widths, val_split)
            record["seconds"] = time.perf_counter() - start
            history.append(record)
            bar.write(" ".join(f"{k}={_fmt(v)}" for k, v in record.items()))
            save_checkpoint(
                checkpoint_path,
                model=model.state_dict(),
                optimizer=optimizer.state_dict(),
                scheduler=None if scheduler is None else scheduler.state_dict(),
                epoch=epoch,
                history=history,
                config=config,
            )
    bar.close()
    return history


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
