"""The comparison's tuning: trials scored on validation only, one choice per method."""

import json
import shutil

import pandas as pd
import pytest
import yaml

from conftest import REPO
from structural_dropout.lab.reports.tuning import SIZE_KNOBS, final_grids, tuning_table


def fake_job(folder, overrides: dict, widths, val, test, seconds=10.0, experiment="mnist",
             metric="accuracy"):  # fmt: skip
    (folder / ".hydra").mkdir(parents=True)
    overrides = {"experiment": experiment} | overrides if experiment else overrides
    lines = "".join(f"- {k}={v}\n" for k, v in overrides.items())
    (folder / ".hydra" / "overrides.yaml").write_text(lines)
    (folder / "run.json").write_text(json.dumps({"seed": 0, "train_seconds": seconds}))
    pd.DataFrame({"width": widths, "params": widths, f"val_{metric}": val, metric: test}).to_csv(
        folder / "sweep.csv", index=False
    )


def test_trials_are_scored_on_validation_from_width_16(tmp_path):
    root = tmp_path / "tune"
    widths = [8, 16, 256]
    # lower_bound=1 wins on validation at widths >= 16; lower_bound=8 wins on test and at
    # width 8, which the score leaves out.
    fake_job(root / "nested" / "0", {"method": "nested", "dropout.lower_bound": 1}, widths,
             [0.1, 0.9, 0.95], [0.1, 0.5, 0.5])  # fmt: skip
    fake_job(root / "nested" / "1", {"method": "nested", "dropout.lower_bound": 8}, widths,
             [0.99, 0.85, 0.94], [0.99, 0.99, 0.99])  # fmt: skip
    # a baseline: sparsity is its size, drop_back the knob; a trial spans every size
    for i, (sparsity, drop_back, val) in enumerate(
        [(0.5, 0.1, 0.9), (0.9, 0.1, 0.7), (0.5, 0.3, 0.8), (0.9, 0.3, 0.9)]
    ):
        overrides = {
            "method": "drop_pruning",
            "method.training.sparsity": sparsity,
            "method.training.drop_back": drop_back,
        }
        fake_job(root / "drop_pruning" / str(i), overrides, [256], [val], [1 - val], seconds=5)
    table = tuning_table(root).set_index(["method", "setting"])
    assert table.loc[("nested", "lower_bound=1"), "val_score"] == pytest.approx(0.925)
    assert table.loc[("nested", "lower_bound=8"), "val_score"] == pytest.approx(0.895)
    assert table.loc[("nested", "lower_bound=1"), "val_full"] == pytest.approx(0.95)
    chosen = table[table["chosen"]].index.tolist()
    assert chosen == [("drop_pruning", "drop_back=0.3"), ("nested", "lower_bound=1")]
    assert table.loc[("drop_pruning", "drop_back=0.3"), "runs"] == 2
    assert table.loc[("drop_pruning", "drop_back=0.3"), "train_seconds"] == 10.0


def test_a_loss_is_chosen_lowest(tmp_path):
    for job, (bound, val) in enumerate([(1, 1.6), (8, 1.5), (16, 1.7)]):
        knobs = {"method": "nested", "dropout.lower_bound": bound}
        fake_job(tmp_path / "nested" / str(job), knobs, [16, 64], [val, val], [0.0, 0.0],
                 experiment="shakespeare", metric="loss")  # fmt: skip
    table = tuning_table(tmp_path)
    assert table.loc[table["chosen"], "setting"].tolist() == ["lower_bound=8"]
    fake_job(tmp_path / "structural" / "0", {"method": "structural"}, [16], [0.5], [0.5],
             experiment="shakespeare")  # fmt: skip
    with pytest.raises(ValueError, match="mixes metrics"):
        tuning_table(tmp_path)


def test_a_folder_of_mixed_methods_is_refused(tmp_path):
    fake_job(tmp_path / "x" / "0", {"method": "nested"}, [16], [0.5], [0.5])
    fake_job(tmp_path / "x" / "1", {"method": "structural"}, [16], [0.5], [0.5])
    with pytest.raises(ValueError, match="one method"):
        tuning_table(tmp_path)


def test_a_root_of_one_experiment_only(tmp_path):
    fake_job(tmp_path / "a" / "0", {"method": "nested"}, [16], [0.5], [0.5], experiment=None)
    with pytest.raises(ValueError, match="one experiment"):
        tuning_table(tmp_path)
    shutil.rmtree(tmp_path / "a")
    fake_job(tmp_path / "a" / "0", {"method": "nested"}, [16], [0.5], [0.5], experiment="mnist")
    fake_job(tmp_path / "b" / "0", {"method": "sandwich"}, [16], [0.5], [0.5], experiment="lenet5")
    with pytest.raises(ValueError, match="mixes experiments"):
        tuning_table(tmp_path)


def test_final_grids_are_named_and_built_for_their_experiment(tmp_path):
    fake_job(
        tmp_path / "nested" / "0", {"method": "nested"}, [16], [0.5], [0.5], experiment="lenet5"
    )
    text = final_grids(tuning_table(tmp_path), "results/lenet5/tuning.csv")[
        "compare_lenet5_nested.yaml"
    ]
    assert yaml.safe_load(text)["hydra"]["sweeper"]["params"]["experiment"] == "lenet5"
    assert "make tune-lenet5 (results/lenet5/tuning.csv)" in text


def test_final_grids_carry_each_methods_choice_and_every_size(tmp_path):
    root = tmp_path / "tune"
    for i, lower_bound in enumerate([1, 8]):
        fake_job(root / "nested" / str(i), {"method": "nested", "dropout.lower_bound": lower_bound},
                 [16], [0.5 + 0.1 * i], [0.5])  # fmt: skip
    for i, (sparsity, drop_back, val) in enumerate([(0.5, 0.1, 0.9), (0.9, 0.3, 0.95)]):
        overrides = {
            "method": "drop_pruning",
            "method.training.sparsity": sparsity,
            "method.training.drop_back": drop_back,
        }
        fake_job(root / "drop_pruning" / str(i), overrides, [256], [val], [val])
    table = tuning_table(root)
    csv = tmp_path / "tuning.csv"
    table.to_csv(csv, index=False)
    grids = final_grids(pd.read_csv(csv))  # as scripts/tune.py and the tests read it back
    params = {
        name: yaml.safe_load(text)["hydra"]["sweeper"]["params"] for name, text in grids.items()
    }
    assert params["compare_mnist_nested.yaml"]["dropout.lower_bound"] == 8
    assert params["compare_mnist_nested.yaml"]["seed"] == "1,2,3"
    pruning = params["compare_mnist_drop_pruning.yaml"]
    assert pruning["method.training.drop_back"] == 0.3 and pruning["method"] == "drop_pruning"
    assert pruning["method.training.sparsity"] == "0.9"  # the chosen trial's sizes


def test_a_second_folder_of_a_method_keeps_its_constant_knob(tmp_path):
    """LeNet-5's drop_pruning_global holds scope=global constant: its trials must say so, and
    the final grid, when one of them wins, must run it."""
    parts = [("drop_pruning", None, 0.9), ("drop_pruning_global", "global", 0.95)]
    for folder, scope, val in parts:
        for i, sparsity in enumerate([0.5, 0.9]):
            overrides = {"method": "drop_pruning", "method.training.sparsity": sparsity,
                         "method.training.drop_back": 0.3}  # fmt: skip
            if scope:
                overrides["method.training.scope"] = scope
            fake_job(tmp_path / folder / str(i), overrides, [256], [val], [val])
    table = tuning_table(tmp_path)
    assert table["setting"].tolist() == ["drop_back=0.3", "drop_back=0.3,scope=global"]
    assert table["chosen"].tolist() == [False, True]
    params = yaml.safe_load(final_grids(table)["compare_mnist_drop_pruning.yaml"])["hydra"][
        "sweeper"
    ]["params"]
    assert params["method.training.scope"] == "global"
    assert params["method.training.sparsity"] == "0.5,0.9"


def test_the_final_grids_are_the_committed_tunings_choices():
    """configs/grid/compare_mnist_<method>.yaml hold what results/compare/tuning.csv chose:
    edit one by hand, or retune without rewriting them, and this fails."""
    grids = final_grids(pd.read_csv(REPO / "results" / "compare" / "tuning.csv"))
    assert len(grids) == 8  # every tuned method
    for name, text in grids.items():
        assert (REPO / "configs" / "grid" / name).read_text() == text, name


def test_the_lenet5_grids_and_best_method_are_the_committed_tunings_choices():
    """configs/grid/compare_lenet5_<method>.yaml hold what results/lenet5/tuning.csv chose, and
    the Makefile's LENET5_BEST is its best one-run method on validation (issue #18 compares
    that one, the paper's rule and plain training)."""
    table = pd.read_csv(REPO / "results" / "lenet5" / "tuning.csv")
    grids = final_grids(table, "results/lenet5/tuning.csv")
    assert len(grids) == table["method"].nunique() == 8
    for name, text in grids.items():
        assert (REPO / "configs" / "grid" / name).read_text() == text, name
    one_run = table[~table["method"].isin(SIZE_KNOBS)]
    best = one_run.loc[one_run["val_score"].idxmax(), "method"]
    assert f"\nLENET5_BEST := {best}\n" in (REPO / "Makefile").read_text()


def test_a_constant_setting_the_method_needs_is_carried_to_its_final_grid(tmp_path):
    """A grid may hold a setting constant that its method needs (MatFormer's granularities, a
    model switch): it is part of the trial's setting, and the final grid runs it, a list as one
    override."""
    for i, lower_bound in enumerate([1, 16]):
        overrides = {"method": "matformer", "dropout.lower_bound": lower_bound,
                     "trainer.rule.fixed": "[64,128,256]", "model.nest_heads": "false"}  # fmt: skip
        fake_job(tmp_path / "matformer" / str(i), overrides, [256], [1.5 - i], [1.5],
                 experiment="shakespeare", metric="loss")  # fmt: skip
    table = tuning_table(tmp_path)
    chosen = table[table["chosen"]].iloc[0]
    assert "nest_heads=False" in chosen["setting"] and "fixed=[64, 128, 256]" in chosen["setting"]
    assert "trainer.rule.fixed=[64,128,256]" in chosen["overrides"].split()
    params = yaml.safe_load(final_grids(table)["compare_shakespeare_matformer.yaml"])["hydra"][
        "sweeper"
    ]["params"]
    assert params["trainer.rule.fixed"] == "[64,128,256]"
    assert params["model.nest_heads"] is False
    assert params["dropout.lower_bound"] == 16


def test_final_grids_run_as_many_jobs_side_by_side_as_asked(tmp_path):
    """The GPT's comparison runs one 2-thread job at a time (scripts/tune.py --jobs 1); the
    other experiments two 1-thread jobs."""
    fake_job(tmp_path / "none" / "0", {"method": "none"}, [16], [1.5], [1.5],
             experiment="shakespeare", metric="loss")  # fmt: skip
    table = tuning_table(tmp_path)
    for n_jobs in (1, 2):
        text = final_grids(table, n_jobs=n_jobs)["compare_shakespeare_none.yaml"]
        assert yaml.safe_load(text)["hydra"]["launcher"]["n_jobs"] == n_jobs
    assert yaml.safe_load(final_grids(table)["compare_shakespeare_none.yaml"])["hydra"][
        "launcher"
    ]["n_jobs"] == 2


def test_plain_training_is_chosen_on_its_full_width(tmp_path):
    """Plain training is the full-width reference: its learning rate is picked on the full
    width's validation loss, not on its (meaningless) truncations; other methods on the mean."""
    for method in ("none", "structural"):
        for i, (lr, narrow, full) in enumerate([(0.001, 2.0, 1.5), (0.002, 3.0, 1.4)]):
            fake_job(tmp_path / method / str(i), {"method": method, "optimizer.lr": lr},
                     [16, 512], [narrow, full], [narrow, full],
                     experiment="shakespeare", metric="loss")  # fmt: skip
    table = tuning_table(tmp_path).set_index(["method", "setting"])
    assert table.loc[("none", "lr=0.002"), "chosen"]  # full width 1.4 < 1.5
    assert table.loc[("structural", "lr=0.001"), "chosen"]  # mean 1.75 < 2.2


def test_the_gpt_grids_are_the_committed_tunings_choices():
    """configs/grid/compare_shakespeare_<method>.yaml hold what results/shakespeare/tuning.csv
    chose (one job at a time), and the hand-written independent part trains at plain training's
    chosen setting: retune plain training without editing it, and this fails."""
    table = pd.read_csv(REPO / "results" / "shakespeare" / "tuning.csv")
    grids = final_grids(table, "results/shakespeare/tuning.csv", n_jobs=1)
    assert len(grids) == table["method"].nunique() == 4
    for name, text in grids.items():
        assert (REPO / "configs" / "grid" / name).read_text() == text, name
    plain = yaml.safe_load(grids["compare_shakespeare_none.yaml"])["hydra"]["sweeper"]["params"]
    grid = REPO / "configs" / "grid" / "compare_shakespeare_independent.yaml"
    independent = yaml.safe_load(grid.read_text())["hydra"]["sweeper"]["params"]
    assert independent["method"] == "independent"
    shared = {k: v for k, v in plain.items() if k not in {"method", "seed"}}
    assert {k: independent[k] for k in shared} == shared
    assert independent["seed"] == plain["seed"]
