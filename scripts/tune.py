"""Score every tuning trial on validation and name each method's choice:

    python scripts/tune.py multirun/tune_mnist results/compare/tuning.csv [--jobs N]

Writes the CSV (one row per trial, ``chosen`` marking each method's best on validation),
``<name>_runs.json`` (every run's provenance) and, for each method, the final comparison's grid
at its chosen setting, ``configs/grid/compare_<experiment>_<method>.yaml``, running ``--jobs``
jobs side by side (default 2).
"""

import sys
from pathlib import Path

from structural_dropout.io import atomic_write
from structural_dropout.lab.checkpoint import write_json
from structural_dropout.lab.logs import one_line_errors
from structural_dropout.lab.reports.aggregate import runs_provenance
from structural_dropout.lab.reports.tuning import final_grids, tuning_table

GRIDS = Path(__file__).resolve().parents[1] / "configs" / "grid"


@one_line_errors
def main(root: Path, out_csv: Path, n_jobs: int = 2) -> None:
    table = tuning_table(root)
    atomic_write(out_csv, lambda tmp: table.to_csv(tmp, index=False))
    provenance = [
        r | {"run": f"{folder.name}/{r['run']}"}
        for folder in sorted(p for p in root.iterdir() if p.is_dir())
        for r in runs_provenance(folder)
    ]
    write_json(out_csv.with_name(f"{out_csv.stem}_runs.json"), provenance)
    print(f"{out_csv}: {len(table)} trials of {table['method'].nunique()} methods")
    chosen = table[table["chosen"]]
    print(chosen.to_string(index=False))
    for name, text in final_grids(table, str(out_csv), n_jobs).items():
        atomic_write(GRIDS / name, lambda tmp, text=text: Path(tmp).write_text(text))
        print(GRIDS / name)


if __name__ == "__main__":
    args = sys.argv[1:]
    jobs = 2
    if len(args) == 4 and args[2] == "--jobs" and args[3].isdigit() and int(args[3]) > 0:
        jobs, args = int(args[3]), args[:2]
    if len(args) != 2:
        raise SystemExit(__doc__)
    main(Path(args[0]), Path(args[1]), jobs)
