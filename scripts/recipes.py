"""Collect LIIF's recipe trials (make trials-liif-recipes) into one table.

    python scripts/recipes.py multirun/liif_recipes results/liif/recipes.csv

Writes the CSV (``recipe,setting,scale,width,params,psnr,train_seconds,teacher_seconds``: the
validation images' PSNR of every trial at each scale and width; a teacher's own training time
counted beside) and ``<name>_runs.json`` with every trial run's provenance.
"""

import sys
from pathlib import Path

from structural_dropout.io import atomic_write
from structural_dropout.lab.checkpoint import write_json
from structural_dropout.lab.logs import one_line_errors
from structural_dropout.lab.reports.aggregate import collect_recipe_trials, runs_provenance


@one_line_errors
def main(root: Path, out_csv: Path) -> None:
    table = collect_recipe_trials(root)
    atomic_write(out_csv, lambda tmp: table.to_csv(tmp, index=False))
    print(f"{out_csv}: {table.groupby(['recipe', 'setting']).ngroups} trials, {len(table)} rows")
    provenance = [
        r | {"run": f"{folder.name}/{r['run']}"}
        for folder in sorted(p for p in root.iterdir() if p.is_dir())
        for r in runs_provenance(folder)
    ]
    write_json(out_csv.with_name(f"{out_csv.stem}_runs.json"), provenance)
    print(table.pivot_table("psnr", ["recipe", "setting", "scale"], "width").round(2))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
