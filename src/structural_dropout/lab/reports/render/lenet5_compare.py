"""The LeNet-5 comparison's tables (issue #18: ``results/compare/lenet5*``, written by
``make compare-lenet5``): the methods at a few widths, the size baselines, and the issue's
targets as measured."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..tuning import SIZE_KNOBS
from .comparison import budget_markdown, comparison_table, pairs_table, signed_points, sized_table
from .format import count, markdown, mean_std, percent, runs_cost
from .lenet5 import LENET5_BUDGET

WIDTHS = [25, 51, 127, 251, 500]  # on the one-run sweeps' grid and compare_lenet5_independent's
TARGET_WIDTH = 127  # the widest LeNet-5 within 1/14.3 of the parameters
PRUNED_SPARSITY = 0.93  # Drop Pruning's sparsity closest to 14.3x
# issue #18's targets: full width, and the target width against a separately trained LeNet
FULL_GOAL, SMALL_GOAL, GAP_GOAL, SPEED_GOAL = 0.992, 0.989, 0.003, 0.35


def lenet5_compare_methods(results: Path) -> str:
    """Test accuracy (mean ± std over seeds) of plain training truncated, the one-run methods
    and the separately trained LeNets at a few widths, with the parameters of each width."""
    table = comparison_table(results, "lenet5")
    params = table[table["method"] == "none"].groupby("width")["params"].first()
    rows = [["parameters", *(count(params[w]) for w in WIDTHS), ""]]
    for method, group in table.groupby("method", sort=False):
        if method in SIZE_KNOBS:
            continue
        at = {w: group.loc[group["width"] == w, "accuracy"] for w in WIDTHS}
        rows.append([method, *("" if at[w].empty else mean_std(at[w]) for w in WIDTHS),
                     group["seed"].nunique()])  # fmt: skip
    return markdown(["test accuracy, %", *(f"width {w}" for w in WIDTHS), "seeds"], rows)


def lenet5_compare_sized(results: Path) -> str:
    """The size baselines' models, largest first within each method."""
    table = comparison_table(results, "lenet5")
    order = table.groupby("setting")["params"].transform("mean")
    table = table.assign(order=order).sort_values(["method", "order"], ascending=[True, False])
    return sized_table(table)


def lenet5_compare_pairs(results: Path) -> str:
    return pairs_table(comparison_table(results, "lenet5"), WIDTHS)


def lenet5_compare_budget(results: Path) -> str:
    return budget_markdown(comparison_table(results, "lenet5"))


def lenet5_compare_cost(results: Path) -> str:
    return runs_cost(results / "compare" / "lenet5_runs.json", "compare-lenet5")


def lenet5_compare_training(results: Path) -> str:
    """Each part's training time per run and per seed (all its runs: every width of the
    separately trained LeNets, every size of a pruning baseline), by processor
    (``lenet5_runs.json``): what a method costs, comparable within one processor only."""
    runs = pd.DataFrame(json.loads((results / "compare" / "lenet5_runs.json").read_text()))
    runs["part"] = runs["run"].str.split("/").str[0]
    runs["processor"] = [h["processor"] for h in runs["hardware"]]
    rows = [
        [f"`{part}`", processor, len(group), f"{group['train_seconds'].median():.0f}",
         f"{group['train_seconds'].min():.0f}–{group['train_seconds'].max():.0f}",
         f"{group['train_seconds'].sum() / group['seed'].nunique():.0f}"]
        for (part, processor), group in runs.groupby(["part", "processor"], sort=True)
    ]  # fmt: skip
    header = ["part (`lenet5_runs.json`)", "processor", "runs", "training s per run, median",
              "range", "training s per seed, all its runs"]  # fmt: skip
    return markdown(header, rows)


def _bench_ratio(results: Path, case: str) -> float:
    bench = pd.read_csv(results / "bench" / "bench.csv")
    match = bench.loc[(bench["benchmark"] == "lenet5_small_vs_full") & (bench["case"] == case)]
    if match.empty:
        raise ValueError(f"bench.csv has no lenet5_small_vs_full case {case!r}: run make bench")
    return float(match["ratio"].iloc[0])


def lenet5_targets(results: Path) -> str:
    """Issue #18's targets for the best one-run method on validation (``lenet5_gaps.csv``'s),
    each against its goal, then Drop Pruning at 14.3x as it runs, for comparison."""
    table = comparison_table(results, "lenet5")
    gaps = pd.read_csv(results / "compare" / "lenet5_gaps.csv")
    method = str(gaps["method"].iloc[0])
    ours = table[table["method"] == method]
    full_width = int(table["width"].max())
    full = ours.loc[ours["width"] == full_width, "accuracy"]
    small = ours[ours["width"] == TARGET_WIDTH]
    gap = gaps[(gaps["reference"] == "independent") & (gaps["width"] == TARGET_WIDTH)].iloc[0]
    speed = _bench_ratio(results, f"exported w={TARGET_WIDTH} batch=256")
    pct = round(100 * PRUNED_SPARSITY)
    pruned_speed = min(_bench_ratio(results, f"pruned {pct}% {kind} batch=256")
                       for kind in ("dense", "sparse"))  # fmt: skip
    pruned = table[(table["method"] == "drop_pruning")
                   & table["setting"].str.contains(f"sparsity={PRUNED_SPARSITY}")]  # fmt: skip

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    rows = [
        [f"`{method}`, full width: test accuracy", mean_std(full), f"≥ {percent(FULL_GOAL)}",
         verdict(full.mean() >= FULL_GOAL)],
        [f"width {TARGET_WIDTH}: parameters", count(small["params"].iloc[0]),
         f"≤ {LENET5_BUDGET:,} (1/14.3)", verdict(small["params"].iloc[0] <= LENET5_BUDGET)],
        [f"width {TARGET_WIDTH}: test accuracy", mean_std(small["accuracy"]),
         f"≥ {percent(SMALL_GOAL)}", verdict(small["accuracy"].mean() >= SMALL_GOAL)],
        [f"width {TARGET_WIDTH} − separately trained (points, paired by seed)",
         signed_points(gap["mean"], gap["se"]), f"≥ −{100 * GAP_GOAL:.1f}",
         verdict(gap["mean"] >= -GAP_GOAL)],
        [f"exported width {TARGET_WIDTH}, batch 256: time / full model's", f"{speed:.3f}",
         f"≤ {SPEED_GOAL}", verdict(speed <= SPEED_GOAL)],
        [f"Drop Pruning, sparsity {PRUNED_SPARSITY}: test accuracy",
         "" if pruned.empty else mean_std(pruned["accuracy"]), "(for comparison)", ""],
        ["its model, batch 256, as it runs (dense or sparse, faster): time / full model's",
         f"{pruned_speed:.3f}", "(for comparison)", ""],
    ]  # fmt: skip
    return markdown(["target (`compare/lenet5*.csv`, `bench/bench.csv`)", "measured", "goal",
                     "result"], rows)  # fmt: skip
