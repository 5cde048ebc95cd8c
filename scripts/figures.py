"""Redraw every figure from the committed CSVs alone: python scripts/figures.py [results_dir]"""

import sys
from pathlib import Path

import pandas as pd

from structural_dropout.plots import compare_sweeps, seed_bands, sweep_figures


def main(results: Path) -> None:
    csvs = sorted(results.rglob("sweep.csv"))
    if not csvs:
        raise SystemExit(f"no sweep.csv under {results}")
    for csv in csvs:
        for path in sweep_figures(csv):
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
    for seeds in sorted(results.rglob("seeds.csv")):
        print(seed_bands(pd.read_csv(seeds), seeds.with_suffix(".png")))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "results"))
