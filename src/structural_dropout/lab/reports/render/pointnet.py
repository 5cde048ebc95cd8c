"""PointNet's tables (results/pointnet/)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...sweep import read_table
from .format import (
    accuracy_widths,
    best_on_validation,
    count,
    full_width,
    markdown,
    percent,
    run_rows,
    sweep_rows,
)


def pointnet_widths(results: Path) -> str:
    widths = [1, 5, 9, 17, 33, 65, 129, 257, 512]  # the cpu profile sweeps every 4th width
    return accuracy_widths(results / "pointnet" / "sweep.csv", widths)


def pointnet_facts(results: Path) -> str:
    """The committed PointNet run: its provenance and what the prose quotes from its sweep."""
    folder = results / "pointnet"
    table = read_table(folder / "sweep.csv")
    best = best_on_validation(table)
    full = full_width(table)
    rows = [
        *run_rows(folder / "run.json"),
        ["best width on validation (smallest reaching the best)",
         f"{int(best['width'])}: validation {percent(best['val_accuracy'])}, "
         f"test {percent(best['accuracy'])}, {count(best['params'])} parameters"],
        ["full width", f"validation {percent(full['val_accuracy'])}, "
                       f"test {percent(full['accuracy'])}, {count(full['params'])} parameters"],
    ]  # fmt: skip
    return markdown(["quantity", "value (`pointnet/run.json`, `sweep.csv`)"], rows)


def pointnet_trials(results: Path) -> str:
    """``make trials-pointnet``: each knob setting's validation accuracy at the trial widths,
    the chosen one (best mean over those widths) marked. Test accuracy is not shown: the
    trials choose, they do not report."""
    table = pd.read_csv(results / "pointnet" / "trials.csv")
    knobs = ["rescale", "grad_clip"]
    full = table["width"].max()
    widths = sorted(table["width"].unique())
    trials = table.astype({"grad_clip": object}).fillna({"grad_clip": "none"})
    trials = trials.groupby(knobs, sort=False)
    mean = trials["val_accuracy"].mean()
    rows = []
    for key, group in trials:
        scores = group.set_index("width")["val_accuracy"]
        rows.append(
            [f"{key[0]}", f"{key[1]}", *(percent(scores[w], 1) for w in widths),
             percent(mean[key], 2), "✓" if key == mean.idxmax() else ""]
        )  # fmt: skip
    header = ["`dropout.rescale`", "`trainer.grad_clip`",
              *(f"width {w}" + (" (full)" if w == full else "") for w in widths),
              "mean", "chosen"]  # fmt: skip
    return markdown(header, rows)


def pointnet_shared_bn(results: Path) -> str:
    widths = [1, 9, 17, 33, 65, 129, 257, 512]
    sweeps = {
        "recalibrated per width": results / "pointnet" / "sweep.csv",
        "shared statistics": results / "pointnet" / "shared_bn" / "sweep.csv",
    }
    return markdown(["width", *map(str, widths)], sweep_rows(sweeps, widths))
