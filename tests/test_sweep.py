"""The sweep's width list and the figure helpers."""

import copy
import logging

import pandas as pd
import pytest
import torch

from structural_dropout import (
    TruncatableMLP,
    count_params,
    export,
    recalibrated_norms,
    set_width,
)
from structural_dropout.lab.reports.plots import marked_widths, pareto_frontier, sweep_figures
from structural_dropout.lab.sweep import sweep, sweep_widths
from structural_dropout.spec import DropoutSpec


def test_sweep_widths():
    assert sweep_widths(None, 5) == [1, 2, 3, 4, 5]
    assert sweep_widths(None, 256, 64) == [1, 65, 129, 193, 256]  # full width always included
    assert sweep_widths([3, 1], 5) == [3, 1]
    with pytest.raises(ValueError, match="within 1..5"):
        sweep_widths([0, 6], 5)
    with pytest.raises(ValueError, match="step"):
        sweep_widths(None, 5, 0)


class CountingTask:
    """Records which splits the width-independent preparation ran for; val and test differ."""

    metric = "accuracy"

    def __init__(self):
        self.prepared = []
        self.x, self.y = torch.randn(50, 6), torch.randint(0, 3, (50,))
        self.val_x, self.val_y = torch.randn(40, 6), torch.randint(0, 3, (40,))

    def prepare_eval(self, model, split):
        self.prepared.append(split)
        return (self.val_x, self.val_y) if split == "val" else (self.x, self.y)

    def evaluate(self, model, prepared):
        x, y = prepared
        return (model(x).argmax(1) == y).float().mean().item()


def test_sweep_prepares_once_and_restores_full_width():
    model = TruncatableMLP(6, [8, 8], 3, DropoutSpec())
    task = CountingTask()
    rows = sweep(model, task, progress=False)
    assert task.prepared == ["val", "test"]  # each once, for all widths
    assert [r["width"] for r in rows] == list(range(1, 9))
    assert list(rows[0]) == ["width", "params", "val_accuracy", "accuracy"]
    task.prepared = []
    assert list(sweep(model, task, [2], val_split=None, progress=False)[0]) == [
        "width",
        "params",
        "accuracy",
    ]
    assert task.prepared == ["test"]
    assert all(b.dropout.eval_width is None for b in model.blocks)


def test_pareto_and_marked_widths(tmp_path):
    df = pd.DataFrame(
        {
            "width": [1, 2, 3, 4, 5, 6],
            "params": [1, 2, 3, 4, 5, 6],
            "accuracy": [0.1, 0.5, 0.4, 0.8, 0.9, 0.85],
        }
    )
    assert pareto_frontier(df, "accuracy")["width"].tolist() == [1, 2, 4, 5]
    # median of the scores is 0.65, lower quartile 0.425
    assert marked_widths(df, "accuracy") == {"best": 5, "median": 4, "lower quartile": 2}
    assert marked_widths(df) == marked_widths(df, "accuracy")  # no validation column: test
    # With a validation column the widths are chosen on it, whatever the test scores say.
    df["val_accuracy"] = [0.1, 0.2, 0.95, 0.3, 0.4, 0.5]
    assert marked_widths(df)["best"] == 3
    df.to_csv(tmp_path / "sweep.csv", index=False)
    paths = sweep_figures(tmp_path / "sweep.csv")
    assert [p.name for p in paths] == [
        "accuracy_vs_width.png",
        "params_vs_width.png",
        "accuracy_vs_params.png",
    ]


class CalibratedTask(CountingTask):
    """With a calibration split, for BatchNorm recalibration per width."""

    def __init__(self):
        super().__init__()
        self.calibration = torch.randn(64, 6)

    def prepare_eval(self, model, split):
        if split == "calibration":
            return self.calibration, None
        return (self.val_x, self.val_y) if split == "val" else (self.x, self.y)

    def evaluate(self, model, prepared):
        x, y = prepared
        out = model(x)
        return 0.0 if y is None else (out.argmax(1) == y).float().mean().item()


@pytest.mark.parametrize("batch_norm", [False, True])
def test_each_sweep_row_is_the_exported_model_at_that_width(batch_norm):
    """The sweep's metric at width w is what the plain width-w export scores on the same data
    (with BatchNorm recalibrated at w, as the sweep does): a sweep that never truncated, or that
    recalibrated at the wrong width, would not match."""
    torch.manual_seed(0)
    model = TruncatableMLP(6, [32, 32], 3, DropoutSpec(), batch_norm=batch_norm)
    model.train()
    for _ in range(20):  # give the BatchNorm statistics something to hold
        model(torch.randn(16, 6))
    task = CalibratedTask()
    widths = [1, 2, 5, 17, 32]
    rows = sweep(model, task, widths, progress=False, recalibrate_bn=batch_norm)
    metrics = [row["accuracy"] for row in rows]
    assert len(set(metrics)) > 1  # the widths do differ on this data
    for row, width in zip(rows, widths, strict=True):
        reference = copy.deepcopy(model).eval()
        set_width(reference, width)
        if batch_norm:
            with recalibrated_norms(reference, lambda r=reference: r(task.calibration)):
                dense = export(reference, width)
        else:
            dense = export(reference, width)
        with torch.no_grad():
            accuracy = (dense(task.x).argmax(1) == task.y).float().mean().item()
            val_accuracy = (dense(task.val_x).argmax(1) == task.val_y).float().mean().item()
        assert row["accuracy"] == accuracy and row["params"] == count_params(dense)
        assert row["val_accuracy"] == val_accuracy


def test_a_loop_without_a_terminal_logs_its_progress(caplog):
    from structural_dropout.lab.logs import progress_log

    logger = logging.getLogger("test.progress")
    with caplog.at_level(logging.INFO, logger="test.progress"):
        assert list(progress_log([5, 6, 7], "sweep", logger, every=0.0)) == [5, 6, 7]
    assert [m.split(" (")[0] for m in caplog.messages] == [
        "sweep: 1/3 done",
        "sweep: 2/3 done",
        "sweep: 3/3 done",
    ]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="test.progress"):
        list(progress_log([5, 6, 7], "sweep", logger, every=3600.0))
    assert [m.split(" (")[0] for m in caplog.messages] == ["sweep: 3/3 done"]  # the last only
