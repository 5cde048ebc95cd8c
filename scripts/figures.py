"""Redraw every figure from the committed CSVs alone: python scripts/figures.py [results_dir]

Every figure under results/ that is drawn from a CSV is redrawn here (the LIIF crops need the
trained model and are drawn by its run only)."""

import sys
from pathlib import Path

import pandas as pd

from experiments.liif.figures import compare_runs, liif_figures
from structural_dropout.lab.logs import one_line_errors
from structural_dropout.lab.reports.compare import methods_figure
from structural_dropout.lab.reports.latency import latency_figure
from structural_dropout.lab.reports.plots import aggregate_figure, compare_sweeps, sweep_figures
from structural_dropout.lab.sweep import METRICS


@one_line_errors
def main(results: Path) -> None:
    # A multirun job's record (scripts/keep_runs.py: a .hydra/ beside it) has no figures: its
    # grid ran with sweep.figures=false, and its table is the tuning's or comparison's.
    csvs = sorted(p for p in results.rglob("sweep.csv") if not (p.parent / ".hydra").is_dir())
    if not csvs:
        raise SystemExit(f"no sweep.csv under {results}")
    for csv in csvs:
        by_dataset = "dataset" in pd.read_csv(csv, nrows=0).columns  # LIIF: datasets x scales
        paths = liif_figures(csv, csv.parent / "bicubic.csv") if by_dataset else sweep_figures(csv)
        for path in paths:
            print(path)
    comparisons = {
        results / "mnist" / "structural_vs_plain.png": {
            "structural dropout (p=1)": results / "mnist" / "sweep.csv",
            "plain training, truncated": results / "mnist" / "none" / "sweep.csv",
        },
        results / "pointnet" / "bn_recalibration.png": {
            "BatchNorm recalibrated per width": results / "pointnet" / "sweep.csv",
            "shared statistics (sliced)": results / "pointnet" / "shared_bn" / "sweep.csv",
        },
    }
    for figure, curves in comparisons.items():
        if all(path.exists() for path in curves.values()):
            print(compare_sweeps(curves, figure))
    liif = {
        "sandwich rule, distilled": results / "liif" / "sweep.csv",
        "paper rule (one uniform cut)": results / "liif" / "paper_rule" / "sweep.csv",
        "plain training, truncated": results / "liif" / "none" / "sweep.csv",
    }
    liif = {name: path for name, path in liif.items() if path.exists()}
    if len(liif) > 1:  # the LIIF runs committed, on the dataset they share
        bicubic = results / "liif" / "bicubic.csv"
        print(compare_runs(liif, "Set5", results / "liif" / "structural_vs_plain.png", bicubic))
    aggregates = ("seeds.csv", "trials.csv", "ddp_cuts.csv")  # scripts/aggregate.py's tables
    for runs in sorted(p for name in aggregates for p in results.rglob(name)):
        figure = aggregate_figure(pd.read_csv(runs), runs.with_suffix(".png"))
        if figure is not None:
            print(figure)
    for table in sorted((results / "compare").glob("*.csv")):  # the method comparisons
        frame = pd.read_csv(table)
        scored = METRICS.keys() & set(frame.columns)  # accuracy (MNIST, LeNet-5), loss (GPT)
        if {"method", "width", "params"} <= set(frame.columns) and scored:  # not tuning, gaps
            print(methods_figure(frame, table.with_suffix(".png")))
    latency = {name: results / "bench" / f"{name}.csv" for name in ("widths", "pruned")}
    lenet5 = results / "compare" / "lenet5.csv"
    if lenet5.exists() and all(path.exists() for path in latency.values()):  # issue #18's figure
        frame = pd.read_csv(lenet5, dtype={"setting": str}).fillna({"setting": ""})
        timings = {name: pd.read_csv(path) for name, path in latency.items()}
        out = results / "compare" / "lenet5_latency.png"
        print(latency_figure(frame, timings["widths"], timings["pruned"], out, "lenet5"))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "results"))
