"""The MNIST MLP's tables (README, results/mnist/)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...sweep import read_table
from ..compare import paired_gaps
from .comparison import signed_points
from .format import (
    at_widths,
    best_on_validation,
    count,
    markdown,
    mean_std,
    percent,
    runs_cost,
    sweep_rows,
)


def mnist_widths(results: Path) -> str:
    widths = [8, 16, 32, 64, 128, 256]
    sweeps = {
        "structural dropout, p=1": results / "mnist" / "sweep.csv",
        "plain training, truncated": results / "mnist" / "none" / "sweep.csv",
    }
    params = at_widths(read_table(sweeps["structural dropout, p=1"]), "params", widths)
    rows = [*sweep_rows(sweeps, widths), ["parameters", *map(count, params)]]
    return markdown(["width", *map(str, widths)], rows)


def mnist_facts(results: Path) -> str:
    """The numbers the MNIST prose quotes, each with the file it comes from."""
    ours = read_table(results / "mnist" / "sweep.csv")
    plain = read_table(results / "mnist" / "none" / "sweep.csv")
    best = best_on_validation(ours)
    full = ours["width"].max()
    share = at_widths(ours, "params", [64])[0] / at_widths(ours, "params", [full])[0]
    rows = [
        [
            "best width on validation (smallest reaching the best)",
            f"{int(best['width'])}: validation {percent(best['val_accuracy'], 2)}, "
            f"test {percent(best['accuracy'], 2)}",
            "`mnist/sweep.csv`",
        ],
        [
            "width 64: parameters, share of the full model",
            f"{count(at_widths(ours, 'params', [64])[0])}, {percent(share)}",
            "`mnist/sweep.csv`",
        ],
        [
            "full width, test: structural dropout vs plain",
            f"{percent(at_widths(ours, 'accuracy', [full])[0], 2)} vs "
            f"{percent(at_widths(plain, 'accuracy', [full])[0], 2)}",
            "`mnist/sweep.csv`, `mnist/none/sweep.csv`",
        ],
    ]
    return markdown(["quantity", "value", "file"], rows)


def mnist_seeds(results: Path) -> str:
    table = pd.read_csv(results / "mnist" / "seeds.csv")
    widths = [16, 32, 64, 256]
    rows = []
    for p, group in table.groupby("p"):
        stats = group.groupby("width")["accuracy"].agg(["mean", "std", "count"])
        cells = [
            f"{100 * stats.loc[w, 'mean']:.2f} ± {100 * stats.loc[w, 'std']:.2f}%" for w in widths
        ]
        rows.append([f"{p:g}" + (" (plain)" if p == 0 else ""), *cells, int(stats["count"].min())])
    return markdown(["p", *(f"width {w}" for w in widths), "seeds"], rows)


def mnist_seeds_cost(results: Path) -> str:
    return runs_cost(results / "mnist" / "seeds_runs.json", "sweep-mnist")


DDP_CUT_WIDTHS = [8, 16, 32, 64, 256]


def mnist_ddp_cuts(results: Path) -> str:
    """The cpu profile over 2 processes with each rank's cut the same or its own (issue #20):
    test accuracy in %, mean ± std over seeds, at a few widths and over every width; then
    ``per_rank`` minus ``same``, paired by seed (mean ± standard error; **bold** beyond twice it),
    on test and on validation (the split a choice between the two reads).
    """
    table = pd.read_csv(results / "mnist" / "ddp_cuts.csv").rename(columns={"cuts": "method"})
    # each run's mean over every width, as one pseudo-width (0) that paired_gaps can pair
    scores = ["accuracy", "val_accuracy"]
    means = table.groupby(["method", "seed"])[scores].mean().reset_index().assign(width=0)
    rows = []
    for mode, group in table.groupby("method"):
        cells = [mean_std(group.loc[group["width"] == w, "accuracy"]) for w in DDP_CUT_WIDTHS]
        over = mean_std(means.loc[means["method"] == mode, "accuracy"])
        rows.append([f"`{mode}`", *cells, over, group["seed"].nunique()])
    for column, split in (("accuracy", "test"), ("val_accuracy", "validation")):
        gaps = paired_gaps(table, "per_rank", "same", column).set_index("width")
        cells = [_gap_cell(gaps.loc[w]) for w in DDP_CUT_WIDTHS]
        cells.append(_gap_cell(paired_gaps(means, "per_rank", "same", column).iloc[0]))
        rows.append([f"`per_rank` − `same`, points, {split}", *cells, int(gaps["seeds"].min())])
    header = ["cuts (2 processes), test %", *(f"width {w}" for w in DDP_CUT_WIDTHS),
              "every width", "seeds"]  # fmt: skip
    return markdown(header, rows)


def _gap_cell(gap: pd.Series) -> str:
    text = signed_points(gap["mean"], gap["se"])
    return f"**{text}**" if gap["significant"] else text


def mnist_ddp_cuts_cost(results: Path) -> str:
    return runs_cost(results / "mnist" / "ddp_cuts_runs.json", "ddp-cuts-mnist")
