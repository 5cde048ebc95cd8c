"""Collect a multirun into one table and plot mean ± std over seeds.

    python scripts/aggregate.py multirun/mnist/<time> [results/mnist/seeds.csv]

Writes the CSV (one row per run and width, the run's overrides as columns), a PNG beside it (not
for LIIF's datasets x scales) and ``<name>_runs.json`` with every run's provenance (commit,
hardware, timings).
"""

import sys
from pathlib import Path

from structural_dropout.io import atomic_write
from structural_dropout.lab.checkpoint import write_json
from structural_dropout.lab.logs import one_line_errors
from structural_dropout.lab.reports.aggregate import collect_runs, runs_provenance
from structural_dropout.lab.reports.plots import aggregate_figure


@one_line_errors
def main(multirun_dir: Path, out_csv: Path) -> None:
    table = collect_runs(multirun_dir)
    atomic_write(out_csv, lambda tmp: table.to_csv(tmp, index=False))
    print(f"{out_csv}: {table['run'].nunique()} runs, {len(table)} rows")
    write_json(out_csv.with_name(f"{out_csv.stem}_runs.json"), runs_provenance(multirun_dir))
    figure = aggregate_figure(table, out_csv.with_suffix(".png"))
    if figure is not None:
        print(figure)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    source = Path(sys.argv[1])
    main(source, Path(sys.argv[2]) if len(sys.argv) == 3 else source / "aggregate.csv")
