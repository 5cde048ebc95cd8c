"""The method comparison's tables (results/compare/)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..compare import budget_table, paired_gaps
from ..tuning import SIZE_KNOBS
from .format import count, markdown, mean_std, percent, percent_pm, runs_cost

# The comparison's goal: a one-run method within this many accuracy points of each reference:
# separately trained models at every width >= 16, plain training at full width.
GAP_GOALS = {"independent": 0.5, "none": 0.2}


def comparison_table(results: Path, name: str = "mnist") -> pd.DataFrame:
    """``compare/<name>.csv``, as ``scripts/compare.py`` writes it."""
    table = pd.read_csv(results / "compare" / f"{name}.csv", dtype={"setting": str})
    return table.fillna({"setting": ""})  # a method without knobs: an empty setting, not NaN


def compare_methods(results: Path) -> str:
    """Test accuracy per method at a few widths: mean ± std over seeds where there are several,
    and the training a method needs for all of them (per seed, against plain training). The
    baselines whose knob is the model size are in ``compare_sized`` instead."""
    table = comparison_table(results)
    widths = [16, 32, 64, 256]
    plain = table.loc[table["method"] == "none", "train_seconds"].iloc[0]
    rows = []
    for method, group in table.groupby("method", sort=False):
        if method in SIZE_KNOBS:
            continue
        at = {w: group[group["width"] == w] for w in widths}
        cells = ["" if at[w].empty else mean_std(at[w]["accuracy"]) for w in widths]
        runs, seconds = int(group["train_runs"].iloc[0]), group["train_seconds"].iloc[0]
        cost = f"{seconds:.0f} s ({seconds / plain:.1f}×)"
        rows.append([method, *cells, runs, cost, group["seed"].nunique()])
    header = [
        "method (test accuracy, %)",
        *(f"width {w}" for w in widths),
        "training runs",
        "training (× plain)",
        "seeds",
    ]
    return markdown(header, rows)


def compare_sized(results: Path) -> str:
    """The baselines whose setting is the model size: each model's parameters and accuracy."""
    return sized_table(comparison_table(results))


def sized_table(table: pd.DataFrame) -> str:
    """``compare_sized`` of any comparison table (one row per method run and width)."""
    rows = []
    for (method, setting), group in table.groupby(["method", "setting"], sort=False):
        if method not in SIZE_KNOBS:
            continue
        rows.append(
            [method, setting, count(group["params"].mean()), mean_std(group["accuracy"]),
             group["seed"].nunique()]
        )  # fmt: skip
    return markdown(["method", "setting", "parameters", "test accuracy, %", "seeds"], rows)


def tuning_trials(path: Path) -> str:
    """Every tuning trial of ``path`` (a ``scripts/tune.py`` CSV), scored on validation (seed 0),
    each method's choice marked."""
    table = pd.read_csv(path)
    rows = [
        [
            row.method,
            f"`{row.setting}`" if isinstance(row.setting, str) and row.setting else "",
            row.runs,
            percent(row.val_score, 2),
            percent(row.val_full, 2),
            f"{row.train_seconds:.0f} s",
            "✓" if row.chosen else "",
        ]
        for row in table.sort_values(["method", "val_score"], ascending=[True, False]).itertuples()
    ]
    header = ["method", "trial", "runs", "validation, widths ≥ 16", "validation, full",
              "training", "chosen"]  # fmt: skip
    return markdown(header, rows)


def compare_tuning(results: Path) -> str:
    return tuning_trials(results / "compare" / "tuning.csv")


def compare_tuning_cost(results: Path) -> str:
    return runs_cost(results / "compare" / "tuning_runs.json", "tune-mnist")


def compare_cost(results: Path) -> str:
    return runs_cost(results / "compare" / "mnist_runs.json", "compare-mnist")


def signed_points(mean: float, se: float | None = None) -> str:
    """An accuracy difference in percentage points, signed, with its standard error."""
    text = f"{100 * mean:+.2f}"
    return text if se is None or pd.isna(se) else f"{text} ± {100 * se:.2f}"


def _gaps(results: Path) -> pd.DataFrame:
    gaps = pd.read_csv(results / "compare" / "mnist_gaps.csv")
    gaps["goal"] = gaps["reference"].map(GAP_GOALS)
    gaps["met"] = 100 * gaps["mean"] >= -gaps["goal"]
    return gaps


def _verdict(results: Path, gaps: pd.DataFrame) -> str:
    """One line: how many widths meet the goal, the full-width gap, the cost of the one run
    against a plain one, and whether the goal is met."""
    seconds = comparison_table(results).groupby("method")["train_seconds"].first()
    method = str(gaps["method"].iloc[0])
    ratio = seconds[method] / seconds["none"]
    wide = gaps[gaps["reference"] == "independent"]
    plain = gaps[gaps["reference"] == "none"].iloc[0]
    met = bool(gaps["met"].all()) and ratio <= 2
    return (
        f"`{method}` (the best one-run method on validation) is within "
        f"{GAP_GOALS['independent']} points of separately trained models at "
        f"{int(wide['met'].sum())} of {len(wide)} widths ≥ 16 and "
        f"{signed_points(plain['mean'], plain['se'])} points from plain training at full width "
        f"(goal: within {GAP_GOALS['none']}); its one run costs {ratio:.1f}× a plain run "
        f"({seconds[method]:.0f} s vs {seconds['none']:.0f} s of training, mean over seeds; "
        f"goal ≤ 2×). " + ("**The goal is met.**" if met else "**The goal is missed.**") + "\n"
    )


def compare_gaps(results: Path) -> str:
    """The headline (``mnist_gaps.csv``): the best one-run method against separately trained
    models at each width >= 16 and against plain training at full width, mean gap ± standard
    error paired by seed, each against its goal; then the verdict (``_verdict``)."""
    gaps = _gaps(results)
    rows = [
        [f"`{row.reference}`", row.width, row.seeds, signed_points(row.mean, row.se),
         "yes" if row.significant else "no", f"≥ −{row.goal:.1f}",
         "met" if row.met else "**missed**"]
        for row in gaps.itertuples()
    ]  # fmt: skip
    header = ["against", "width", "seeds", "gap, points (mean ± SE)", "beyond 2 SE", "goal",
              "result"]  # fmt: skip
    return markdown(header, rows) + "\n" + _verdict(results, gaps)


def compare_headline(results: Path) -> str:
    """The headline in one row for the README: the gap to separately trained models at each
    width >= 16 (mean ± SE, points; bold where it misses the goal), then the verdict."""
    gaps = _gaps(results)
    wide = gaps[gaps["reference"] == "independent"]
    method = str(gaps["method"].iloc[0])
    cells = [
        (signed_points(r.mean, r.se) if r.met else f"**{signed_points(r.mean, r.se)}**")
        for r in wide.itertuples()
    ]
    header = ["test accuracy gap, points", *(f"w {w}" for w in wide["width"])]
    rows = [[f"`{method}` − separately trained", *cells]]
    return markdown(header, rows) + "\n" + _verdict(results, gaps)


def compare_pairs(results: Path) -> str:
    return pairs_table(comparison_table(results), [16, 32, 64, 128, 256])


def pairs_table(table: pd.DataFrame, widths: list[int]) -> str:
    """Every one-run method against separately trained models at ``widths``: the test accuracy
    gap in points, paired by seed (mean ± SE), marked ``*`` where it is beyond twice its standard
    error (the bar for claiming a difference)."""
    rows = []
    for method, group in table.groupby("method", sort=False):
        if group["train_runs"].iloc[0] != 1 or method in SIZE_KNOBS:
            continue
        gaps = paired_gaps(table, method, "independent").set_index("width")
        cells = []
        for w in widths:
            gap = gaps.loc[w] if w in gaps.index else None
            mark = "*" if gap is not None and gap["significant"] else ""
            cells.append("" if gap is None else signed_points(gap["mean"], gap["se"]) + mark)
        rows.append([method, *cells])
    header = ["method − separately trained (points)", *(f"width {w}" for w in widths)]
    return markdown(header, rows)


def compare_budget(results: Path) -> str:
    return budget_markdown(comparison_table(results))


def budget_markdown(table: pd.DataFrame) -> str:
    """Per method, the model within 10 / 25 / 50% of the full model's parameters with the best
    mean validation accuracy, its test accuracy (mean ± std over seeds), width and parameters."""
    budget = budget_table(table)
    names = ["10%", "25%", "50%"]
    rows = []
    for row in budget.to_dict("records"):
        cells = [
            "–" if pd.isna(row[f"{n} width"]) else
            f"{percent_pm(row[f'{n} accuracy'], row[f'{n} std'])} "
            f"(width {row[f'{n} width']:.0f}, {count(row[f'{n} params'])})"
            for n in names
        ]  # fmt: skip
        full = percent_pm(row["full width"], row["full std"])
        rows.append([row["method"], *cells, full, row["train_runs"], row["seeds"]])
    header = ["method (test accuracy, %)", *(f"≤ {n} params" for n in names), "full width",
              "training runs", "seeds"]  # fmt: skip
    return markdown(header, rows)


def compare_ordering(results: Path) -> str:
    """Per one-run method and hidden layer, the rank correlation between unit index and the
    validation accuracy lost when that unit alone is removed: mean ± std over its runs."""
    order = pd.read_csv(results / "compare" / "mnist_ordering.csv")
    stats = order.groupby(["method", "layer"], sort=False)["spearman"].agg(["mean", "std", "count"])
    rows = [
        [method, layer, f"{s['mean']:+.2f}" + ("" if s["count"] < 2 else f" ± {s['std']:.2f}"),
         int(s["count"])]
        for (method, layer), s in stats.iterrows()
    ]  # fmt: skip
    return markdown(["method", "layer", "Spearman ρ (index vs loss)", "runs"], rows)
