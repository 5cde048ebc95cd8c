"""Dropout Compaction's compacted size and validation score at other removal thresholds, from
finished runs' checkpoints (no retraining; see structural_dropout.lab.reports.compaction):

    python scripts/compaction_thresholds.py results/lenet5/compaction_thresholds.csv \\
        multirun/tune_lenet5/compaction/*/checkpoint.pt

Writes the CSV (one row per run and threshold) and ``<name>_runs.json`` (this command's
provenance and each checkpoint's run: its commit and date, from its run.json).
"""

import json
import sys
from pathlib import Path

import pandas as pd
import torch

from structural_dropout.io import atomic_write
from structural_dropout.lab.checkpoint import write_json
from structural_dropout.lab.logs import one_line_errors
from structural_dropout.lab.provenance import provenance, set_threads
from structural_dropout.lab.reports.compaction import threshold_rows

THRESHOLDS = (0.5, 0.4, 0.3, 0.2, 0.1)  # 0.5: the method's default, the one its runs used


@one_line_errors
def main(out_csv: Path, checkpoints: list[Path]) -> None:
    set_threads(1)  # the evaluation's sums in one fixed order
    rows, runs = [], []
    for path in checkpoints:
        summary = path.parent / "run.json"  # written last: the run finished
        if not summary.is_file():
            raise FileNotFoundError(f"{path}'s run has no run.json: not a finished run")
        info = json.loads(summary.read_text())
        runs.append({"checkpoint": str(path)} | {k: info[k] for k in ("commit", "dirty", "date")})
        rows += [{"run": path.parent.name} | row for row in threshold_rows(path, THRESHOLDS)]
        print(f"{path}: done", flush=True)
    table = pd.DataFrame(rows)
    atomic_write(out_csv, lambda tmp: table.to_csv(tmp, index=False))
    write_json(out_csv.with_name(f"{out_csv.stem}_runs.json"),
               {"provenance": provenance(torch.device("cpu")), "runs": runs})  # fmt: skip
    print(f"{out_csv}: {len(table)} rows of {len(checkpoints)} runs")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
