"""A multirun's record without its checkpoints: the small files of its finished jobs, to commit.

A tuning grid or a comparison takes hours on a CPU and may outlive the machine it runs on (its
``multirun/`` folder is not committed). Copying each finished job's record into ``results/``
keeps its scores and provenance with the repository, and copying it back into a fresh
``multirun/`` lets ``resume=auto`` skip the job there: a job with a ``run.json`` of the same
config counts as finished (``lab.run``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

# What a report or resume=auto reads, and the logs; never the checkpoint (megabytes each).
RECORD = (
    "run.json",
    "sweep.csv",
    "history.csv",
    "train.log",
    ".hydra/overrides.yaml",
    ".hydra/config.yaml",
)


def keep_finished_runs(source: str | Path, target: str | Path) -> list[Path]:
    """Copy the record files of every finished job under ``source`` (``<part>/<job>/`` or
    ``<job>/``: any folder with a ``run.json``, which a run writes last, after its sweep) to the
    same place under ``target``; unfinished jobs are left out. Returns the jobs copied, as paths
    under ``target``."""
    source, target = Path(source), Path(target)
    if not source.is_dir():
        raise FileNotFoundError(f"no multirun folder at {source}")
    kept = []
    for run_json in sorted(source.rglob("run.json")):
        job = run_json.parent
        for name in RECORD:
            if (job / name).is_file():
                copy = target / job.relative_to(source) / name
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(job / name, copy)
        kept.append(target / job.relative_to(source))
    return kept
