"""The tuning of the method comparison: every trial's validation score and each method's choice.

A tuning root holds one Hydra multirun folder per method (``make tune-mnist``:
``multirun/tune_mnist/<method>/<job>``). A trial is one setting of the knobs its grid varies;
for a baseline whose grid also varies the model size (``SIZE_KNOBS``), a trial spans every size.
Trials are scored on validation only: the mean validation accuracy over its rows of width
``min_width`` and up (the widths the comparison's claims are about) and over all sizes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .aggregate import collect_runs

SIZE_KNOBS = {"compaction": "strength", "drop_pruning": "sparsity"}  # a size, not a tuned knob
MEASURED = ("run", "seed", "width", "params", "val_accuracy", "accuracy")


def tuning_table(root: str | Path, min_width: int = 16) -> pd.DataFrame:
    """One row per method and trial: ``method, setting, runs, val_score, val_full,
    train_seconds, chosen`` (``chosen``: the best ``val_score`` of its method). The test
    accuracy is not read."""
    folders = sorted(p for p in Path(root).iterdir() if p.is_dir())
    if not folders:
        raise FileNotFoundError(f"no method folders under {root}")
    rows = []
    for folder in folders:
        table = collect_runs(folder)
        methods = table["method"].unique() if "method" in table else []
        if len(methods) != 1:
            raise ValueError(f"{folder} must hold the runs of one method=..., got {list(methods)}")
        method = methods[0]
        seconds = {
            job.parent.name: json.loads(job.read_text())["train_seconds"]
            for job in folder.glob("*/run.json")
        }
        size = SIZE_KNOBS.get(method)
        knobs = [c for c in table.columns if c not in (*MEASURED, size) and table[c].nunique() > 1]
        one_run = size is None
        for values, trial in table.groupby(knobs, sort=True) if knobs else [((), table)]:
            values = values if isinstance(values, tuple) else (values,)
            scored = trial[trial["width"] >= min_width] if one_run else trial
            widest = trial.loc[trial.groupby("run")["width"].idxmax()]
            rows.append(
                {
                    "method": method,
                    "setting": ",".join(f"{k}={v}" for k, v in zip(knobs, values, strict=True)),
                    "runs": trial["run"].nunique(),
                    "val_score": scored["val_accuracy"].mean(),
                    "val_full": widest["val_accuracy"].mean(),
                    "train_seconds": round(sum(seconds[r] for r in trial["run"].unique()), 1),
                }
            )
    result = pd.DataFrame(rows)
    # The best score of each method; on a tie, the first trial in the table's order.
    result["chosen"] = result.index.isin(result.groupby("method")["val_score"].idxmax())
    return result
