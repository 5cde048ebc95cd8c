"""LeNet-5's tables (issue #18: README, results/lenet5/)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...sweep import read_table
from .comparison import tuning_trials
from .format import (
    accuracy_widths,
    best_on_validation,
    count,
    full_width,
    markdown,
    percent,
    run_rows,
    runs_cost,
)

LENET5_BUDGET = 30_200  # issue #18: 1/14.3 of LeNet-5's 431,080 parameters (Drop Pruning's 14.3x)


def lenet5_widths(results: Path) -> str:
    widths = [1, 25, 51, 101, 127, 251, 500]  # the cpu profile sweeps every odd width and 500
    return accuracy_widths(results / "lenet5" / "sweep.csv", widths, 2)


def lenet5_facts(results: Path) -> str:
    """The committed LeNet-5 run: provenance, full width, the widest width within Drop
    Pruning's budget (a size, not a choice) and the best width on validation."""
    folder = results / "lenet5"
    table = read_table(folder / "sweep.csv")
    best = best_on_validation(table)
    full = full_width(table)
    within = table.loc[table["params"] <= LENET5_BUDGET].sort_values("width").iloc[-1]

    def scores(row: pd.Series) -> str:
        return (f"validation {percent(row['val_accuracy'], 2)}, "
                f"test {percent(row['accuracy'], 2)}, {row['params']:,.0f} parameters")  # fmt: skip

    rows = [
        *run_rows(folder / "run.json"),
        ["full width (500)", scores(full)],
        [f"widest width within {LENET5_BUDGET:,} parameters: {int(within['width'])}",
         scores(within)],
        ["best width on validation (smallest reaching the best)",
         f"{int(best['width'])}: {scores(best)}"],
    ]  # fmt: skip
    return markdown(["quantity", "value (`lenet5/run.json`, `sweep.csv`)"], rows)


def lenet5_tuning(results: Path) -> str:
    return tuning_trials(results / "lenet5" / "tuning.csv")


def lenet5_tuning_cost(results: Path) -> str:
    return runs_cost(results / "lenet5" / "tuning_runs.json", "tune-lenet5")


def lenet5_compaction_thresholds(results: Path) -> str:
    """Dropout Compaction's runs re-compacted at other thresholds (validation only): per run,
    the gated model's score, then each threshold's parameters and score."""
    table = pd.read_csv(results / "lenet5" / "compaction_thresholds.csv")
    # by strength, then temperature (the CSV follows the checkpoints' folder order)
    table = table.sort_values(["strength", "temperature"], kind="stable")
    thresholds = sorted(table["threshold"].dropna().unique(), reverse=True)
    rows = []
    for _, run in table.groupby("run", sort=False):
        gated = run[run["threshold"].isna()].iloc[0]
        by_threshold = run.dropna(subset=["threshold"]).set_index("threshold")
        rows.append(
            [f"{gated.strength:g}", f"{gated.temperature:g}", percent(gated.val_accuracy, 2)]
            + [f"{count(r.params)}: {percent(r.val_accuracy, 1)}" for r in
               (by_threshold.loc[t] for t in thresholds)]  # fmt: skip
        )
    header = ["strength", "temperature", "gated model"] + [f"threshold {t:g}" for t in thresholds]
    return markdown(header, rows)
