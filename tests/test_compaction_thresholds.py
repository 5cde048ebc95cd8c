"""Dropout Compaction's thresholds re-applied from a checkpoint agree with the run's own
compaction, and a lower threshold keeps more of the model."""

import json

import pandas as pd
import pytest
import torch

from conftest import run_script
from structural_dropout.lab.build import rebuild
from structural_dropout.lab.reports.compaction import threshold_rows


@pytest.fixture(scope="module")
def compaction_checkpoint(fake_mnist, tmp_path_factory):
    """A smoke LeNet-5 compaction run whose fc retentions are then set apart: half far below
    0.5, half above, so that a threshold has something to remove."""
    out = tmp_path_factory.mktemp("compaction")
    run_script("scripts/train.py", "experiment=lenet5", "profile=smoke", "method=compaction",
               f"data_dir={fake_mnist}", "task.download=false", f"hydra.run.dir={out}")  # fmt: skip
    path = out / "checkpoint.pt"
    state = torch.load(path, weights_only=False)
    key = next(k for k in state["model"] if k.startswith("fcs.0.gate.logit"))
    logit = state["model"][key]
    logit[: len(logit) // 2] = -3.0  # retention 0.047
    logit[len(logit) // 2 :] = torch.linspace(-0.5, 3.0, len(logit) - len(logit) // 2)
    torch.save(state, path)
    return path


def test_the_methods_threshold_gives_the_runs_own_compacted_model(compaction_checkpoint):
    rows = pd.DataFrame(threshold_rows(compaction_checkpoint, [0.5, 0.2, 0.01]))
    assert rows["threshold"].isna().tolist() == [True, False, False, False]  # the gated model
    _, run = rebuild(compaction_checkpoint, torch.device("cpu"))  # the run's own finalize
    prepared = run.task.prepare_eval(run.model, "val")
    at_half = rows[rows["threshold"] == 0.5].iloc[0]
    assert at_half["params"] == run.count(run.model)
    assert at_half["val_accuracy"] == run.task.evaluate(run.model.eval(), prepared)
    params = rows["params"].iloc[1:].tolist()
    assert params[0] < params[1] < params[2]  # lower thresholds keep more units
    assert rows["retained"].iloc[1:].tolist()[0] < rows["retained"].iloc[1:].tolist()[1]


def test_the_script_writes_rows_and_provenance(compaction_checkpoint, tmp_path):
    out = tmp_path / "thresholds.csv"
    run_script("scripts/compaction_thresholds.py", str(out), str(compaction_checkpoint))
    table = pd.read_csv(out)
    assert len(table) == 6 and table["run"].nunique() == 1  # the gated model and 5 thresholds
    runs = json.loads((tmp_path / "thresholds_runs.json").read_text())
    assert runs["runs"][0]["checkpoint"] == str(compaction_checkpoint)
    assert "commit" in runs["provenance"] and "hardware" in runs["provenance"]


def test_a_run_of_another_method_is_refused(fake_mnist, tmp_path):
    smoke = ["experiment=lenet5", "profile=smoke", f"data_dir={fake_mnist}", "task.download=false"]
    run_script("scripts/train.py", *smoke, "method=structural", f"hydra.run.dir={tmp_path}")
    with pytest.raises(ValueError, match="not a Dropout Compaction run"):
        threshold_rows(tmp_path / "checkpoint.pt", [0.5])
