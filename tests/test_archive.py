"""A multirun's record kept without checkpoints, and a grid resumed from it on a fresh machine."""

import shutil

import pytest
from test_configs import compose_train

from structural_dropout.lab.archive import keep_finished_runs
from structural_dropout.lab.run import train_and_sweep


def test_kept_record_has_no_checkpoint_leaves_unfinished_jobs_out_and_resumes(
    tmp_path, fake_mnist
):
    config = compose_train(
        "profile=smoke", f"data_dir={fake_mnist}", "task.download=false", "resume=auto",
        "trainer.epochs=1",
    )  # fmt: skip
    grid = tmp_path / "multirun" / "part"
    first = train_and_sweep(config, grid / "0")
    (grid / "0" / ".hydra").mkdir()
    (grid / "0" / ".hydra" / "overrides.yaml").write_text("- seed=0\n")
    (grid / "1" / ".hydra").mkdir(parents=True)  # killed in training: a checkpoint, no run.json
    (grid / "1" / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    shutil.copy(grid / "0" / "checkpoint.pt", grid / "1" / "checkpoint.pt")
    assert (grid / "0" / "checkpoint.pt").is_file()

    kept = keep_finished_runs(tmp_path / "multirun", tmp_path / "results")
    assert kept == [tmp_path / "results" / "part" / "0"]
    files = {p.relative_to(kept[0]).as_posix() for p in kept[0].rglob("*") if p.is_file()}
    assert {"run.json", "sweep.csv", ".hydra/overrides.yaml"} <= files
    assert not any(name.endswith(".pt") for name in files)
    assert not (tmp_path / "results" / "part" / "1").exists()

    # Back into a fresh multirun folder: resume=auto counts the job as finished, trains nothing.
    keep_finished_runs(tmp_path / "results", tmp_path / "fresh")
    again = train_and_sweep(config, tmp_path / "fresh" / "part" / "0")
    assert again["history"] == first["history"]
    assert not (tmp_path / "fresh" / "part" / "0" / "checkpoint.pt").exists()

    with pytest.raises(FileNotFoundError, match="no multirun folder"):
        keep_finished_runs(tmp_path / "missing", tmp_path / "results")
