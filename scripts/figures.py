"""Redraw every figure from the committed CSVs alone: python scripts/figures.py [results_dir]"""

import sys
from pathlib import Path

from structural_dropout.plots import sweep_figures


def main(results: Path) -> None:
    csvs = sorted(results.rglob("sweep.csv"))
    if not csvs:
        raise SystemExit(f"no sweep.csv under {results}")
    for csv in csvs:
        for path in sweep_figures(csv):
            print(path)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "results"))
