"""Collect LIIF's recipe trials (make trials-liif-recipes) into one table.

    python scripts/recipes.py multirun/liif_recipes results/liif/recipes.csv
    python scripts/recipes.py --keep-others multirun/liif_recipes results/liif/recipes.csv

Writes the CSV (``recipe,setting,seed,scale,width,params,psnr,train_seconds,teacher_seconds,run``:
the validation images' PSNR of every trial run at each scale and width; a teacher's own training
time counted beside; ``run`` names the trial's entry in) ``<name>_runs.json``, every trial run's
provenance. ``--keep-others`` keeps the existing CSV's trials (recipe, setting and seed) that the
multirun does not hold, with their provenance: for trials run in several sessions. A later
session's launch needs its own job folders (``hydra.sweep.subdir=c${hydra.job.num}``).
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
        if "run" not in old:
            raise ValueError(f"{out_csv} has no run column: its trials cannot be told apart")
        trial = ["recipe", "setting", "seed"]
        new_trials = set(table[trial].itertuples(index=False))
        kept = old[[t not in new_trials for t in old[trial].itertuples(index=False)]]
        old_runs = json.loads(runs_json.read_text()) if runs_json.is_file() else []
        if clash := set(kept["run"]) & {r["run"] for r in provenance}:
            raise ValueError(
                f"job folders {sorted(clash)} hold other trials than {out_csv} says: "
                "give a later launch its own (hydra.sweep.subdir=c${hydra.job.num})"
            )
        provenance += [r for r in old_runs if r["run"] in set(kept["run"])]
        names = sorted(set(kept["recipe"] + " " + kept["setting"]))
        print(f"kept from {out_csv}: {', '.join(n.strip() for n in names) or 'nothing'}")
        table = pd.concat([kept, table], ignore_index=True)
    order = ["recipe", "setting", "seed", "scale", "width"]  # a table in one order, however made
    table = table.sort_values(order, kind="stable", ignore_index=True)
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
