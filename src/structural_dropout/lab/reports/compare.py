"""The method comparison: runs of several methods in one table, a budget table and a figure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ..sweep import read_table
from .plots import metric_column, save_figure

COLUMNS = ["method", "setting", "width", "params", "accuracy", "train_runs", "train_seconds"]


def method_setting(method: dict) -> str:
    """The knobs of a method run beyond its name, e.g. ``width=16`` (empty when none); those of
    its training hooks (``method.training``) are listed by their own names."""
    knobs = {k: v for k, v in method.items() if k not in ("name", "training")}
    knobs |= {k: v for k, v in (method.get("training") or {}).items() if k != "_target_"}
    return ",".join(f"{k}={v}" for k, v in sorted(knobs.items()))


def collect_methods(run_dirs: Sequence[str | Path]) -> pd.DataFrame:
    """One row per method run and width from run directories holding ``run.json`` and
    ``sweep.csv`` (each trained with ``method=...``).

    ``train_runs`` / ``train_seconds``: the training runs a method needs for all of its rows and
    their total wall time (``independent``: one run per width; a one-run method: its one run).
    """
    frames = []
    for run_dir in map(Path, run_dirs):
        missing = [n for n in ("run.json", "sweep.csv") if not (run_dir / n).is_file()]
        if missing:
            raise FileNotFoundError(f"{run_dir} has no {' or '.join(missing)}: unfinished run?")
        run = json.loads((run_dir / "run.json").read_text())
        method = run["config"].get("method")
        if not method:
            raise ValueError(f"{run_dir} was not trained with method=...")
        frame = read_table(run_dir / "sweep.csv")
        frame = frame.rename(columns={metric_column(frame): "accuracy"})
        frame.insert(0, "setting", method_setting(method))
        frame.insert(0, "method", method["name"])
        frame["seconds"] = run["train_seconds"]
        frames.append(frame)
    if not frames:
        raise FileNotFoundError("no runs to compare")
    table = pd.concat(frames, ignore_index=True)
    runs = table.drop_duplicates(["method", "setting"]).groupby("method")["seconds"]
    table["train_runs"] = table["method"].map(runs.count())
    table["train_seconds"] = table["method"].map(runs.sum()).round(1)
    return table[COLUMNS]


def budget_table(
    table: pd.DataFrame, fractions: Sequence[float] = (0.1, 0.25, 0.5), reference: str = "none"
) -> pd.DataFrame:
    """Per method, the best accuracy among its models with at most each fraction of the full
    model's parameters (the ``reference`` method's largest), and its training runs."""
    full = table.loc[table["method"] == reference, "params"].max()
    rows = []
    for method, group in table.groupby("method", sort=False):
        row = {"method": method}
        for fraction in fractions:
            within = group[group["params"] <= fraction * full]
            best = within.loc[within["accuracy"].idxmax()] if len(within) else None
            row[f"{fraction:.0%} params"] = None if best is None else float(best["accuracy"])
            row[f"{fraction:.0%} width"] = None if best is None else int(best["width"])
        row["full width"] = float(group.loc[group["params"].idxmax(), "accuracy"])
        row["train_runs"] = int(group["train_runs"].iloc[0])
        rows.append(row)
    return pd.DataFrame(rows)


def methods_figure(table: pd.DataFrame, out_path: str | Path) -> Path:
    """Accuracy vs parameters (log x), one curve per method (separate runs drawn as points)."""
    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    for method, group in table.groupby("method", sort=False):
        group = group.sort_values("params")
        style = "o-" if group["setting"].nunique() > 1 else "-"
        ax.plot(group["params"], group["accuracy"], style, ms=4, lw=1.2, label=method)
    ax.set_xscale("log")
    ax.set(xlabel="parameters (log scale)", ylabel="accuracy", title="Accuracy vs parameters")
    best = table["accuracy"].max()
    ax.set_ylim(max(0.0, best - 0.25), best + 0.01)  # the interesting range; chance is far below
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, Path(out_path))
