"""The tuning of a method comparison: every trial's validation score and each method's choice.

A tuning root holds one Hydra multirun folder per method, all of one experiment (``make
tune-mnist``: ``multirun/tune_mnist/<method>/<job>``). A trial is one setting of the knobs its
grid varies (and of the overrides it holds constant, so that a method may have several folders,
or carry a setting it needs); for a baseline whose grid also varies the model size
(``SIZE_KNOBS``), a trial spans every size. Trials are scored on validation only: the mean
validation score (the sweeps' metric: accuracy, or loss, where lower is better) over its rows of
width ``min_width`` and up (the widths the comparison's claims are about) and over all sizes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from ..sweep import higher_is_better, metric_columns
from .aggregate import _column_names, collect_runs

SIZE_KNOBS = {"compaction": "strength", "drop_pruning": "sparsity"}  # a size, not a tuned knob
MEASURED = ("run", "seed", "width", "params")
RUN_KEYS = {"experiment", "profile", "method", "seed", "grid"}  # what names a run, not a knob
# Chosen on their full width's validation score: plain training is the full-width reference
# (its truncations show what a width costs without an ordering; they are not what it is for).
FULL_WIDTH_METHODS = {"none"}


def tuning_table(root: str | Path, min_width: int = 16) -> pd.DataFrame:
    """One row per method and trial: ``experiment, method, setting, overrides, sizes, runs,
    val_score, val_full, train_seconds, chosen`` (``overrides``: the setting as command-line
    overrides; ``sizes``: a baseline's model sizes; ``chosen``: the best ``val_score`` of its
    method: the highest, or for a loss the lowest; for ``FULL_WIDTH_METHODS`` the best
    ``val_full``). The test score is not read."""
    folders = sorted(p for p in Path(root).iterdir() if p.is_dir())
    if not folders:
        raise FileNotFoundError(f"no method folders under {root}")
    rows, metrics = [], set()
    for folder in folders:
        table = collect_runs(folder)
        val, test = metric_columns(table)
        if val is None:
            raise ValueError(f"{folder}'s sweeps have no val_{test} column: nothing to choose on")
        metrics.add(test)
        methods = table["method"].unique() if "method" in table else []
        if len(methods) != 1:
            raise ValueError(f"{folder} must hold the runs of one method=..., got {list(methods)}")
        method = methods[0]
        experiments = table["experiment"].unique() if "experiment" in table else []
        if len(experiments) != 1:
            raise ValueError(
                f"{folder} must hold the runs of one experiment=..., got {list(experiments)}"
            )
        seconds = {
            job.parent.name: json.loads(job.read_text())["train_seconds"]
            for job in folder.glob("*/run.json")
        }
        keys = {
            line.split("=", 1)[0].lstrip("- +~")
            for job in folder.glob("*/.hydra/overrides.yaml")
            for line in job.read_text().splitlines()
            if "=" in line
        }
        full_name = {short: key for key, short in _column_names(sorted(keys)).items()}
        size = SIZE_KNOBS.get(method)
        measured = (*MEASURED, val, test, size)
        knobs = [c for c in table.columns if c not in measured and table[c].nunique() > 1]
        # An override the folder's grid holds constant (beyond what every run names) is part of
        # its setting too: a second folder of one method differs from the first in it (LeNet-5's
        # drop_pruning_global: scope=global), or the method needs it (MatFormer's granularities,
        # trainer.rule.fixed), and the final grid must carry it.
        knobs += [
            c
            for c in table.columns
            if c not in measured
            and c not in knobs
            and c in full_name
            and full_name[c] not in RUN_KEYS
        ]
        experiment = experiments[0]
        one_run = size is None
        for values, trial in table.groupby(knobs, sort=True) if knobs else [((), table)]:
            values = values if isinstance(values, tuple) else (values,)
            scored = trial[trial["width"] >= min_width] if one_run else trial
            widest = trial.loc[trial.groupby("run")["width"].idxmax()]
            rows.append(
                {
                    "experiment": experiment,
                    "method": method,
                    "setting": ",".join(f"{k}={v}" for k, v in zip(knobs, values, strict=True)),
                    "overrides": " ".join(
                        f"{full_name[k]}={_override(v)}" for k, v in zip(knobs, values, strict=True)
                    ),
                    "sizes": "" if one_run else ",".join(map(str, sorted(trial[size].unique()))),
                    "runs": trial["run"].nunique(),
                    "val_score": scored[val].mean(),
                    "val_full": widest[val].mean(),
                    "train_seconds": round(sum(seconds[r] for r in trial["run"].unique()), 1),
                }
            )
    result = pd.DataFrame(rows)
    if result["experiment"].nunique() != 1:
        raise ValueError(f"{root} mixes experiments: {sorted(result['experiment'].unique())}")
    if len(metrics) != 1:
        raise ValueError(f"{root} mixes metrics: {sorted(metrics)}")
    # The best score of each method; on a tie, the first trial in the table's order.
    best = "idxmax" if higher_is_better(metrics.pop()) else "idxmin"
    full_width = result["method"].isin(FULL_WIDTH_METHODS)
    score = result["val_score"].where(~full_width, result["val_full"])
    result["chosen"] = result.index.isin(score.groupby(result["method"]).agg(best))
    return result


def _override(value) -> str:
    """A value as a command line takes it: a list without spaces (``[64,128,256]``), so that the
    overrides column splits on whitespace."""
    return str(value).replace(" ", "") if str(value).startswith("[") else str(value)


def final_grid(
    experiment: str,
    method: str,
    overrides: str,
    sizes: str = "",
    source: str = "results/compare/tuning.csv",
    seeds: str = "1,2,3",
    n_jobs: int = 2,
) -> str:
    """The final comparison's grid for ``method`` of ``experiment`` at its chosen ``overrides``
    (a line of ``key=value``): ``configs/grid/compare_<experiment>_<method>.yaml``, written by
    ``scripts/tune.py`` from the tuning table ``source`` (a test keeps the two in step);
    ``n_jobs`` runs side by side (1 where one 2-thread job is faster than two 1-thread ones)."""
    params = {"experiment": experiment, "profile": "cpu", "method": method, "seed": seeds}
    size = SIZE_KNOBS.get(method)
    chosen = dict(item.split("=", 1) for item in overrides.split())
    body = {
        "defaults": [{"override /hydra/launcher": "joblib"}],
        "hydra": {
            "mode": "MULTIRUN",
            "launcher": {"n_jobs": n_jobs},
            "sweeper": {"params": params},
        },
        "resume": "auto",
        "progress": False,
        "sweep": {"figures": False},
    }
    if size is not None:  # every size of the tuning grid, at the chosen knobs
        params[f"method.training.{size}"] = sizes
    for key, value in chosen.items():
        parsed = yaml.safe_load(value)  # 8, not '8', in the YAML; a list stays one override
        params[key] = value if isinstance(parsed, list | dict) else parsed
    header = (
        "# @package _global_\n"
        f"# make compare-{experiment}, part {method}: its setting chosen on validation by\n"
        f"# make tune-{experiment} ({source}), seeds 1-3 (seed 0 tuned).\n"
        f"# Written by scripts/tune.py from {Path(source).name}; a test keeps the two in step.\n"
    )
    return header + yaml.safe_dump(body, sort_keys=False)


def final_grids(
    table: pd.DataFrame, source: str = "results/compare/tuning.csv", n_jobs: int = 2
) -> dict[str, str]:
    """``compare_<experiment>_<method>.yaml`` -> its text, for every method's chosen trial of a
    tuning table (as ``tuning_table`` returns it or as read back from ``source``)."""
    chosen = table[table["chosen"]].astype({"sizes": object, "overrides": object})
    chosen = chosen.fillna({"sizes": "", "overrides": ""})
    return {
        f"compare_{row.experiment}_{row.method}.yaml": final_grid(
            row.experiment, row.method, row.overrides, str(row.sizes), source, n_jobs=n_jobs
        )
        for row in chosen.itertuples()
    }
