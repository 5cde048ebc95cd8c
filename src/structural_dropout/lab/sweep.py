"""The width sweep: one trained model, evaluated at every prefix width; and the one writer and
reader of its table (``sweep.csv``: ``width, params, val_<metric>, <metric>``, or LIIF's
per-dataset form). ``val_<metric>`` is the validation split's score, the one anything picked from
a sweep (a best width, a width within a budget) is chosen on; ``<metric>`` is the test split's,
for reporting only."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from ..batchnorm import recalibrated_norms
from ..io import atomic_write
from ..layers.dropout import model_width, set_width
from ..params import count_params
from .logs import progress_bar, progress_log
from .task import Task

log = logging.getLogger(__name__)

# The test metric columns a sweep table can have, each with whether higher is better.
METRICS = {"accuracy": True, "psnr": True, "loss": False}


def higher_is_better(metric: str) -> bool:
    """Whether a larger ``metric`` (or ``val_<metric>``) is a better model."""
    name = metric.removeprefix("val_")
    if name not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {sorted(METRICS)}")
    return METRICS[name]


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
    model: nn.Module, task: Task, width: int | None, prepared: dict, calibration=None
) -> dict:
    """The task metric at ``width`` (None: full) on each of ``prepared``'s eval data (name ->
    ``task.prepare_eval`` result), by name. With ``calibration`` (the task's prepared
    ``"calibration"`` split), the width-dependent BatchNorm statistics are first re-estimated at
    that width, once for all of them; the shared ones are back afterwards."""
    set_width(model, width)
    if calibration is None:
        return {name: task.evaluate(model, data) for name, data in prepared.items()}
    with recalibrated_norms(model, lambda: task.evaluate(model, calibration)):
        return {name: task.evaluate(model, data) for name, data in prepared.items()}


def metric_columns(table: pd.DataFrame) -> tuple[str | None, str]:
    """The validation and test metric columns of a sweep table: ``(val_<metric>, <metric>)``;
    the first is None in tables without a validation score (a baseline's single row, old runs)."""
    metrics = [c for c in table.columns if c in METRICS]
    if len(metrics) != 1:
        raise ValueError(
            f"expected one of the metrics {sorted(METRICS)} as a column, got {list(table)}"
        )
    val = f"val_{metrics[0]}"
    return (val if val in table.columns else None), metrics[0]


@torch.inference_mode()
def sweep(
    model: nn.Module,
    task: Task,
    widths: Sequence[int] | None = None,
    step: int = 1,
    split: str = "test",
    val_split: str | None = "val",
    progress: bool = True,
    recalibrate_bn: bool = False,
    start: int = 1,
    count: Callable[[nn.Module, int | None], int] = count_params,
) -> list[dict]:
    """Evaluate ``model`` at each width: rows of ``{width, params, val_<metric>, <metric>}``,
    the metric on ``val_split`` (None: no validation column) and on ``split``.

    The evaluation data (and any width-independent computation the task caches) is prepared once
    and reused by every width. ``recalibrate_bn`` re-estimates the width-dependent BatchNorm
    statistics at each width on the task's ``"calibration"`` split before evaluating it.
    ``count(model, width)`` gives the ``params`` column (e.g. non-zero weights after pruning).
    """
    widths = sweep_widths(widths, model_width(model), step, start)
    model.eval()
    columns = {} if val_split is None else {f"val_{task.metric}": val_split}
    columns[task.metric] = split  # validation first, test last: the column order of sweep.csv
    prepared = {column: task.prepare_eval(model, name) for column, name in columns.items()}
    calibration = task.prepare_eval(model, "calibration") if recalibrate_bn else None
    rows = []
    try:
        shown = progress and sys.stderr.isatty()  # a bar; else a line in the log now and then
        steps = progress_bar(widths, desc="sweep") if shown else progress_log(widths, "sweep", log)
        for width in steps:
            metrics = evaluate_at_width(model, task, width, prepared, calibration)
            rows.append({"width": width, "params": count(model, width), **metrics})
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
