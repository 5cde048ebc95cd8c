"""Redraw every figure from the committed CSVs alone: python scripts/figures.py [results_dir]"""

import sys
from pathlib import Path

from structural_dropout.plots import compare_sweeps, sweep_figures


def main(results: Path) -> None:
    csvs = sorted(results.rglob("sweep.csv"))
    if not csvs:
        raise SystemExit(f"no sweep.csv under {results}")
    for csv in csvs:
        for path in sweep_figures(csv):
            print(path)
    mnist, plain = results / "mnist" / "sweep.csv", results / "mnist" / "none" / "sweep.csv"
    if mnist.exists() and plain.exists():
        curves = {"structural dropout (p=1)": mnist, "plain training, truncated": plain}
        print(compare_sweeps(curves, results / "mnist" / "structural_vs_plain.png"))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "results"))
