"""Copy a multirun's finished jobs, without their checkpoints, to another folder:

    python scripts/keep_runs.py multirun/tune_lenet5 results/lenet5/tuning_jobs   # to commit
    python scripts/keep_runs.py results/lenet5/tuning_jobs multirun/tune_lenet5   # to resume

(``resume=auto`` then skips the copied jobs; see ``structural_dropout.lab.archive``.)
"""

import sys
from pathlib import Path

from structural_dropout.lab.archive import keep_finished_runs
from structural_dropout.lab.logs import one_line_errors


@one_line_errors
def main(source: Path, target: Path) -> None:
    kept = keep_finished_runs(source, target)
    print(f"{target}: {len(kept)} finished jobs copied from {source}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
