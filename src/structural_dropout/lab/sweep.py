"""The width sweep: one trained model, evaluated at every prefix width; and the one writer and
reader of its table (``sweep.csv``: ``width, params, <metric>``, or LIIF's per-dataset form)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from ..batchnorm import recalibrated_norms
from ..io import atomic_write
from ..layers.dropout import model_width, set_width
from ..params import count_params
from .logs import progress_bar
from .task import Task


def sweep_widths(
    widths: Sequence[int] | None, max_width: int, step: int = 1, start: int = 1
) -> list[int]:
    """The widths to sweep: ``widths`` as given (None: the full width), or ``start, start+step,
    ...`` up to ``max_width`` (which is always included)."""
    if widths is None:
        if step < 1 or not 1 <= start <= max_width:
            raise ValueError(
                f"sweep step must be >= 1 and start in 1..{max_width}, got {step} and {start}"
            )
        chosen = list(range(start, max_width + 1, step))
        return chosen if chosen[-1] == max_width else [*chosen, max_width]
    chosen = [max_width if w is None else int(w) for w in widths]  # None: the full width
    bad = [w for w in chosen if not 1 <= w <= max_width]
    if bad or not chosen:
        raise ValueError(f"sweep widths {bad or chosen} must be non-empty, within 1..{max_width}")
    return chosen


def evaluate_at_width(
    model: nn.Module, task: Task, width: int | None, prepared, calibration=None
) -> float:
    """The task metric at ``width`` (None: full) on ``prepared`` eval data. With ``calibration``
    (the task's prepared ``"calibration"`` split), the width-dependent BatchNorm statistics are
    first re-estimated at that width; the shared ones are back afterwards."""
    set_width(model, width)
    if calibration is None:
        return task.evaluate(model, prepared)
    with recalibrated_norms(model, lambda: task.evaluate(model, calibration)):
        return task.evaluate(model, prepared)


@torch.inference_mode()
def sweep(
    model: nn.Module,
    task: Task,
    widths: Sequence[int] | None = None,
    step: int = 1,
    split: str = "test",
    progress: bool = True,
    recalibrate_bn: bool = False,
    start: int = 1,
    count: Callable[[nn.Module, int | None], int] = count_params,
) -> list[dict]:
    """Evaluate ``model`` at each width: rows of ``{width, params, <task.metric>}``.

    The evaluation data (and any width-independent computation the task caches) is prepared once
    and reused by every width. ``recalibrate_bn`` re-estimates the width-dependent BatchNorm
    statistics at each width on the task's ``"calibration"`` split before evaluating it.
    ``count(model, width)`` gives the ``params`` column (e.g. non-zero weights after pruning).
    """
    widths = sweep_widths(widths, model_width(model), step, start)
    model.eval()
    prepared = task.prepare_eval(model, split)
    calibration = task.prepare_eval(model, "calibration") if recalibrate_bn else None
    rows = []
    try:
        for width in progress_bar(widths, desc="sweep", enabled=progress):
            metric = evaluate_at_width(model, task, width, prepared, calibration)
            rows.append({"width": width, "params": count(model, width), task.metric: metric})
    finally:
        set_width(model, None)
    return rows


def write_table(path: str | Path, rows: list[dict]) -> Path:
    """Write a sweep's rows (or any table of the run) as CSV, atomically."""
    path = Path(path)
    atomic_write(path, lambda tmp: pd.DataFrame(rows).to_csv(tmp, index=False))
    return path


def read_table(path: str | Path) -> pd.DataFrame:
    """A table ``write_table`` wrote; a missing file is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no sweep table at {path}")
    return pd.read_csv(path)
