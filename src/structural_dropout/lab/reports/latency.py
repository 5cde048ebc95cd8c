"""Accuracy against measured CPU latency: a method comparison (``compare/<experiment>.csv``)
joined with the bench's timings of the exported widths (``bench/widths.csv``) and of the
magnitude-pruned full model (``bench/pruned.csv``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from .plots import save_figure

# Dropout Compaction's models have a width of their own per layer and seed (the units it kept),
# which the bench does not time: they are left out of the latency table, and the table says so.
UNTIMED = ("compaction",)


def _sparsity(setting: str) -> float:
    """The ``sparsity=...`` knob of a Drop Pruning setting string."""
    knobs = dict(part.split("=", 1) for part in setting.split(",") if "=" in part)
    if "sparsity" not in knobs:
        raise ValueError(f"Drop Pruning setting without sparsity: {setting!r}")
    return float(knobs["sparsity"])


def latency_table(
    table: pd.DataFrame, widths: pd.DataFrame, pruned: pd.DataFrame, model: str, batch: int
) -> pd.DataFrame:
    """One row per model of each method at ``batch``: its mean test accuracy over seeds (and
    std), its parameters (non-zero ones for a pruned model) and the latency the bench measured
    for it. A width model takes the latency of the exported dense model of that width (every
    width of ``table`` that the bench did not time is dropped); a Drop Pruning model the faster
    of its dense and CSR runs (``runs_as``). Methods in ``UNTIMED`` are left out."""
    timed = widths[(widths["model"] == model) & (widths["batch"] == batch)]
    if timed.empty:
        raise ValueError(f"the bench timed no {model} width at batch {batch}")
    rows = []
    for (method, setting), group in table.groupby(["method", "setting"], sort=False):
        if method in UNTIMED:
            continue
        if method == "drop_pruning":
            sparsity = _sparsity(setting)
            run = pruned[(pruned["sparsity"] == sparsity) & (pruned["batch"] == batch)]
            if run.empty:
                raise ValueError(f"the bench timed no pruned model at sparsity {sparsity}")
            run = run.iloc[0]
            dense = run["dense_ms"] <= run["sparse_ms"]
            rows.append(
                {"method": method, "setting": setting, "width": int(group["width"].max()),
                 "params": group["params"].mean(), "accuracy": group["accuracy"].mean(),
                 "std": group["accuracy"].std(), "seeds": group["seed"].nunique(),
                 "latency_ms": min(run["dense_ms"], run["sparse_ms"]),
                 "runs_as": "dense" if dense else "sparse (CSR)"}
            )  # fmt: skip
            continue
        stats = group.groupby("width").agg(
            params=("params", "mean"),
            accuracy=("accuracy", "mean"),
            std=("accuracy", "std"),
            seeds=("seed", "nunique"),
        )
        stats = stats.join(timed.set_index("width")["latency_ms"], how="inner").reset_index()
        rows += [
            {"method": method, "setting": setting, **r, "runs_as": "dense (exported)"}
            for r in stats.to_dict("records")
        ]
    columns = ["method", "setting", "width", "params", "accuracy", "std", "seeds", "latency_ms",
               "runs_as"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def latency_figure(
    table: pd.DataFrame,
    widths: pd.DataFrame,
    pruned: pd.DataFrame,
    out_path: str | Path,
    model: str,
    batches: Sequence[int] = (1, 256),
) -> Path:
    """Test accuracy (mean over seeds) vs measured latency (log x), one panel per batch size,
    one curve per method (``latency_table``) joining its models in order of size (a latency
    measured at batch 1 is not monotonic in width); Drop Pruning's points labelled by sparsity."""
    fig, axes = plt.subplots(1, len(batches), figsize=(5.2 * len(batches), 4.4), squeeze=False)
    for ax, batch in zip(axes[0], batches, strict=True):
        points = latency_table(table, widths, pruned, model, batch)
        for method, group in points.groupby("method", sort=False):
            group = group.sort_values("params")
            label = f"{method} (n={int(group['seeds'].max())})"
            ax.plot(group["latency_ms"], 100 * group["accuracy"], "o-", ms=3, lw=1.1, label=label)
            if method == "drop_pruning":
                for row in group.itertuples():
                    name = f"{_sparsity(row.setting):.0%}"
                    ax.annotate(name, (row.latency_ms, 100 * row.accuracy), fontsize=7)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 3.0, 5.0)))  # a decade or less
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set(
            xlabel=f"CPU latency, batch {batch} (ms, log scale)",
            ylabel="test accuracy, %",
            title=f"{model}: accuracy vs latency (batch {batch})",
        )
        best = 100 * points["accuracy"].max()
        ax.set_ylim(best - 3, best + 0.3)  # the useful range: a model 3 points down is no option
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="lower right")
    return save_figure(fig, Path(out_path))
