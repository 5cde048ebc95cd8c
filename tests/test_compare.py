"""The method comparison: every method composes, trains and sweeps; the table adds up."""

import json
import runpy

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from conftest import CONFIGS, REPO, experiments_in, multirun
from structural_dropout import TruncatableMLP, count_params, model_width
from structural_dropout.lab.reports.compare import (
    best_one_run,
    budget_table,
    headline,
    paired_gaps,
)

METHODS = [
    "none",
    "dropout",
    "sorted",
    "structural",
    "nested",
    "sandwich",
    "distilled",
    "independent",
    "compaction",
    "drop_pruning",
    "nested_distill",
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("experiment", experiments_in(CONFIGS))
def test_each_method_composes_and_builds(method, experiment):
    width = ["method.width=16"] if method == "independent" else []
    if experiment == "shakespeare" and method in ("nested", "nested_distill"):
        width.append("model.nest_heads=false")  # heads cannot be cut per sample (an error)
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        config = compose("train", [f"experiment={experiment}", f"method={method}", *width])
    assert config.method.name == method
    model = instantiate(config.model)
    if method == "independent":  # the architecture export gives at width 16, the rest as usual
        mlps = [m for m in model.modules() if isinstance(m, TruncatableMLP)]
        assert all(max(m.hidden) == 16 for m in mlps) and model_width(model) == 16
        assert count_params(model) == count_params(instantiate(compose_plain(experiment)), 16)
    training = config.method.get("training")
    assert (training is not None) == (method in ("compaction", "drop_pruning"))
    if training is not None and (experiment, method) == ("shakespeare", "compaction"):
        with pytest.raises(ValueError, match="CharGPT has no TruncatableMLP or TruncatableCNN"):
            instantiate(training).prepare(model)  # not a #19 baseline: a clear refusal
    elif training is not None:
        instantiate(training).prepare(model)  # gates / masks fit every experiment's layers
    spec = instantiate(config.dropout)
    sandwiches = ("sandwich", "distilled", "nested_distill")
    assert (config.trainer.rule is not None) == (method in sandwiches)
    assert spec.p == (1.0 if method in ("structural", "nested", *sandwiches) else 0.0)
    assert spec.per_sample == (method in ("nested", "nested_distill"))


def compose_plain(experiment):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", [f"experiment={experiment}", "method=none"]).model


def test_compare_smoke_runs_every_method(tmp_path, fake_mnist):
    one_run = multirun(
        tmp_path / "a",
        fake_mnist,
        "method=none,dropout,sorted,structural,nested,sandwich,distilled,compaction,drop_pruning,"
        "nested_distill",
    )
    independent = multirun(tmp_path / "b", fake_mnist, "method=independent", "method.width=1,65")
    out = tmp_path / "results" / "mnist"
    # scripts/compare.py's main, in this process (its imports cost a subprocess ~10 s)
    compare = runpy.run_path(str(REPO / "scripts" / "compare.py"))["main"]
    compare(out, [one_run, independent])

    table = pd.read_csv(out.with_suffix(".csv"))
    assert list(table.columns) == [
        "method", "setting", "seed", "width", "params", "val_accuracy", "accuracy", "train_runs",
        "train_seconds",
    ]  # fmt: skip
    assert (table["seed"] == 0).all() and table["val_accuracy"].between(0, 1).all()
    assert set(table["method"]) == set(METHODS)
    runs = table.groupby("method")["train_runs"].first()
    assert runs["independent"] == 2 and (runs.drop("independent") == 1).all()
    indep = table[table["method"] == "independent"].sort_values("width")
    assert indep["width"].tolist() == [1, 65]
    assert indep["setting"].tolist() == ["width=1", "width=65"]
    # independent: two runs, and every row carries the time of both
    seconds = [
        json.loads(p.read_text())["train_seconds"] for p in sorted(independent.glob("*/run.json"))
    ]
    assert indep["train_seconds"].iloc[0] == pytest.approx(sum(seconds), abs=0.1)
    # sorted is the plain model permuted: the same full-width accuracy, other truncated ones
    full = table[table["width"] == 256].set_index("method")["accuracy"]
    assert full["sorted"] == full["none"]
    # an independent model's parameter count is the one-run model's at that width
    at_65 = table[(table["width"] == 65)].set_index("method")["params"]
    assert at_65["independent"] == at_65["none"] == 784 * 65 + 65 + 65 * 65 + 65 + 65 * 10 + 10

    ordering = pd.read_csv(out.with_name("mnist_ordering.csv"))
    assert set(ordering["method"]) == set(METHODS) - {"independent"}
    # NaN where removing any one unit changes no test answer (tiny fake data); else in [-1, 1]
    assert ordering["spearman"].dropna().between(-1, 1).all()
    assert ordering["spearman"].notna().any()
    assert list(ordering.columns) == ["method", "seed", "layer", "spearman"]
    ordering.iloc[:1].to_csv(out.with_name("mnist_ordering.csv"), index=False)
    compare(out, [one_run, independent], keep_ordering=True)  # a rerun keeps the diagnostic
    assert len(pd.read_csv(out.with_name("mnist_ordering.csv"))) == 1
    for checkpoint in one_run.glob("*/checkpoint.pt"):  # records kept without checkpoints
        checkpoint.unlink()
    out.with_name("mnist_ordering.csv").unlink()
    compare(out, [one_run, independent], no_ordering=True)
    assert not out.with_name("mnist_ordering.csv").exists()
    assert len(pd.read_csv(out.with_suffix(".csv"))) == len(table)
    assert (out.with_suffix(".png")).stat().st_size > 1000
    assert "train_runs" in out.with_name("mnist_budget.md").read_text()


def test_budget_table_picks_on_validation_and_reports_test_over_seeds():
    accuracy = [0.1, 0.2, 0.9, 0.5, 0.4, 0.8]
    table = pd.DataFrame(
        {
            "method": ["none"] * 3 + ["a"] * 3,
            "setting": [""] * 3 + ["size=1", "size=2", "size=4"],  # a: one model per run
            "seed": 0,
            "width": [1, 2, 4] * 2,
            "params": [10, 20, 100] * 2,
            "val_accuracy": accuracy,
            "accuracy": accuracy,
            "train_runs": [1] * 3 + [3] * 3,
        }
    )
    budget = budget_table(table, fractions=(0.1, 0.25, 0.05)).set_index("method")
    assert budget.loc["a", "10% accuracy"] == 0.5 and budget.loc["a", "10% width"] == 1
    assert budget.loc["a", "10% params"] == 10  # the pick's own parameter count
    assert budget.loc["a", "25% accuracy"] == 0.5  # width 2 fits but is worse than width 1
    assert budget.loc["none", "25% accuracy"] == 0.2
    assert pd.isna(budget.loc["a", "5% accuracy"])  # nothing is that small
    assert budget.loc["a", "full width"] == 0.8 and budget.loc["a", "train_runs"] == 3
    # Chosen on validation: make width 2 of "a" the best on validation only.
    picked = table.assign(val_accuracy=[0.1, 0.2, 0.9, 0.5, 0.6, 0.8])
    budget = budget_table(picked, fractions=(0.25,)).set_index("method")
    assert budget.loc["a", "25% width"] == 2 and budget.loc["a", "25% accuracy"] == 0.4
    # Two seeds: the test accuracy is their mean, with its standard deviation.
    second = picked.assign(seed=1, accuracy=picked["accuracy"] + 0.02)
    budget = budget_table(pd.concat([picked, second]), fractions=(0.25,)).set_index("method")
    assert budget.loc["a", "25% accuracy"] == pytest.approx(0.41)
    assert budget.loc["a", "25% std"] == pytest.approx(0.02 / 2**0.5)
    assert budget.loc["a", "seeds"] == 2
    # A model per run whose size comes out differently per seed (a compacted one) is one model.
    third = second.assign(width=second["width"] + 2, params=second["params"] + 2)
    budget = budget_table(pd.concat([picked, third]), fractions=(0.25,)).set_index("method")
    assert budget.loc["a", "25% width"] == 3 and budget.loc["a", "seeds"] == 2  # widths 2, 4


def test_a_loss_is_chosen_lowest_on_validation():
    loss = [3.0, 2.0, 1.0, 2.5, 2.4, 1.2]
    table = pd.DataFrame(
        {"method": ["none"] * 3 + ["a"] * 3, "setting": "", "seed": 0, "width": [1, 2, 4] * 2,
         "params": [10, 20, 100] * 2, "val_loss": loss, "loss": loss, "train_runs": 1}
    )  # fmt: skip
    budget = budget_table(table, fractions=(0.25,)).set_index("method")
    assert budget.loc["a", "25% width"] == 2 and budget.loc["a", "25% loss"] == 2.4
    assert budget.loc["none", "25% loss"] == 2.0 and budget.loc["a", "full width"] == 1.2
    assert best_one_run(table, "none", min_width=1) == "none"  # mean loss 2.0 against 2.03
    with pytest.raises(ValueError, match="no val_loss column"):
        budget_table(table.drop(columns="val_loss"))


def test_paired_gaps_pair_by_seed_and_flag_only_clear_differences():
    rows = []
    for seed, (ours, ref) in enumerate([(0.90, 0.80), (0.70, 0.61), (0.50, 0.40)]):
        rows += [
            {"method": "ours", "seed": seed, "width": 8, "accuracy": ours},
            {"method": "ref", "seed": seed, "width": 8, "accuracy": ref},
            {"method": "ours", "seed": seed, "width": 16, "accuracy": 0.9 + 0.01 * (seed - 1)},
            {"method": "ref", "seed": seed, "width": 16, "accuracy": 0.9},
        ]
    gaps = paired_gaps(pd.DataFrame(rows), "ours", "ref").set_index("width")
    # Seeds vary by 0.4 but every pair differs by ~0.1: paired, the gap is clear.
    assert gaps.loc[8, "mean"] == pytest.approx(0.0967, abs=1e-4)
    assert gaps.loc[8, "se"] == pytest.approx(0.00333, abs=1e-4)
    assert gaps.loc[8, "significant"] and gaps.loc[8, "seeds"] == 3
    assert gaps.loc[16, "mean"] == pytest.approx(0) and not gaps.loc[16, "significant"]
    with pytest.raises(ValueError, match="'nope'"):
        paired_gaps(pd.DataFrame(rows), "nope", "ref")


def test_the_headline_picks_the_best_one_run_method_on_validation():
    rows = []
    for seed in (0, 1, 2):
        for width in (8, 16, 32):
            for method, runs, val, test in [
                ("a", 1, 0.90, 0.80),  # best on validation
                ("b", 1, 0.85, 0.95),  # best on test: must not be picked
                ("independent", 12, 0.9, 0.9 + 0.001 * seed),
                ("none", 1, 0.5, 0.5),
            ]:
                rows.append(
                    {"method": method, "seed": seed, "width": width, "train_runs": runs,
                     "val_accuracy": val if width >= 16 else float(method == "b"),
                     "accuracy": test}
                )  # fmt: skip
    table = pd.DataFrame(rows)
    assert best_one_run(table) == "a"  # width 8 (where b leads on validation) is not counted
    claims = headline(table).set_index(["reference", "width"])
    assert set(claims.index) == {("independent", 16), ("independent", 32), ("none", 32)}
    assert (claims["method"] == "a").all() and (claims["seeds"] == 3).all()
    assert claims.loc[("independent", 16), "mean"] == pytest.approx(-0.101)
    assert claims.loc[("none", 32), "mean"] == pytest.approx(0.3)
