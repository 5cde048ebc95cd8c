"""Collect the runs of a Hydra multirun into one tidy table (one row per run and width)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import yaml

from ..sweep import read_table


def _column_names(keys: list[str]) -> dict[str, str]:
    """``dropout.p`` → ``p`` unless two overrides would share a short name."""
    short = {key: key.rsplit(".", 1)[-1] for key in keys}
    clashes = {name for name in short.values() if list(short.values()).count(name) > 1}
    return {key: key if name in clashes else name for key, name in short.items()}


def collect_runs(multirun_dir: str | Path) -> pd.DataFrame:
    """Every finished job's ``sweep.csv`` with its overrides (and seed) as leading columns.

    Jobs without a ``sweep.csv`` (still running, or killed) are an error that lists them.
    """
    root = Path(multirun_dir)
    jobs = sorted(p.parent.parent for p in root.glob("*/.hydra/overrides.yaml"))
    if not jobs:
        raise FileNotFoundError(f"no Hydra jobs (*/.hydra/overrides.yaml) under {root}")
    unfinished = [str(job) for job in jobs if not (job / "sweep.csv").is_file()]
    if unfinished:
        raise FileNotFoundError(f"{len(unfinished)} jobs have no sweep.csv yet: {unfinished}")
    settings = []
    for job in jobs:
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()) or []
        values = {
            k.lstrip("+~"): yaml.safe_load(v) for k, v in (o.split("=", 1) for o in overrides)
        }
        values["seed"] = json.loads((job / "run.json").read_text())["seed"]
        settings.append(values)
    names = _column_names(sorted({key for values in settings for key in values}))
    frames = []
    for job, values in zip(jobs, settings, strict=True):
        frame = read_table(job / "sweep.csv")
        for key in sorted(values, reverse=True):  # a list override (model.hidden=[..]): one cell
            value = values[key]
            frame.insert(0, names[key], str(value) if isinstance(value, list | dict) else value)
        frame.insert(0, "run", job.name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def runs_provenance(multirun_dir: str | Path) -> list[dict]:
    """Each job's provenance from its run.json (commit, hardware, timings), for the record."""
    keep = (
        "seed",
        "commit",
        "dirty",
        "date",
        "command",
        "torch",
        "hardware",
        "train_seconds",
        "sweep_seconds",
    )
    return [
        {"run": job.parent.name}
        | {k: v for k, v in json.loads(job.read_text()).items() if k in keep}
        for job in sorted(Path(multirun_dir).glob("*/run.json"))
    ]


def collect_recipe_trials(root: str | Path, dataset: str = "val") -> pd.DataFrame:
    """LIIF's recipe trials (``make trials-liif-recipes``): one row per trial, scale and width of
    ``dataset`` (the validation images), from ``<root>/<recipe>/<job>/``: ``recipe, setting,
    seed, scale, width, params, psnr, train_seconds, teacher_seconds, run``. ``teacher_seconds``:
    the frozen teacher's own training, from the ``run.json`` beside its checkpoint (a recipe's
    cost includes it; 0 when the trial has no teacher); ``run``: ``<recipe>/<job>``, the name of
    its provenance. ``setting``: the job's overrides beyond the recipe's shared ones and the seed
    (a trial's seeds share a setting)."""
    frames = []
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        table = collect_runs(folder)
        swept = _swept_keys(folder)  # what the grid varies, though a launch ran one value
        varied = [c for c in table.columns[1 : table.columns.get_loc("width")] if c != "seed"]
        varied = [c for c in varied if table[c].nunique() > 1 or c in swept]
        rows = table[table["dataset"] == dataset].copy()
        seconds, teachers = {}, {}
        for job in rows["run"].unique():
            run = json.loads((folder / job / "run.json").read_text())
            seconds[job] = run["train_seconds"]
            teacher = (run["config"]["trainer"].get("teacher") or {}).get("checkpoint")
            teachers[job] = _teacher_seconds(teacher) if teacher else 0.0
        rows["setting"] = [",".join(f"{c}={row[c]}" for c in varied) for _, row in rows.iterrows()]
        rows["train_seconds"] = rows["run"].map(seconds)
        rows["teacher_seconds"] = rows["run"].map(teachers)
        rows["recipe"] = folder.name
        rows["run"] = folder.name + "/" + rows["run"]
        frames.append(rows)
    if not frames:
        raise FileNotFoundError(f"no recipe folders under {root}")
    columns = ["recipe", "setting", "seed", "scale", "width", "params", "psnr", "train_seconds",
               "teacher_seconds", "run"]  # fmt: skip
    return pd.concat(frames, ignore_index=True)[columns]


def _swept_keys(folder: Path) -> set[str]:
    """The keys (full and short names) with several values in a recipe's grid, from its jobs'
    ``.hydra/hydra.yaml``: a job run alone (a command-line override) still names its value."""
    keys = set()
    for config in folder.glob("*/.hydra/hydra.yaml"):
        params = yaml.safe_load(config.read_text())["hydra"]["sweeper"]["params"] or {}
        for key, value in params.items():
            if "," in re.sub(r"\[[^\]]*\]", "", str(value)):  # a list value is one value
                keys |= {key, key.rsplit(".", 1)[-1]}
    return keys


def _teacher_seconds(checkpoint: str) -> float:
    """The training time recorded beside a teacher's checkpoint (its run's ``run.json``)."""
    run_json = Path(checkpoint).parent / "run.json"
    if not run_json.is_file():
        raise FileNotFoundError(f"the teacher's {run_json} is missing: its cost cannot be counted")
    return float(json.loads(run_json.read_text())["train_seconds"])
