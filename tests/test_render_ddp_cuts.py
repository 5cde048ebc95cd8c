"""The table of issue #20's measurement: each rank's cut the same or its own, paired by seed."""

import pandas as pd

from structural_dropout.lab.reports.render.mnist import DDP_CUT_WIDTHS, mnist_ddp_cuts


def _results(tmp_path, gap: float, val_gap: float = 0.0):
    """``per_rank`` is ``gap`` better than ``same`` at width 8 only (on validation: ``val_gap``,
    at width 16 only); each seed shifts both."""
    rows = [
        {"run": f"{cuts}_{seed}", "cuts": cuts, "seed": seed, "width": w, "params": 10 * w,
         "val_accuracy": 0.9 + (val_gap if cuts == "per_rank" and w == 16 else 0.0),
         "accuracy": 0.9 + 0.001 * seed + (gap if cuts == "per_rank" and w == 8 else 0.0)}
        for cuts in ("same", "per_rank")
        for seed in (1, 2, 3)
        for w in [*DDP_CUT_WIDTHS, 100]
    ]  # fmt: skip
    (tmp_path / "mnist").mkdir()
    pd.DataFrame(rows).to_csv(tmp_path / "mnist" / "ddp_cuts.csv", index=False)
    return tmp_path


def _gap_row(text: str, split: str = "test") -> list[str]:
    line = next(row for row in text.splitlines() if f"− `same`, points, {split}" in row)
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_each_mode_has_a_row_and_the_pairs_cancel_the_seed(tmp_path):
    text = mnist_ddp_cuts(_results(tmp_path, gap=0.02))
    assert "| `same` | 90.20 ± 0.10 |" in text  # mean and std over seeds 1-3 at width 8
    assert "| `per_rank` | 92.20 ± 0.10 |" in text
    cells = _gap_row(text)
    # width 8: +2 points exactly in every pair (SE 0): beyond twice its SE, bold; elsewhere 0
    assert cells[1] == "**+2.00 ± 0.00**"
    assert cells[2:6] == ["+0.00 ± 0.00"] * 4
    # over every width (6 of them): +2/6 points
    assert cells[6] == "**+0.33 ± 0.00**"
    assert cells[7] == "3"


def test_no_gap_is_not_bold(tmp_path):
    cells = _gap_row(mnist_ddp_cuts(_results(tmp_path, gap=0.0)))
    assert not any("**" in cell for cell in cells)


def test_the_validation_row_pairs_the_validation_column(tmp_path):
    text = mnist_ddp_cuts(_results(tmp_path, gap=0.0, val_gap=0.01))
    assert _gap_row(text, "validation")[1:3] == ["+0.00 ± 0.00", "**+1.00 ± 0.00**"]
    assert not any("**" in cell for cell in _gap_row(text, "test"))
