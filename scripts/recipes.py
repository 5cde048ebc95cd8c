"""Collect LIIF's recipe trials (make trials-liif-recipes) into one table.

    python scripts/recipes.py multirun/liif_recipes results/liif/recipes.csv
    python scripts/recipes.py --keep-others multirun/liif_recipes results/liif/recipes.csv

Writes the CSV (``recipe,setting,seed,scale,width,params,psnr,train_seconds,teacher_seconds``:
the validation images' PSNR of every trial run at each scale and width; a teacher's own training
time counted beside) and ``<name>_runs.json`` with every trial run's provenance. ``--keep-others``
keeps the rows (and provenance) of the recipes in the existing CSV that have no folder under
the multirun: for trials run in several sessions, a recipe at a time.
"""

import argparse
import json
from pathlib import Path

import pandas as pd

from structural_dropout.io import atomic_write
from structural_dropout.lab.checkpoint import write_json
from structural_dropout.lab.logs import one_line_errors
from structural_dropout.lab.reports.aggregate import collect_recipe_trials, runs_provenance


@one_line_errors
def main(root: Path, out_csv: Path, keep_others: bool = False) -> None:
    table = collect_recipe_trials(root)
    provenance = [
        r | {"run": f"{folder.name}/{r['run']}"}
        for folder in sorted(p for p in root.iterdir() if p.is_dir())
        for r in runs_provenance(folder)
    ]
    runs_json = out_csv.with_name(f"{out_csv.stem}_runs.json")
    if keep_others and out_csv.is_file():
        old = pd.read_csv(out_csv, dtype={"setting": str}).fillna({"setting": ""})
        if "seed" not in old:  # a table from before the seed column: every trial was seed 0
            old.insert(2, "seed", 0)
        kept = old[~old["recipe"].isin(set(table["recipe"]))]
        names = set(kept["recipe"])
        old_runs = json.loads(runs_json.read_text()) if runs_json.is_file() else []
        provenance += [r for r in old_runs if r["run"].split("/", 1)[0] in names]
        print(f"kept from {out_csv}: {', '.join(sorted(names)) or 'nothing'}")
        table = pd.concat([kept, table], ignore_index=True)
    atomic_write(out_csv, lambda tmp: table.to_csv(tmp, index=False))
    print(f"{out_csv}: {table.groupby(['recipe', 'setting'], dropna=False).ngroups} trials, "
          f"{len(table)} rows")  # fmt: skip
    write_json(runs_json, sorted(provenance, key=lambda r: r["run"]))
    print(table.pivot_table("psnr", ["recipe", "setting", "scale"], "width").round(2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("out_csv", type=Path)
    parser.add_argument("--keep-others", action="store_true")
    args = parser.parse_args()
    main(args.root, args.out_csv, args.keep_others)
