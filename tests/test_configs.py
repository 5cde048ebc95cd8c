"""The real YAML configs compose, build, and run end to end when shrunk (profile=smoke)."""

import itertools
import json
import re
import shutil

import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from test_pointnet import make_dataset

from conftest import CONFIGS, experiments_in, multirun, run_script
from structural_dropout import (
    Sandwich,
    TruncatableLinear,
    TruncatableMLP,
    count_params,
    load_export,
    model_width,
)
from structural_dropout.lab.build import build_run
from structural_dropout.lab.checkpoint import load_checkpoint
from structural_dropout.lab.run import export_checkpoint, sweep_checkpoint, train_and_sweep

EXPERIMENTS = experiments_in(CONFIGS)
DROPOUTS = ["structural", "log_uniform", "none", "standard"]
RULES = sorted(p.stem for p in (CONFIGS / "rule").glob("*.yaml"))
PROFILES = ["smoke", "cpu", "paper"]


def compose_train(*overrides: str, config_dir=CONFIGS):
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def check_builds(config, dropout: str) -> None:
    """The properties every experiment's config must have, whatever its model."""
    assert config.trainer.epochs >= 1
    model = instantiate(config.model)
    block = next(m for m in model.modules() if isinstance(m, TruncatableLinear))
    assert block.dropout.p == {"none": 0.0, "standard": 0.0}.get(dropout, 1.0)
    assert (block.standard is not None) == (dropout == "standard")
    assert config.trainer.rule is None
    instantiate(config.optimizer)(model.parameters())


def test_a_new_experiment_of_yaml_files_only_is_picked_up(tmp_path):
    """Adding configs/experiment/<name>.yaml and its three profiles is all the config tests
    need: the new experiment is found and composes with every dropout."""
    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS, configs)
    (configs / "experiment" / "toy.yaml").write_text(
        "# @package _global_\ndefaults:\n  - mnist\n  - _self_\nmodel:\n  hidden: [32]\n"
    )
    (configs / "experiment_profile" / "toy").mkdir()
    for profile, epochs in (("smoke", 1), ("cpu", 2), ("paper", 3)):
        (configs / "experiment_profile" / "toy" / f"{profile}.yaml").write_text(
            f"# @package _global_\ntrainer:\n  epochs: {epochs}\n"
        )
    assert experiments_in(configs) == sorted([*EXPERIMENTS, "toy"])
    for dropout in DROPOUTS:
        config = compose_train("experiment=toy", f"dropout={dropout}", config_dir=configs)
        check_builds(config, dropout)
        assert list(config.model.hidden) == [32]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
@pytest.mark.parametrize("dropout", DROPOUTS)
@pytest.mark.parametrize("profile", PROFILES)
def test_every_config_composes_and_builds(experiment, dropout, profile):
    config = compose_train(
        f"experiment={experiment}", f"dropout={dropout}", f"profile={profile}", "rule=one_cut"
    )
    check_builds(config, dropout)


@pytest.mark.parametrize("rule", RULES)
def test_each_rule_is_the_trainers_setting(rule):
    config = compose_train(f"rule={rule}")
    built = instantiate(config.trainer.rule)
    assert (built is None) == (rule == "one_cut")
    if built is not None:
        assert isinstance(built, Sandwich) and built.distill == (rule == "sandwich_distill")
        assert (built.teacher > 0) == built.teach_full == (rule == "sandwich_teacher")
    assert "sandwich" not in config.dropout  # the layers' knobs hold no rule


def test_matformer_trains_its_granularities_every_step_and_asks_for_them():
    config = compose_train(
        "experiment=shakespeare", "method=matformer", "trainer.rule.fixed=[64,128,256]"
    )
    rule = instantiate(config.trainer.rule)
    assert isinstance(rule, Sandwich) and rule.fixed == (64, 128, 256)
    assert rule.full and rule.random == 0 and not rule.smallest and rule.widths == 4
    with pytest.raises(Exception, match="trainer.rule.fixed"):  # no granularities: named
        instantiate(compose_train("experiment=shakespeare", "method=matformer").trainer.rule)


def test_mnist_model_matches_the_paper():
    model = instantiate(compose_train("experiment=mnist").model)
    assert isinstance(model, TruncatableMLP)
    assert (model.in_features, model.hidden, model.out_features) == (784, [256, 256], 10)
    assert model_width(model) == 256
    assert count_params(model) == 784 * 256 + 256 + 256 * 256 + 256 + 2570


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_profiles_set_epochs(experiment):
    epochs = {
        p: compose_train(f"experiment={experiment}", f"profile={p}").trainer.epochs
        for p in PROFILES
    }
    assert epochs["smoke"] < epochs["cpu"] < epochs["paper"]


def test_pointnet_configs_follow_the_paper():
    config = compose_train("experiment=pointnet")
    assert list(config.model.truncate) == ["head", "input_tnet", "feature_tnet"]
    assert config.task.dataset == "ModelNet10" and config.model.num_classes == 10
    config = compose_train("experiment=pointnet_modelnet40", "profile=cpu")
    assert config.task.source == "off" and config.model.num_classes == 40
    assert (
        config.task.num_points
        == compose_train("experiment=pointnet", "profile=cpu").task.num_points
    )


def test_smoke_train_and_sweep_writes_results(tmp_path, fake_mnist):
    results = tmp_path / "results"
    config = compose_train(
        "profile=smoke",
        f"data_dir={fake_mnist}",
        "task.download=false",
        f"results_dir={results}",
        "sweep.figures=true",
    )
    info = train_and_sweep(config, tmp_path / "run")
    df = pd.read_csv(results / "sweep.csv")
    assert list(df.columns) == ["width", "params", "val_accuracy", "accuracy"]
    assert df["width"].tolist() == [1, 65, 129, 193, 256]
    # the sweep's validation column is what training's last validation measured on the val split
    last = info["history"][-1]
    assert df.set_index("width").loc[256, "val_accuracy"] == last["val_accuracy@full"]
    assert df["params"].is_monotonic_increasing
    run = json.loads((results / "run.json").read_text())
    for key in ("config", "commit", "seed", "torch", "hardware", "train_seconds", "sweep_seconds"):
        assert key in run
    assert run["config"]["model"]["hidden"] == [256, 256]
    for name in ("accuracy_vs_width", "params_vs_width", "accuracy_vs_params"):
        assert (results / f"{name}.png").stat().st_size > 1000
    assert info["full_width"]["accuracy"] > 0.5  # the fake classes are easy; training did learn

    # The checkpoint alone rebuilds the model: sweeping it (with the sweep settings of its own
    # run, step 64, since none are given) gives the same table.
    sweep_config = compose_sweep(
        f"checkpoint={tmp_path / 'run' / 'checkpoint.pt'}", "progress=false"
    )
    sweep_checkpoint(sweep_config.checkpoint, sweep_config, tmp_path / "resweep")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "resweep" / "sweep.csv"), df)

    # Width 65 exported from the checkpoint alone scores what the sweep measured there.
    out = tmp_path / "export"
    printed = run_script(
        "scripts/export.py",
        f"checkpoint={tmp_path / 'run' / 'checkpoint.pt'}",
        "width=65",
        f"out={out}",
    ).stdout
    summary = json.loads((out / "export.json").read_text())
    assert summary["params"] == df.set_index("width").params[65]
    assert f"{summary['params']:,} params" in printed
    assert max(summary["max_abs_diff"].values()) <= 1e-5
    task = instantiate(config.task)
    task.setup(torch.device("cpu"))
    x, y = task.splits["test"]
    with torch.no_grad():
        accuracy = (load_export(out)(x).argmax(1) == y).float().mean().item()
    assert accuracy == pytest.approx(df.set_index("width").accuracy[65], abs=1e-6)


def test_lenet5_smoke_trains_sweeps_and_exports_the_width_it_swept(tmp_path, fake_mnist):
    config = compose_train(
        "experiment=lenet5", "profile=smoke", f"data_dir={fake_mnist}", "task.download=false"
    )
    info = train_and_sweep(config, tmp_path / "run")
    df = pd.read_csv(tmp_path / "run" / "sweep.csv").set_index("width")
    assert df.index.tolist() == [1, 126, 251, 376, 500]  # the axis: 500, the widest layer
    assert df.loc[500, "params"] == 431_080 and df["params"].is_monotonic_increasing
    assert info["full_width"]["accuracy"] > 0.5  # the fake classes are easy; training did learn
    out = tmp_path / "export"
    summary = export_checkpoint(tmp_path / "run" / "checkpoint.pt", 126, out, onnx=True)
    assert summary["params"] == df.loc[126, "params"]
    # the ONNX file beside: checked at the example's batch and at twice it, on the trained model
    assert (out / "model.onnx").is_file() and summary["files"]["onnx"]["bytes"] > 0
    assert max(summary["max_abs_diff"].values()) <= 1e-4
    assert set(summary["max_abs_diff"]) == {"exported", "reloaded", "program", "onnx",
                                            "onnx_batch_x2"}  # fmt: skip
    task = instantiate(config.task)
    task.setup(torch.device("cpu"))
    x, y = task.splits["test"]
    with torch.no_grad():
        accuracy = (load_export(out)(x).argmax(1) == y).float().mean().item()
    assert accuracy == pytest.approx(df.loc[126, "accuracy"], abs=1e-6)


def compose_sweep(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="sweep", overrides=list(overrides))


def test_missing_dataset_without_download_names_the_path(tmp_path):
    config = compose_train("profile=smoke", f"data_dir={tmp_path}", "task.download=false")
    task = instantiate(config.task)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "MNIST" / "raw")):
        task.setup("cpu")


def test_multirun_with_two_values(tmp_path, fake_mnist):
    # progress=true, but stderr is no terminal here: no bar, no wall of carriage returns
    sweep_dir = multirun(tmp_path, fake_mnist, "dropout.p=0,1", "progress=true")
    runs = sorted(sweep_dir.glob("*/run.json"))
    assert len(runs) == 2
    ps = sorted(json.loads(r.read_text())["config"]["dropout"]["p"] for r in runs)
    assert ps == [0.0, 1.0]
    for run in runs:
        assert len(pd.read_csv(run.parent / "sweep.csv")) == 5
        # Hydra's per-job log holds the epochs, the validation and the sweep summary
        log = (run.parent / "train.log").read_text()
        assert "epoch=1 " in log and "val_accuracy@full=" in log and "swept 5 rows" in log
        assert "\r" not in log


@pytest.mark.parametrize(
    "experiment, folder, suffix, classes",
    [
        ("pointnet", "ModelNet10_pcd1024", ".pcd", 10),
        ("pointnet_modelnet40", "ModelNet40", ".off", 40),
    ],
)
def test_pointnet_smoke_train_and_sweep(tmp_path, experiment, folder, suffix, classes):
    make_dataset(tmp_path / "data" / folder, suffix, classes=classes, per_split=(2, 1))
    config = compose_train(
        f"experiment={experiment}",
        "profile=smoke",
        f"data_dir={tmp_path / 'data'}",
        f"cache_dir={tmp_path / 'cache'}",
        "task.download=false",
        "task.cache_points=80",
        "task.calibration_size=16",
        "sweep.recalibrate_bn=true",
    )
    train_and_sweep(config, tmp_path / "run")
    df = pd.read_csv(tmp_path / "run" / "sweep.csv")
    assert list(df.columns) == ["width", "params", "val_accuracy", "accuracy"]
    assert df["width"].tolist() == [1, 129, 257, 385, 512]
    assert df["params"].iloc[-1] == 3_468_051 + 30 * 257 * (classes == 40)
    assert (tmp_path / "run" / "checkpoint.pt").exists()

    # Exported with BatchNorm recalibrated at its width, as the sweep measured it.
    summary = export_checkpoint(tmp_path / "run" / "checkpoint.pt", 129, tmp_path / "export")
    assert summary["recalibrated_bn"] and max(summary["max_abs_diff"].values()) <= 1e-5
    task = instantiate(config.task)
    task.setup(torch.device("cpu"))
    x, y = task.splits["test"]
    with torch.no_grad():
        accuracy = (load_export(tmp_path / "export")(x).argmax(1) == y).float().mean().item()
    assert accuracy == pytest.approx(df.set_index("width").accuracy[129], abs=1e-6)


@pytest.mark.parametrize("method", ["distilled", "nested_distill"])
def test_pointnet_trains_with_the_distilled_methods(tmp_path, method):
    make_dataset(tmp_path / "data" / "ModelNet10_pcd1024", ".pcd", per_split=(2, 1))
    config = compose_train(
        "experiment=pointnet",
        "profile=smoke",
        f"method={method}",
        f"data_dir={tmp_path / 'data'}",
        f"cache_dir={tmp_path / 'cache'}",
        "task.download=false",
        "task.cache_points=80",
        "task.calibration_size=16",
    )
    info = train_and_sweep(config, tmp_path / "run")
    assert 0 <= info["full_width"]["accuracy"] <= 1


def test_sandwich_config_reaches_the_training_loop(tmp_path, fake_mnist):
    """A sandwich that trains only the full width must train exactly as a plain model does."""
    smoke = (
        "profile=smoke",
        f"data_dir={fake_mnist}",
        "task.download=false",
        "sweep.enabled=false",
    )
    states = {}
    for name, dropout in [
        ("plain", ["dropout=none"]),
        ("full_only", ["rule=sandwich", "trainer.rule.random=0"]),
        ("sandwich", ["rule=sandwich"]),
    ]:
        train_and_sweep(compose_train(*smoke, *dropout), tmp_path / name)
        states[name] = load_checkpoint(tmp_path / name / "checkpoint.pt")["model"]
    for key, value in states["plain"].items():
        assert torch.equal(value, states["full_only"][key]), key
    assert not torch.equal(states["plain"]["head.weight"], states["sandwich"]["head.weight"])


def test_a_frozen_teacher_is_built_from_its_checkpoint_and_needed_only_to_train(
    tmp_path, fake_mnist
):
    smoke = ("profile=smoke", f"data_dir={fake_mnist}", "task.download=false")
    train_and_sweep(compose_train(*smoke, "dropout=none", "sweep.enabled=false"), tmp_path / "t")
    teacher = tmp_path / "t" / "checkpoint.pt"
    student = [*smoke, "rule=sandwich", "trainer.rule.teacher=1.0"]
    config = compose_train(
        *student, f"trainer.teacher.checkpoint={teacher}", "trainer.teacher.init=true"
    )
    run = build_run(config, torch.device("cpu"))
    frozen = run.settings.teacher
    assert not frozen.training and not any(p.requires_grad for p in frozen.parameters())
    for key, value in load_checkpoint(teacher)["model"].items():  # init: the teacher's weights
        assert torch.equal(run.model.state_dict()[key], value), key
    train_and_sweep(config, tmp_path / "s")
    teacher.unlink()  # a sweep of the student no longer needs the teacher
    sweep_config = compose_sweep(f"checkpoint={tmp_path / 's' / 'checkpoint.pt'}")
    sweep_checkpoint(sweep_config.checkpoint, sweep_config, tmp_path / "resweep")
    assert (tmp_path / "resweep" / "sweep.csv").is_file()
    with pytest.raises(ValueError, match="needs trainer.teacher.checkpoint"):
        build_run(compose_train(*student), torch.device("cpu"))
    with pytest.raises(ValueError, match="no rule learns from it"):
        build_run(
            compose_train(*smoke, f"trainer.teacher.checkpoint={teacher}"), torch.device("cpu")
        )


@pytest.mark.parametrize("grid", sorted(p.stem for p in (CONFIGS / "grid").glob("*.yaml")))
def test_every_grid_composes_every_job(grid):
    """Each job of a multirun grid (the Cartesian product of its sweeper params) composes."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        config = compose("train", [f"grid={grid}"], return_hydra_config=True)
    params = {key: str(value) for key, value in config.hydra.sweeper.params.items()}
    assert params
    parser = OverridesParser.create()  # as Hydra's sweeper reads them: ranges, lists as values
    overrides = [parser.parse_override(f"{key}={raw}") for key, raw in params.items()]
    values = [
        [
            f"{o.key_or_group}={v}"
            for v in (
                o.sweep_string_iterator()
                if o.is_sweep_override()
                else [o.get_value_element_as_str()]
            )
        ]
        for o in overrides
    ]
    jobs = list(itertools.product(*values))
    for job in jobs:
        job_config = compose_train(f"grid={grid}", *job)
        chosen = dict(o.split("=", 1) for o in job)
        if "method" in params:  # a part may rename its runs (the GPT's equal-compute ones)
            assert job_config.method.name == chosen.get("method.name", chosen["method"])
        instantiate(job_config.model)
        comparison = re.match(r"(compare|tune)_(mnist|lenet5|shakespeare)_", grid)
        if comparison:  # every part of a comparison: the same recipe
            epochs = {"mnist": 60, "lenet5": 20, "shakespeare": 6}[comparison[2]]
            assert job_config.trainer.epochs == epochs and job_config.resume == "auto"
            assert job_config.model._target_.endswith("CNN") == (comparison[2] == "lenet5")
            if comparison[2] == "shakespeare":  # the feed-forward axis only, as MatFormer's
                assert job_config.model.nest_heads is False
            assert job_config.sweep.val_split == "val"  # choices read validation
            # tuned on seed 0, compared on others: the final numbers are not the tuned ones
            assert job_config.seed == 0 if grid.startswith("tune") else job_config.seed in (1, 2, 3)


def test_the_shared_bn_sweep_config():
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        config = compose(config_name="sweep_shared_bn", overrides=["checkpoint=x.pt"])
    assert config.sweep.recalibrate_bn is False and config.sweep.step == 8
