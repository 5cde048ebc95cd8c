"""Regenerate the tables of the README, the results notes and docs/ from the committed files:

    python scripts/render.py           # rewrite the marked tables in place (make render)
    python scripts/render.py --check   # exit 1, naming the files, when any table is stale

Tables are marked ``<!-- table: NAME -->`` ... ``<!-- /table -->``; NAME is one of
``structural_dropout.lab.reports.render.TABLES``.
"""

import sys
from pathlib import Path

from structural_dropout.lab.logs import one_line_errors
from structural_dropout.lab.reports.render import render_files

REPO = Path(__file__).resolve().parents[1]


def documents(repo: Path) -> list[Path]:
    # every note under results/ (a generated one, like compare/mnist_budget.md, has no marks)
    return [repo / "README.md", *sorted((repo / "results").rglob("*.md")),
            *sorted((repo / "docs").glob("*.md"))]  # fmt: skip


@one_line_errors
def main(check: bool) -> None:
    changed = render_files(documents(REPO), REPO / "results", write=not check)
    for path in changed:
        print(f"{'stale' if check else 'rendered'}: {path.relative_to(REPO)}")
    if check and changed:
        raise SystemExit("tables differ from the committed files: run `make render`")


if __name__ == "__main__":
    if sys.argv[1:] not in ([], ["--check"]):
        raise SystemExit(__doc__)
    main(check=sys.argv[1:] == ["--check"])
