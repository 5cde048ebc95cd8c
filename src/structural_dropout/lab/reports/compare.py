"""The method comparison: runs of several methods in one table, a budget table and a figure.

The metric is the sweeps' own (accuracy, or loss: lower is better); its columns keep their names
(``val_accuracy``, ``accuracy``; ``val_loss``, ``loss``) and every choice reads its direction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ..sweep import higher_is_better, metric_columns, read_table
from .plots import save_figure


def columns(metric: str) -> list[str]:
    """The comparison table's columns for a sweep metric."""
    return ["method", "setting", "seed", "width", "params", f"val_{metric}", metric, "train_runs",
            "train_seconds"]  # fmt: skip


def table_metric(table: pd.DataFrame) -> tuple[str, str, int]:
    """A comparison table's validation and test metric columns, and the sign that makes larger
    better (+1 for accuracy, -1 for loss)."""
    val, test = metric_columns(table)
    if val is None:
        raise ValueError(f"the comparison table has no val_{test} column")
    return val, test, 1 if higher_is_better(test) else -1


def method_setting(method: dict) -> str:
    """The knobs of a method run beyond its name, e.g. ``width=16`` (empty when none); those of
    its training hooks (``method.training``) are listed by their own names."""
    knobs = {k: v for k, v in method.items() if k not in ("name", "training")}
    knobs |= {k: v for k, v in (method.get("training") or {}).items() if k != "_target_"}
    return ",".join(f"{k}={v}" for k, v in sorted(knobs.items()))


def collect_methods(run_dirs: Sequence[str | Path]) -> pd.DataFrame:
    """One row per method run and width from run directories holding ``run.json`` and
    ``sweep.csv`` (each trained with ``method=...``).

    ``train_runs`` / ``train_seconds``: the training runs a method needs for all of its rows
    and their total wall time, per seed (mean over seeds) (``independent``: one run per width; a
    one-run method: its one run).
    """
    frames, metrics = [], set()
    for run_dir in map(Path, run_dirs):
        missing = [n for n in ("run.json", "sweep.csv") if not (run_dir / n).is_file()]
        if missing:
            raise FileNotFoundError(f"{run_dir} has no {' or '.join(missing)}: unfinished run?")
        run = json.loads((run_dir / "run.json").read_text())
        method = run["config"].get("method")
        if not method:
            raise ValueError(f"{run_dir} was not trained with method=...")
        frame = read_table(run_dir / "sweep.csv")
        val, test = metric_columns(frame)
        if val is None:
            raise ValueError(f"{run_dir}/sweep.csv has no validation column: rerun or re-sweep it")
        metrics.add(test)
        frame.insert(0, "seed", run["seed"])
        frame.insert(0, "setting", method_setting(method))
        frame.insert(0, "method", method["name"])
        frame["seconds"] = run["train_seconds"]
        frames.append(frame)
    if not frames:
        raise FileNotFoundError("no runs to compare")
    if len(metrics) > 1:
        raise ValueError(f"the runs measure different metrics ({sorted(metrics)}): compare one")
    table = pd.concat(frames, ignore_index=True)
    runs = table.drop_duplicates(["method", "setting", "seed"])
    per_seed = runs.groupby(["method", "seed"])["seconds"].agg(["count", "sum"])
    table["train_runs"] = table["method"].map(per_seed["count"].groupby("method").max())
    table["train_seconds"] = table["method"].map(per_seed["sum"].groupby("method").mean()).round(1)
    return table[columns(metrics.pop())]


def _models(group: pd.DataFrame) -> pd.DataFrame:
    """One row per model of a method, its scores averaged over seeds: a setting and width of
    a one-run method; a setting of a method that trains one model per run (its size knob: a
    compacted or pruned model's width and parameters differ between seeds, averaged)."""
    val, test, _ = table_metric(group)
    keys = ["setting"] if group["train_runs"].iloc[0] > 1 else ["setting", "width"]
    stats = group.groupby(keys, sort=False).agg(
        width=("width", "mean"),
        params=("params", "mean"),
        val=(val, "mean"),
        mean=(test, "mean"),
        std=(test, "std"),
        seeds=("seed", "nunique"),
    )
    return stats.drop(columns=[k for k in keys if k in stats.columns]).reset_index()


def budget_table(
    table: pd.DataFrame, fractions: Sequence[float] = (0.1, 0.25, 0.5), reference: str = "none"
) -> pd.DataFrame:
    """Per method and parameter budget (a fraction of the ``reference`` method's largest model),
    the model within the budget with the best mean validation score: its width, its test score
    over seeds (``<budget> <metric>``: mean, ``<budget> std``) and its parameters (``<budget>
    params``: kept, or for a pruned model non-zero, weights and biases); the same for the full
    width; the seeds and the method's training runs."""
    _, metric, sign = table_metric(table)
    full = table.loc[table["method"] == reference, "params"].max()
    rows = []
    for method, group in table.groupby("method", sort=False):
        models = _models(group)
        row = {"method": method, "seeds": int(models["seeds"].min())}
        for fraction in fractions:
            within = models[models["params"] <= fraction * full]
            best = within.loc[(sign * within["val"]).idxmax()] if len(within) else None
            name = f"{fraction:.0%}"
            row[f"{name} width"] = None if best is None else round(best["width"])
            row[f"{name} {metric}"] = None if best is None else float(best["mean"])
            row[f"{name} std"] = None if best is None else float(best["std"])
            row[f"{name} params"] = None if best is None else int(best["params"])
        widest = models.loc[models["params"].idxmax()]
        row["full width"], row["full std"] = float(widest["mean"]), float(widest["std"])
        row["train_runs"] = int(group["train_runs"].iloc[0])
        rows.append(row)
    return pd.DataFrame(rows)


def best_one_run(table: pd.DataFrame, reference: str = "independent", min_width: int = 16) -> str:
    """The one-run method (one training run gives every width) with the best mean validation
    score over the widths from ``min_width`` up at which ``reference`` has a model."""
    val, _, sign = table_metric(table)
    widths = table.loc[(table["method"] == reference) & (table["width"] >= min_width), "width"]
    one_run = table[(table["train_runs"] == 1) & table["width"].isin(set(widths))]
    if one_run.empty:
        raise ValueError(f"no one-run method shares a width >= {min_width} with {reference!r}")
    return str((sign * one_run.groupby("method")[val].mean()).idxmax())


def headline(table: pd.DataFrame, min_width: int = 16) -> pd.DataFrame:
    """The comparison's claim, measured: the best one-run method (chosen on validation) against
    separately trained models at each width from ``min_width`` up, and against plain training
    (``none``) at full width; test score gaps paired by seed, with standard errors."""
    method = best_one_run(table, min_width=min_width)
    gaps = paired_gaps(table, method, "independent")
    gaps = gaps[gaps["width"] >= min_width].assign(reference="independent")
    full = int(table["width"].max())
    plain = paired_gaps(table, method, "none")
    plain = plain[plain["width"] == full].assign(reference="none")
    return pd.concat([gaps, plain], ignore_index=True).assign(method=method)[
        ["method", "reference", "width", "seeds", "mean", "se", "significant"]
    ]


def paired_gaps(
    table: pd.DataFrame, method: str, reference: str, column: str | None = None
) -> pd.DataFrame:
    """At each width both methods have, ``method``'s test score (or ``column``'s: a validation
    one) minus ``reference``'s (for a loss, below zero is better), paired by seed: mean, standard
    error over the seeds they share, and whether the gap is larger than twice its standard error
    (the bar for a claim)."""
    metric = column or metric_columns(table)[1]
    pick = ["seed", "width", metric]
    ours = table.loc[table["method"] == method, pick]
    theirs = table.loc[table["method"] == reference, pick]
    if ours.empty or theirs.empty:
        raise ValueError(f"no rows of {method if ours.empty else reference!r} to compare")
    pairs = ours.merge(theirs, on=["seed", "width"], suffixes=("", "_ref"))
    pairs["gap"] = pairs[metric] - pairs[f"{metric}_ref"]
    stats = pairs.groupby("width")["gap"].agg(["mean", "std", "count"]).reset_index()
    stats["se"] = stats["std"] / stats["count"] ** 0.5
    stats["significant"] = (stats["count"] >= 2) & (stats["mean"].abs() > 2 * stats["se"])
    return stats.rename(columns={"count": "seeds"})[["width", "seeds", "mean", "se", "significant"]]


def methods_figure(table: pd.DataFrame, out_path: str | Path) -> Path:
    """Test score vs parameters (log x), one curve per method: the mean over seeds, a band of
    ± one standard deviation where there are several (separate runs drawn as points)."""
    _, metric, sign = table_metric(table)
    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    seeds = table.groupby("method")["seed"].nunique()
    for method, group in table.groupby("method", sort=False):
        models = group.groupby(["setting", "width"], sort=False).agg(
            params=("params", "mean"), mean=(metric, "mean"), std=(metric, "std")
        )
        models = models.reset_index().sort_values("params")
        style = "o-" if models["setting"].nunique() > 1 else "-"
        line = ax.plot(
            models["params"],
            models["mean"],
            style,
            ms=4,
            lw=1.2,
            label=f"{method} (n={seeds[method]})",
        )[0]
        if seeds[method] > 1:
            spread = models["std"].fillna(0)
            ax.fill_between(
                models["params"],
                models["mean"] - spread,
                models["mean"] + spread,
                color=line.get_color(),
                alpha=0.2,
            )
    ax.set_xscale("log")
    ax.set(
        xlabel="parameters (log scale)",
        ylabel=f"test {metric}",
        title=f"{metric.capitalize()} vs parameters (mean ± std over seeds)",
    )
    if sign > 0:  # accuracy: the interesting range; chance is far below
        best = table[metric].max()
        ax.set_ylim(max(0.0, best - 0.25), best + 0.01)
    else:  # a loss: from the best model to half as much again (a cut-down model's loss is huge)
        best = table[metric].min()
        ax.set_ylim(best * 0.98, best * 1.5)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right" if sign > 0 else "upper right")
    return save_figure(fig, Path(out_path))
