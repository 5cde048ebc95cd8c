"""Collect method runs into the comparison table, figure, budget table and ordering diagnostic.

    python scripts/compare.py results/compare/mnist multirun/compare_mnist [more run folders...]
    python scripts/compare.py --keep-ordering results/compare/mnist multirun/compare_mnist

Every folder under the given ones that holds a ``run.json`` of a ``method=...`` run is one run.
Writes ``<out>.csv`` (method,setting,seed,width,params,val_accuracy,accuracy,train_runs,
train_seconds), ``<out>.png``, ``<out>_budget.md``, ``<out>_gaps.csv`` (the best one-run method,
chosen on validation, against separately trained widths and plain training, paired by seed),
``<out>_ordering.csv`` (per one-run method, seed and layer, the rank correlation between unit index
and the validation accuracy lost when that unit alone is removed) and ``<out>_runs.json``.
``--keep-ordering`` leaves an existing ``<out>_ordering.csv`` as it is (it reads the one-run
methods' checkpoints only, and takes minutes: about 3 a run here): for a rerun after more
baseline runs finished. ``--ordering-seed N``: the diagnostic of seed N's runs only.
``--no-ordering``: no diagnostic (a comparison whose runs are kept without their checkpoints).
"""

import argparse
import json
from pathlib import Path

import pandas as pd
import torch

from structural_dropout.io import atomic_write
from structural_dropout.lab.build import rebuild
from structural_dropout.lab.checkpoint import write_json
from structural_dropout.lab.logs import one_line_errors
from structural_dropout.lab.reports.aggregate import runs_provenance
from structural_dropout.lab.reports.compare import (
    budget_table,
    collect_methods,
    headline,
    methods_figure,
)
from structural_dropout.lab.reports.unit_ablation import index_rank_correlation, unit_ablation


def ordering(run_dirs: list[Path], table: pd.DataFrame, seed: int | None) -> pd.DataFrame:
    """Unit-ablation rank correlations of the one-run methods (one model gives every width),
    of the runs of ``seed`` only (None: every seed)."""
    one_run = set(table.loc[table["train_runs"] == 1, "method"])
    rows = []
    for run_dir in run_dirs:
        run_json = json.loads((run_dir / "run.json").read_text())
        if run_json["config"]["method"]["name"] not in one_run:
            continue
        if seed is not None and run_json["seed"] != seed:
            continue
        _, run = rebuild(run_dir / "checkpoint.pt", torch.device("cpu"))
        config = run.config
        split = config.sweep.get("val_split") or "val"  # a diagnostic: never on the test set
        ablation = unit_ablation(run.model, run.task, split, progress=False)
        for layer, rho in index_rank_correlation(ablation).items():
            rows.append(
                {"method": config.method.name, "seed": config.seed, "layer": layer, "spearman": rho}
            )
        print(f"ordering: {config.method.name} done", flush=True)
    return pd.DataFrame(rows)


@one_line_errors
def main(
    out: Path,
    sources: list[Path],
    keep_ordering: bool = False,
    ordering_seed: int | None = None,
    no_ordering: bool = False,
) -> None:
    run_dirs = sorted({p.parent for source in sources for p in source.rglob("run.json")})
    table = collect_methods(run_dirs)
    csv = out.with_suffix(".csv")
    atomic_write(csv, lambda tmp: table.to_csv(tmp, index=False))
    print(f"{csv}: {len(run_dirs)} runs, {len(table)} rows")
    print(methods_figure(table, out.with_suffix(".png")))
    if {"independent", "none"} <= set(table["method"]):
        gaps = headline(table)
        atomic_write(
            out.with_name(f"{out.name}_gaps.csv"), lambda tmp: gaps.to_csv(tmp, index=False)
        )
        print(gaps.to_string(index=False))
    budget = budget_table(table).to_markdown(index=False, floatfmt=".4f")
    atomic_write(out.with_name(f"{out.name}_budget.md"), lambda tmp: Path(tmp).write_text(budget))
    print(budget)
    ordering_csv = out.with_name(f"{out.name}_ordering.csv")
    if no_ordering:
        print("ordering: skipped (--no-ordering)")
    elif keep_ordering and ordering_csv.is_file():
        print(f"{ordering_csv}: kept as it is (--keep-ordering)")
    else:
        order = ordering(run_dirs, table, ordering_seed)
        atomic_write(ordering_csv, lambda tmp: order.to_csv(tmp, index=False))
        print(order.to_string(index=False))
    provenance = [  # runs named <multirun folder>/<job>, e.g. independent/3
        r | {"run": f"{folder.name}/{r['run']}"}
        for folder in sorted({d.parent for d in run_dirs})
        for r in runs_provenance(folder)
    ]
    write_json(out.with_name(f"{out.name}_runs.json"), provenance)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("sources", type=Path, nargs="+")
    parser.add_argument("--keep-ordering", action="store_true")
    parser.add_argument("--ordering-seed", type=int, default=None)
    parser.add_argument("--no-ordering", action="store_true")
    args = parser.parse_args()
    main(args.out, args.sources, args.keep_ordering, args.ordering_seed, args.no_ordering)
