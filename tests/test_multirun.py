"""Multiruns through the joblib and submitit launchers, aggregated into one table."""

import json
import runpy

import pandas as pd
import pytest
import yaml

from conftest import REPO, multirun
from structural_dropout.lab.reports.aggregate import (
    collect_recipe_trials,
    collect_runs,
    runs_provenance,
)
from structural_dropout.lab.reports.plots import seed_bands


@pytest.mark.parametrize(
    "launcher, threads, seeds",
    [
        (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], 1, [0, 1]),  # 2 cores / 2 jobs
        # one process per job (each imports torch): two jobs show it as well as four
        (["hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=1"], 1, [0]),
    ],
)
def test_parallel_multirun_aggregates_into_one_table(
    tmp_path, fake_mnist, launcher, threads, seeds
):
    seed_values = ",".join(map(str, seeds))
    sweep_dir = multirun(tmp_path, fake_mnist, *launcher, "dropout.p=0,1", f"seed={seed_values}")
    table = collect_runs(sweep_dir)
    # every override is a column (constant ones too), then the sweep's own columns
    assert table.columns[0] == "run" and {"p", "seed", "profile", "download"} <= set(table.columns)
    assert list(table.columns[-4:]) == ["width", "params", "val_accuracy", "accuracy"]
    jobs = 2 * len(seeds)
    assert len(table) == jobs * 5  # runs x 5 smoke widths
    assert sorted(set(zip(table["p"], table["seed"], strict=True))) == sorted(
        (p, seed) for p in (0, 1) for seed in seeds
    )
    for run in sweep_dir.glob("*/run.json"):
        assert json.loads(run.read_text())["hardware"]["torch_threads"] == threads
    provenance = runs_provenance(sweep_dir)
    assert len(provenance) == jobs and all("commit" in r and "hardware" in r for r in provenance)
    figure = seed_bands(table, tmp_path / "seeds.png")
    assert figure.stat().st_size > 1000


def test_collect_runs_reports_unfinished_jobs(tmp_path):
    job = tmp_path / "0" / ".hydra"
    job.mkdir(parents=True)
    (job / "overrides.yaml").write_text("- seed=3\n")
    with pytest.raises(FileNotFoundError, match="no sweep.csv"):
        collect_runs(tmp_path)
    with pytest.raises(FileNotFoundError, match="no Hydra jobs"):
        collect_runs(tmp_path / "0")


def test_collect_runs_keeps_full_names_when_short_ones_clash(tmp_path):
    for i, overrides in enumerate(["- a.p=1\n- b.p=2\n", "- a.p=3\n- b.p=[4,5]\n"]):
        job = tmp_path / str(i)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(overrides)
        (job / "run.json").write_text(json.dumps({"seed": 0}))
        pd.DataFrame({"width": [1, 2], "params": [3, 4], "accuracy": [0.5, 0.6]}).to_csv(
            job / "sweep.csv", index=False
        )
    table = collect_runs(tmp_path)
    assert list(table.columns) == ["run", "a.p", "b.p", "seed", "width", "params", "accuracy"]
    assert table["b.p"].tolist() == [2, 2, "[4, 5]", "[4, 5]"]  # a list: one cell a row


def _trial(folder, overrides, psnr, seconds, teacher=None, seed=0, swept=None):
    """A finished LIIF trial job: its overrides, its grid's sweeper params (``swept``), run.json
    and sweep.csv."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    hydra = {"hydra": {"sweeper": {"params": swept or {"experiment": "liif"}}}}
    (folder / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    trainer = {"teacher": {"checkpoint": str(teacher) if teacher else None}}
    run = {"seed": seed, "train_seconds": seconds, "config": {"trainer": trainer}}
    (folder / "run.json").write_text(json.dumps(run))
    rows = [
        {"width": w, "params": w, "params_total": w + 1, "scale": s, "dataset": d, "psnr": psnr}
        for d in ("val", "Set5")
        for s in (2, 4)
        for w in (32, 256)
    ]
    pd.DataFrame(rows).to_csv(folder / "sweep.csv", index=False)


def test_recipe_trials_read_validation_and_count_the_teachers_training(tmp_path):
    teacher = tmp_path / "plain"
    teacher.mkdir()
    (teacher / "run.json").write_text(json.dumps({"train_seconds": 1000.0}))
    root = tmp_path / "recipes"
    _trial(root / "reference" / "0", ["experiment=liif", "seed=0"], 30.0, 50.0)
    _trial(root / "reference" / "1", ["experiment=liif", "seed=1"], 30.4, 52.0, seed=1)
    for job, init in enumerate(("false", "true")):
        overrides = ["experiment=liif", "rule=sandwich", f"trainer.teacher.init={init}"]
        _trial(root / "teacher" / str(job), overrides, 31.0 + job, 60.0, teacher / "x.pt")
    # a grid launched for one of its values: the swept key still names the trial
    finetune = ["experiment=liif", "optimizer.lr=0.0001", "model.hidden=[8,8]"]
    _trial(root / "finetune" / "0", finetune, 29.0, 60.0,
           swept={"experiment": "liif", "optimizer.lr": "2.0e-4,1.0e-4",
                  "model.hidden": "[8,8]"})  # fmt: skip
    table = collect_recipe_trials(root)
    assert set(table.loc[table["recipe"] == "finetune", "setting"]) == {"lr=0.0001"}
    table = table[table["recipe"] != "finetune"]
    assert len(table) == 4 * 4  # four runs x (2 scales x 2 widths) of the validation images
    reference = table[table["recipe"] == "reference"]
    assert set(reference["setting"]) == {""} and set(reference["seed"]) == {0, 1}  # seeds: a column
    teacher_rows = table[table["recipe"] == "teacher"]
    assert set(teacher_rows["setting"]) == {"init=False", "init=True"}  # only what varies
    assert (teacher_rows["teacher_seconds"] == 1000.0).all()
    assert (table.loc[table["recipe"] == "reference", "teacher_seconds"] == 0).all()
    assert table.groupby("setting")["psnr"].first().to_dict() == {
        "": 30.0,
        "init=False": 31.0,
        "init=True": 32.0,
    }
    (teacher / "run.json").unlink()
    with pytest.raises(FileNotFoundError, match="its cost cannot be counted"):
        collect_recipe_trials(root)


def test_recipe_table_of_several_sessions_keeps_the_trials_run_before(tmp_path, capsys):
    recipes = runpy.run_path(str(REPO / "scripts" / "recipes.py"))["main"]
    out = tmp_path / "results" / "recipes.csv"
    out.parent.mkdir()
    first, second = tmp_path / "first", tmp_path / "second"
    lrs = {"experiment": "liif", "optimizer.lr": "1.0e-4,5.0e-5"}
    _trial(first / "reference" / "0", ["experiment=liif"], 30.0, 50.0)
    _trial(first / "author" / "0", ["experiment=liif"], 29.0, 40.0)
    _trial(first / "finetune" / "a0", ["experiment=liif", "optimizer.lr=0.0001"], 27.0, 30.0,
           swept=lrs)  # fmt: skip
    recipes(first, out)
    _trial(second / "author" / "0", ["experiment=liif"], 28.0, 45.0)  # author rerun, later
    _trial(second / "matformer" / "0", ["experiment=liif"], 31.0, 70.0)
    # the recipe's other setting, launched later into its own job folder
    _trial(second / "finetune" / "c0", ["experiment=liif", "optimizer.lr=5e-05"], 26.0, 31.0,
           swept=lrs)  # fmt: skip
    recipes(second, out, keep_others=True)
    table = pd.read_csv(out).fillna({"setting": ""})
    assert table.groupby(["recipe", "setting"])["psnr"].first().to_dict() == {
        ("author", ""): 28.0,  # the newer trial replaces the older one
        ("finetune", "lr=0.0001"): 27.0,  # kept: the later session ran the other setting
        ("finetune", "lr=5e-05"): 26.0,
        ("matformer", ""): 31.0,
        ("reference", ""): 30.0,  # kept from the first session
    }
    runs = json.loads(out.with_name("recipes_runs.json").read_text())
    assert [r["run"] for r in runs] == ["author/0", "finetune/a0", "finetune/c0", "matformer/0",
                                        "reference/0"]  # fmt: skip
    assert {r["train_seconds"] for r in runs} == {45.0, 30.0, 31.0, 70.0, 50.0}
    assert set(table["run"]) == {r["run"] for r in runs}  # each row names its provenance
    clash = tmp_path / "clash"  # a later launch that reused a kept trial's job folder
    _trial(clash / "finetune" / "a0", ["experiment=liif", "optimizer.lr=5e-05"], 26.0, 31.0,
           swept=lrs)  # fmt: skip
    with pytest.raises(SystemExit):
        recipes(clash, out, keep_others=True)
    assert "job folders ['finetune/a0'] hold other trials" in capsys.readouterr().err
    recipes(second, out)  # without the flag: what the multirun holds, nothing else
    assert set(pd.read_csv(out)["recipe"]) == {"author", "finetune", "matformer"}
