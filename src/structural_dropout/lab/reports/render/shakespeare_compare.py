"""The GPT comparison's tables (issue #19: ``results/compare/shakespeare*``, written by
``make compare-shakespeare``): every method at the comparison's widths, issue #19's targets as
measured, equal steps against equal compute, and what the runs cost."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..compare import paired_gaps
from .comparison import comparison_table
from .format import count, markdown, runs_cost

GRANULARITIES = [64, 128, 256]  # MatFormer's (1/8, 1/4, 1/2 of 512); separately trained there
BETWEEN = [96, 192, 384]  # widths between them, which MatFormer's rule never trains
WIDTHS = [32, 64, 96, 128, 192, 256, 384, 512]
OURS = ["structural", "sandwich"]  # the one-run methods of this library (the best: on validation)
EQUAL_COMPUTE = "_equal_compute"  # the method-name suffix of the runs at plain training's compute
# issue #19's targets (nats per character): full width against plain training, each
# granularity against a separately trained model
FULL_GOAL, GRANULARITY_GOAL = 0.02, 0.03


def _table(results: Path) -> pd.DataFrame:
    return comparison_table(results, "shakespeare")


def loss_pm(values: pd.Series) -> str:
    """A loss in nats, mean ± std over seeds (no spread for one seed)."""
    text = f"{values.mean():.3f}"
    return text if values.count() < 2 else f"{text} ± {values.std():.3f}"


def signed_nats(mean: float, se: float | None = None) -> str:
    text = f"{mean:+.3f}"
    return text if se is None or pd.isna(se) else f"{text} ± {se:.3f}"


def seconds_per_seed(results: Path) -> dict[str, float]:
    """Each method's training time for one seed, all its runs (the GPTs trained alone: one per
    granularity), the median over its seeds (robust to one run slowed by other work on the
    machine), from ``shakespeare_runs.json``: a run's part (its sweep folder) is its method.
    The comparison CSV holds only the mean over seeds."""
    runs = pd.DataFrame(json.loads((results / "compare" / "shakespeare_runs.json").read_text()))
    part = runs["run"].str.split("/").str[0]
    per_seed = runs.groupby([part, runs["seed"]])["train_seconds"].sum()
    return per_seed.groupby(level=0).median().to_dict()


def _seconds(seconds: dict[str, float], method: str) -> float:
    if method not in seconds:
        raise ValueError(f"shakespeare_runs.json has no runs of {method!r}: keep its runs first")
    return seconds[method]


def best_ours(table: pd.DataFrame, budget: str = "") -> str:
    """Of this library's one-run methods at one budget (``budget``: "" for 3,000 steps,
    ``EQUAL_COMPUTE`` for plain training's compute), the one with the lowest mean validation
    loss over MatFormer's granularities and the full width: chosen on validation."""
    widths = [*GRANULARITIES, int(table["width"].max())]
    names = [method + budget for method in OURS]
    ours = table[table["method"].isin(names) & table["width"].isin(widths)]
    if ours.empty:
        raise ValueError(f"the comparison has none of {names} at widths {widths}")
    return str(ours.groupby("method")["val_loss"].mean().idxmin())


def shakespeare_compare_methods(results: Path) -> str:
    """Test loss (mean ± std over seeds) of every method at the comparison's widths, with the
    training each needs for all of them (per seed, the median over seeds; against plain
    training's)."""
    table = _table(results)
    params = table[table["method"] == "none"].groupby("width")["params"].first()
    seconds = seconds_per_seed(results)
    plain = _seconds(seconds, "none")
    rows = [["parameters", *(count(params[w]) for w in WIDTHS), "", ""]]
    for method, group in table.groupby("method", sort=False):
        at = {w: group.loc[group["width"] == w, "loss"] for w in WIDTHS}
        took = _seconds(seconds, method)
        cost = f"{took:.0f} s ({took / plain:.2f}×)"
        cells = ["" if at[w].empty else loss_pm(at[w]) for w in WIDTHS]
        rows.append([f"`{method}`", *cells, cost, group["seed"].nunique()])
    header = ["test loss, nats", *(f"width {w}" for w in WIDTHS), "training (× plain)", "seeds"]
    return markdown(header, rows)


def target_gaps(table: pd.DataFrame, budget: str) -> tuple[str, list[tuple]]:
    """Issue #19's targets at one budget ("" or ``EQUAL_COMPUTE``) for this library's best
    one-run method there on validation: that method and, per target, ``(label, split, width,
    gap, goal, met)``, the gap paired by seed (a row of ``paired_gaps``): the full width against
    plain training (validation, then test), each MatFormer granularity against a GPT trained at that
    width alone, each width between them against MatFormer's rule at the same budget (better:
    below zero, beyond twice its standard error)."""
    method = best_ours(table, budget)
    full = int(table["width"].max())
    targets = []
    for column, split in (("val_loss", "validation"), ("loss", "test")):
        gap = paired_gaps(table, method, "none", column).set_index("width").loc[full]
        targets.append((f"− plain training, full width, {split}", split, full, gap,
                        f"≤ +{FULL_GOAL}", gap["mean"] <= FULL_GOAL))  # fmt: skip
    alone = paired_gaps(table, method, "independent").set_index("width")
    for width in GRANULARITIES:
        gap = alone.loc[width]
        targets.append((f"width {width} − trained alone at {width}, test", "test", width, gap,
                        f"≤ +{GRANULARITY_GOAL}", gap["mean"] <= GRANULARITY_GOAL))  # fmt: skip
    matformer = paired_gaps(table, method, "matformer" + budget).set_index("width")
    for width in BETWEEN:
        gap = matformer.loc[width]
        better = gap["mean"] < 0 and bool(gap["significant"])
        targets.append((f"width {width} − `matformer{budget}`, test", "test", width, gap,
                        "< 0, beyond 2 SE", better))  # fmt: skip
    return method, targets


def shakespeare_targets(results: Path) -> str:
    """Issue #19's targets at each budget (3,000 steps; plain training's compute), each against
    its goal (``target_gaps``)."""
    table = _table(results)
    rows = []
    for budget in ("", EQUAL_COMPUTE):
        method, targets = target_gaps(table, budget)
        for label, _, _, gap, goal, met in targets:
            rows.append([f"`{method}` {label}", signed_nats(gap["mean"], gap["se"]), goal,
                         "met" if met else "**missed**"])  # fmt: skip
    header = ["target (`compare/shakespeare.csv`, nats, paired by seed)", "measured", "goal",
              "result"]  # fmt: skip
    return markdown(header, rows)


def shakespeare_compare_headline(results: Path) -> str:
    """The targets in two rows, one per budget: at each width the test-loss gap (nats, paired
    by seed) of the best one-run method there to its reference, marked met or missed."""
    table = _table(results)
    widths = sorted([*GRANULARITIES, *BETWEEN, int(table["width"].max())])
    rows = []
    for budget in ("", EQUAL_COMPUTE):
        method, targets = target_gaps(table, budget)
        test = {width: (gap, met) for _, split, width, gap, _, met in targets if split == "test"}
        cells = [f"{signed_nats(test[w][0]['mean'], test[w][0]['se'])} {'✓' if test[w][1] else '✗'}"
                 for w in widths]  # fmt: skip
        rows.append([f"`{method}`", *cells])
    reference = {w: "alone" for w in GRANULARITIES} | {w: "MatFormer" for w in BETWEEN}
    header = ["test loss gap, nats", *(f"w {w} − {reference.get(w, 'plain')}" for w in widths)]
    return markdown(header, rows)


def shakespeare_compare_compute(results: Path) -> str:
    """The two many-widths rules at equal steps (3,000) and at plain training's compute (fewer
    steps, as many multiply-adds as plain training's 3,000): test loss at a few widths, and the
    training time each took per seed."""
    table = _table(results)
    widths = [64, 128, 256, 512]
    seconds = seconds_per_seed(results)
    rows = []
    for method in ("none", "structural", "sandwich", "matformer"):
        for name in (method, method + EQUAL_COMPUTE):
            group = table[table["method"] == name]
            if group.empty:
                continue
            budget = "equal compute" if name.endswith(EQUAL_COMPUTE) else "3,000 steps"
            at = {w: group.loc[group["width"] == w, "loss"] for w in widths}
            rows.append([f"`{method}`", budget,
                         *("" if at[w].empty else loss_pm(at[w]) for w in widths),
                         f"{_seconds(seconds, name):.0f} s"])  # fmt: skip
    header = ["method", "budget", *(f"width {w}" for w in widths), "training per seed"]
    return markdown(header, rows)


def shakespeare_compare_cost(results: Path) -> str:
    return runs_cost(results / "compare" / "shakespeare_runs.json", "compare-shakespeare")


def shakespeare_tuning_trials(results: Path) -> str:
    """The tuning's trials (seed 0, validation only): each method's learning rates, the score
    it was chosen on (plain training: its full width; the others: the mean over widths >= 16)
    and the choice."""
    table = pd.read_csv(results / "shakespeare" / "tuning.csv").sort_values(["method", "setting"])
    rows = [
        [f"`{r.method}`", f"`{r.setting}`", f"{r.val_score:.3f}", f"{r.val_full:.3f}",
         f"{r.train_seconds:.0f} s", "✓" if r.chosen else ""]
        for r in table.itertuples()
    ]  # fmt: skip
    header = ["method", "trial", "validation loss, widths ≥ 16", "validation loss, full width",
              "training", "chosen"]  # fmt: skip
    return markdown(header, rows)


def shakespeare_tuning_cost(results: Path) -> str:
    return runs_cost(results / "shakespeare" / "tuning_runs.json", "tune-shakespeare")
