"""Multiruns through the joblib and submitit launchers, aggregated into one table."""

import json

import pandas as pd
import pytest

from conftest import multirun
from structural_dropout.lab.reports.aggregate import collect_runs, runs_provenance
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
    for i, overrides in enumerate(["- a.p=1\n- b.p=2\n", "- a.p=3\n- b.p=4\n"]):
        job = tmp_path / str(i)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(overrides)
        (job / "run.json").write_text(json.dumps({"seed": 0}))
        pd.DataFrame({"width": [1, 2], "params": [3, 4], "accuracy": [0.5, 0.6]}).to_csv(
            job / "sweep.csv", index=False
        )
    table = collect_runs(tmp_path)
    assert list(table.columns) == ["run", "a.p", "b.p", "seed", "width", "params", "accuracy"]
    assert table["b.p"].tolist() == [2, 2, 4, 4]
