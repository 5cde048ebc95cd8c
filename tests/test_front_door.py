"""What a new user meets first: errors that say what to do, in one line; logs; the library alone."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torchvision.datasets import MNIST

from conftest import CONFIGS, REPO
from experiments.mnist.data import load_split
from structural_dropout.lab.checkpoint import load_checkpoint, save_checkpoint
from structural_dropout.lab.logs import one_line_errors
from structural_dropout.lab.run import sweep_checkpoint, train_and_sweep


def compose_train(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})},
    )


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The entry point failed with exactly one line on stderr, ``error: ...``."""
    assert result.returncode == 1, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    return lines[0]


def test_offline_download_names_the_folder_and_leaves_nothing(tmp_path, monkeypatch):
    # A real torchvision download against a closed port on this machine: fails as offline does.
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])
    root = tmp_path / "data"
    with pytest.raises(FileNotFoundError) as caught:
        load_split(root, "train", download=True)
    message = str(caught.value)
    assert str(root / "MNIST" / "raw") in message
    assert "data_dir=" in message and "STRUCTURAL_DROPOUT_DATA" in message
    assert not root.exists()  # no empty data/MNIST/raw left behind


def test_missing_data_is_one_line_from_the_entry_point(tmp_path):
    line = one_error_line(
        run_cli(
            "scripts/train.py",
            "profile=smoke",
            f"data_dir={tmp_path}",
            "task.download=false",
            f"hydra.run.dir={tmp_path / 'run'}",
        )
    )
    assert str(tmp_path / "MNIST" / "raw") in line and "STRUCTURAL_DROPOUT_DATA" in line
    # the run's log says why it stopped, with the traceback the console was spared
    log = (tmp_path / "run" / "train.log").read_text()
    assert "MNIST train files not found" in log and "Traceback" in log


def one_line(capsys, action) -> str:
    """``action()`` run as the entry points run their work (``one_line_errors``): it must exit
    with status 1 and print exactly one line, which is returned."""
    with pytest.raises(SystemExit) as caught:
        one_line_errors(action)()
    assert caught.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_full_traceback_on_request(monkeypatch):
    def fail():
        raise ValueError("first line\nsecond line")

    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(ValueError, match="second line"):  # the exception itself, not one line
        one_line_errors(fail)()


def test_a_bad_knob_is_named_without_a_width(capsys, fake_mnist):
    config = smoke(fake_mnist, "dropout.lower_bound=0")
    line = one_line(capsys, lambda: instantiate(config.model))
    assert "lower_bound must be an int >= 1" in line and "layer width" not in line


def test_a_truncated_checkpoint_is_named(tmp_path, capsys):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, model={"w": torch.zeros(1000)}, config={"seed": 0})
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ValueError, match=f"{path} is not a readable checkpoint"):
        load_checkpoint(path)
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        config = compose(config_name="sweep", overrides=[f"checkpoint={path}"])
    line = one_line(capsys, lambda: sweep_checkpoint(path, config, tmp_path / "sweep"))
    assert f"{path} is not a readable checkpoint" in line


def smoke(fake_mnist, *overrides):
    return compose_train(
        "profile=smoke", f"data_dir={fake_mnist}", "task.download=false", *overrides
    )


def test_a_diverging_run_stops_and_says_so(tmp_path, fake_mnist, capsys):
    config = smoke(fake_mnist, "optimizer.lr=1e6", "trainer.epochs=6")
    message = one_line(capsys, lambda: train_and_sweep(config, tmp_path / "run"))
    assert "training diverged" in message and "trainer.divergence_factor" in message
    if (tmp_path / "run" / "checkpoint.pt").is_file():  # names the checkpoint only if it exists
        assert f"the last good checkpoint is {tmp_path / 'run' / 'checkpoint.pt'}" in message
    else:
        assert "no checkpoint was written yet" in message


def test_a_non_finite_loss_names_no_missing_checkpoint(tmp_path, fake_mnist):
    config = smoke(fake_mnist, "optimizer.lr=1e30")
    with pytest.raises(FloatingPointError, match="non-finite loss .*no checkpoint was written"):
        train_and_sweep(config, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_the_divergence_guard_can_be_turned_off(tmp_path, fake_mnist):
    config = smoke(fake_mnist, "optimizer.lr=3", "trainer.divergence_factor=null")
    config.sweep.enabled = False
    try:
        train_and_sweep(config, tmp_path / "run")
    except FloatingPointError as error:  # only non-finite losses may still stop it
        assert "non-finite" in str(error)


def test_mnist_recalibrates_batch_norm_per_width(tmp_path, fake_mnist):
    config = smoke(fake_mnist, "model.batch_norm=true", "sweep.recalibrate_bn=true")
    info = train_and_sweep(config, tmp_path / "run")
    assert info["full_width"]["accuracy"] > 0.3


def test_recalibration_without_batch_norm_is_refused_before_training(tmp_path, fake_mnist):
    config = smoke(fake_mnist, "sweep.recalibrate_bn=true")
    with pytest.raises(ValueError, match="no BatchNorm .*sweep.recalibrate_bn=false"):
        train_and_sweep(config, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_the_core_imports_without_the_lab_dependencies():
    """``import structural_dropout`` and its core work where Hydra, pandas, matplotlib and tqdm
    are not installed (simulated: importing them fails)."""
    script = textwrap.dedent(
        """
        import sys
        BLOCKED = ("hydra", "omegaconf", "pandas", "matplotlib", "tqdm")
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{name} is blocked")
        sys.meta_path.insert(0, Block())
        import torch
        import structural_dropout as sd
        from structural_dropout.baselines import compaction, pruning, unit_sorting
        model = sd.TruncatableMLP(6, [8, 8], 2, sd.DropoutSpec())
        dense = sd.export(model, 3)
        assert sum(p.numel() for p in dense.parameters()) == sd.count_params(model, 3)
        assert not [m for m in sys.modules if m.split(".")[0] in BLOCKED]
        try:
            import structural_dropout.lab.run
        except ImportError:
            print("lab needs its extras")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "lab needs its extras" in result.stdout


def test_the_package_holds_the_library_alone():
    """The wheel ships ``structural_dropout`` only, and the core depends on torch alone."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["packages"] == ["src/structural_dropout"]
    core = [d.split(">")[0].split("=")[0].strip() for d in project["project"]["dependencies"]]
    assert core == ["torch"]
    lab = " ".join(project["project"]["optional-dependencies"]["lab"])
    for name in ("hydra-core", "pandas", "matplotlib", "tqdm", "torchvision"):
        assert name in lab


def test_upscale_refuses_a_checkpoint_that_is_not_liif(tmp_path, fake_mnist):
    from experiments.liif.upscale import load_model

    config = smoke(fake_mnist, "sweep.enabled=false")
    train_and_sweep(config, tmp_path / "run")
    with pytest.raises(ValueError, match="holds a TruncatableMLP model, not LIIF"):
        load_model(tmp_path / "run" / "checkpoint.pt", torch.device("cpu"))
