"""What every generated table shares: number formats, Markdown, sweep rows, run provenance."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from ...sweep import metric_columns, read_table
from ..plots import marked_widths


def percent(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f}%"


def count(value: float) -> str:
    """Parameters the way the tables write them: 807, 55 k, 1.41 M."""
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    return f"{value / 1e3:.1f} k" if value >= 1e4 else f"{value:,.0f}"


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def at_widths(table: pd.DataFrame, column: str, widths: Sequence[int]) -> list[float]:
    """``column`` at each of ``widths`` (each must be in the table: no silent gaps)."""
    indexed = table.set_index("width")[column]
    missing = [w for w in widths if w not in indexed.index]
    if missing:
        raise KeyError(f"widths {missing} are not in the sweep")
    return [float(indexed[w]) for w in widths]


def best_on_validation(table: pd.DataFrame) -> pd.Series:
    """The smallest width with the best validation score (its test score reported beside)."""
    if metric_columns(table)[0] is None:
        raise ValueError("the sweep has no validation column to choose a width on")
    best = marked_widths(table)["best"]  # the figures' "best" mark: the same choice
    return table.loc[table["width"] == best].iloc[0]


def sweep_rows(sweeps: dict[str, Path], widths: Sequence[int], digits: int = 1) -> list[list[str]]:
    """Per named sweep, its test (and, where it has one, validation) metric at ``widths``."""
    rows = []
    for name, path in sweeps.items():
        table = read_table(path)
        val, test = metric_columns(table)
        rows.append(
            [f"{name}: test", *map(lambda v: percent(v, digits), at_widths(table, test, widths))]
        )
        if val is not None:
            rows.append(
                [
                    f"{name}: validation",
                    *(percent(v, digits) for v in at_widths(table, val, widths)),
                ]
            )
    return rows


def accuracy_widths(path: Path, widths: Sequence[int], digits: int = 1) -> str:
    """One sweep's validation and test accuracy and parameters at ``widths``."""
    params = at_widths(read_table(path), "params", widths)
    rows = [*sweep_rows({"accuracy": path}, widths, digits), ["parameters", *map(count, params)]]
    return markdown(["width", *map(str, widths)], rows)


def full_width(table: pd.DataFrame) -> pd.Series:
    return table.loc[table["width"] == table["width"].max()].iloc[0]


def commit(run: dict) -> str:
    """``abc1234`` or ``abc1234 (dirty)``: a run's commit as its provenance records it."""
    return run["commit"][:7] + (" (dirty)" if run["dirty"] else "")


def hardware(run: dict) -> str:
    hardware = run["hardware"]
    return (f"{hardware['processor']}, {hardware['cpu_count']} cores, "
            f"{hardware['torch_threads']} threads")  # fmt: skip


def run_rows(run_file: Path) -> list[list[str]]:
    """A single run's provenance (its ``run.json``): commit, seed, hardware, threads, times."""
    run = json.loads(run_file.read_text())
    return [
        ["commit, seed", f"{commit(run)}, seed {run['seed']}"],
        ["hardware, torch threads", hardware(run)],
        ["training, sweep", f"{run['train_seconds'] / 60:.1f} min, "
                            f"{(run.get('sweep_seconds') or 0) / 60:.1f} min"],
    ]  # fmt: skip


def runs_cost(runs_file: Path, target: str) -> str:
    """What a make target cost: its runs, their training time, and its wall time (the time
    while at least one of its runs ran, from the starts and durations its ``*_runs.json``
    records)."""
    runs = json.loads(runs_file.read_text())
    starts = [datetime.fromisoformat(r["date"]) for r in runs]
    ends = [
        start + timedelta(seconds=r["train_seconds"] + (r.get("sweep_seconds") or 0))
        for start, r in zip(starts, runs, strict=True)
    ]
    threads = sorted({r["hardware"]["torch_threads"] for r in runs})
    # The time while any run ran: a target continued in a later session has a gap between.
    wall, busy_until = 0.0, None
    for start, end in sorted(zip(starts, ends, strict=True)):
        if busy_until is None or start > busy_until:
            wall, busy_until = wall + (end - start).total_seconds(), end
        elif end > busy_until:
            wall, busy_until = wall + (end - busy_until).total_seconds(), end
    commits: dict[str, int] = {}
    processors: dict[str, int] = {}  # a target continued in another session may change machine
    for r in runs:
        commits[commit(r)] = commits.get(commit(r), 0) + 1
        cpu = f"{r['hardware']['processor']} ({r['hardware']['cpu_capability']})"
        processors[cpu] = processors.get(cpu, 0) + 1
    rows = [
        ["runs", len(runs)],
        ["runs per commit", ", ".join(f"{c}: {n}" for c, n in commits.items())],
        ["runs per processor", ", ".join(f"{c}: {n}" for c, n in processors.items())],
        ["torch threads per run (per process)", ", ".join(map(str, threads))],
        ["training time, all runs", f"{sum(r['train_seconds'] for r in runs) / 60:.0f} min"],
        ["wall time while any run ran", f"{wall / 60:.0f} min"],
    ]
    return markdown([f"make {target}", f"value (`{runs_file.name}`)"], rows)


def mean_std(values: pd.Series) -> str:
    return percent_pm(values.mean(), values.std() if values.count() > 1 else None)


def percent_pm(mean: float, std: float | None) -> str:
    """An accuracy in % with its spread (none for a single seed)."""
    text = f"{100 * mean:.2f}"
    return text if std is None or pd.isna(std) else f"{text} ± {100 * std:.2f}"
