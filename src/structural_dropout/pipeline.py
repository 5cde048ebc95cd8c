"""From a composed Hydra config to a trained checkpoint, a sweep CSV, figures and run.json.

The scripts in ``scripts/`` are thin wrappers around these two functions; tests call them with
configs composed from the real YAML files.
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import nullcontext
from pathlib import Path

import pandas as pd
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from .batchnorm import recalibrated_norms
from .checkpoint import atomic_write, load_checkpoint, write_json
from .export import export, load_export, save_export
from .layer import set_width
from .mlp import truncatable_mlps
from .params import count_params
from .plots import sweep_figures
from .reorder import sort_units
from .runtime import provenance, resolve_device, seed_everything, set_threads
from .sweep import sweep
from .training import TrainerSettings, train


def job_threads(config: DictConfig) -> int | None:
    """Torch threads for this job: ``num_threads`` if set; else, under a launcher that runs jobs
    side by side, the job's share of the cores, so parallel jobs do not oversubscribe them."""
    if config.num_threads is not None or not HydraConfig.initialized():
        return config.num_threads
    hydra = HydraConfig.get()
    if hydra.mode != RunMode.MULTIRUN:
        return None
    launcher = hydra.launcher
    if launcher.get("cpus_per_task"):  # submitit (SLURM or local)
        return int(launcher.cpus_per_task)
    n_jobs = launcher.get("n_jobs")  # joblib; -1 means one job per core
    if n_jobs:
        cores = os.cpu_count() or 1
        return max(1, cores // (cores if n_jobs < 0 else min(n_jobs, cores)))
    return None


def method_hooks(config: DictConfig):
    """The training hooks of the run's method (``method.training``: e.g. ``DropoutCompaction``,
    ``DropPruning``), or None. Hooks may define ``prepare(model)`` (before training and before
    a checkpoint loads), ``penalty(model)`` (added to each step's loss), ``after_step(model,
    step, total)``, ``finalize(model) -> model`` (after training) and ``count_params(model,
    width)`` (how the sweep counts parameters)."""
    method = config.get("method") or {}
    return instantiate(method["training"]) if method.get("training") else None


def _build(config: DictConfig, device: torch.device):
    task = instantiate(config.task)
    task.setup(device)
    model = instantiate(config.model)
    hooks = method_hooks(config)
    if hasattr(hooks, "prepare"):
        hooks.prepare(model)
    return task, model.to(device)


def _after_training(config: DictConfig, model: torch.nn.Module) -> torch.nn.Module:
    """What a method does to the trained model before any sweep; returns the model to sweep.
    ``method.sort_units``: order the hidden units of every truncatable MLP by importance (the
    `sorted` baseline); the method's hooks' ``finalize`` (e.g. compaction, pruning)."""
    method = config.get("method") or {}
    if method.get("sort_units"):
        for mlp in truncatable_mlps(model, f"sort (method {method.name})"):
            sort_units(mlp)
    hooks = method_hooks(config)
    return hooks.finalize(model) if hasattr(hooks, "finalize") else model


def _write_csv(path: Path, rows: list[dict]) -> None:
    atomic_write(path, lambda tmp: pd.DataFrame(rows).to_csv(tmp, index=False))


def _publish(out_dir: Path, results_dir: str | None, files: list[Path]) -> None:
    """Copy the run's tables, run.json and figures into ``results_dir`` (the reproduce targets)."""
    if not results_dir:
        return
    target = Path(results_dir)
    target.mkdir(parents=True, exist_ok=True)
    for path in [*files, out_dir / "run.json"]:
        atomic_write(target / path.name, lambda tmp, src=path: shutil.copyfile(src, tmp))


def _sweep_and_report(config, model, task, out_dir: Path, info: dict) -> dict:
    """Sweep, then write the tables (``sweep.csv``, and any the task adds), figures and run.json.

    A task with its own ``sweep`` (LIIF: datasets x scales x widths) returns its tables by file
    name and draws its own figures; the others go through the generic width sweep.
    """
    start = time.perf_counter()
    count = getattr(method_hooks(config), "count_params", count_params)
    if hasattr(task, "sweep"):
        tables = task.sweep(model, config.sweep, progress=config.progress, count=count)
    else:
        tables = {
            "sweep.csv": sweep(
                model,
                task,
                config.sweep.widths,
                config.sweep.step,
                config.sweep.split,
                progress=config.progress,
                recalibrate_bn=config.sweep.recalibrate_bn,
                start=config.sweep.start,
                count=count,
            )
        }
    info["sweep_seconds"] = round(time.perf_counter() - start, 2)
    files = []
    for name, rows in tables.items():
        _write_csv(out_dir / name, rows)
        files.append(out_dir / name)
    if hasattr(task, "figures"):
        files += task.figures(out_dir, model)
    else:
        files += sweep_figures(out_dir / "sweep.csv")
    rows = tables["sweep.csv"]
    widest = max(row["width"] for row in rows)
    full = [row for row in rows if row["width"] == widest]
    info["full_width"] = full[0] if len(full) == 1 else full
    write_json(out_dir / "run.json", info)
    _publish(out_dir, config.get("results_dir"), files)
    return info


def _resume_state(config: DictConfig, checkpoint: Path, resolved: dict) -> dict | None:
    """The checkpoint to continue from when ``resume=true``; it must be of the same model."""
    if not config.resume:
        return None
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"resume=true but there is no checkpoint at {checkpoint}; set hydra.run.dir to the "
            "interrupted run's directory"
        )
    state = load_checkpoint(checkpoint)
    for key in ("model", "task", "seed", "dropout", "method"):
        if state["config"].get(key) != resolved.get(key):
            raise ValueError(
                f"cannot resume {checkpoint}: its {key} config differs from this run's"
            )
    return state


def train_and_sweep(config: DictConfig, out_dir: str | Path) -> dict:
    """Train one model as ``config`` says, then sweep its widths; returns the run summary."""
    out_dir = Path(out_dir)
    set_threads(job_threads(config))
    seed_everything(config.seed)
    device = resolve_device(config.device)
    resolved = OmegaConf.to_container(config, resolve=True)
    info = {"config": resolved, "seed": config.seed, **provenance(device)}  # before any work
    task, model = _build(config, device)
    optimizer = instantiate(config.optimizer)(model.parameters())
    scheduler = instantiate(config.scheduler)(optimizer) if config.scheduler else None

    checkpoint = out_dir / "checkpoint.pt"
    resume = _resume_state(config, checkpoint, resolved)
    if resume is not None:
        info["resumed_from_epoch"] = resume["epoch"]
    start = time.perf_counter()
    history = train(
        model,
        task,
        optimizer,
        scheduler,
        TrainerSettings(
            **config.trainer,
            sandwich=instantiate(config.dropout).sandwich,
            hooks=method_hooks(config),
        ),
        checkpoint_path=checkpoint,
        config=resolved,
        resume=resume,
        progress=config.progress,
    )
    info["train_seconds"] = round(time.perf_counter() - start, 2)
    info["history"] = history
    model = _after_training(config, model)
    _write_csv(out_dir / "history.csv", history)
    if not config.sweep.enabled:
        write_json(out_dir / "run.json", info)
        return info
    return _sweep_and_report(config, model, task, out_dir, info)


def load_trained(checkpoint: str | Path, device: torch.device):
    """A checkpoint's state, training config, task (set up) and model, as the run left it
    after training (a method's post-training step, e.g. sorting, applied)."""
    state = load_checkpoint(checkpoint, map_location=device)
    trained = OmegaConf.create(state["config"])
    task, model = _build(trained, device)
    model.load_state_dict(state["model"])
    return state, trained, task, _after_training(trained, model)


def sweep_checkpoint(checkpoint: str | Path, config: DictConfig, out_dir: str | Path) -> dict:
    """Sweep a saved model: the model and task are rebuilt from the config inside the checkpoint.

    ``config`` supplies only how to run the sweep (device, threads, sweep settings, results_dir).
    """
    set_threads(job_threads(config))
    device = resolve_device(config.device)
    state, trained, task, model = load_trained(checkpoint, device)
    # Settings left null follow the training run's sweep, so a checkpoint sweeps as it was swept.
    given = {key: value for key, value in config.sweep.items() if value is not None}
    config = OmegaConf.merge(config, {"sweep": OmegaConf.merge(trained.sweep, given)})
    info = {
        "config": state["config"],
        "seed": trained.seed,
        "checkpoint": str(checkpoint),
        "sweep_config": OmegaConf.to_container(config.sweep, resolve=True),
        **provenance(device),
        "epoch": state.get("epoch"),
        "history": state.get("history"),
    }
    return _sweep_and_report(config, model, task, Path(out_dir), info)


def export_checkpoint(
    checkpoint: str | Path, width: int | None, out_dir: str | Path, device: str = "cpu"
) -> dict:
    """Export a saved model at ``width`` (None: full) to ``out_dir`` (``export.save_export``) and
    check the written program against the model; returns the summary written to
    ``export.json``.

    A run swept with ``sweep.recalibrate_bn`` is exported with the BatchNorm statistics
    re-estimated at ``width``, as its sweep measured it.
    """
    device = resolve_device(device)
    state, trained, task, model = load_trained(checkpoint, device)
    model.eval()
    set_width(model, width)
    inputs = task.example_inputs()
    recalibrate = bool(trained.sweep.get("recalibrate_bn"))
    calibration = task.prepare_eval(model, "calibration") if recalibrate else None
    with (
        (
            recalibrated_norms(model, lambda: task.evaluate(model, calibration))
            if recalibrate
            else nullcontext()
        ),
        torch.no_grad(),
    ):
        dense = export(model, width)
        expected = model(*inputs)
    paths = save_export(dense, out_dir, inputs)
    with torch.no_grad():
        program = torch.export.load(paths["program"]).module()
        differences = [
            (candidate(*inputs) - expected).abs().max().item()
            for candidate in (dense, load_export(out_dir), program)
        ]
    summary = {
        "checkpoint": str(checkpoint),
        "width": width,
        "params": sum(p.numel() for p in dense.parameters()),
        "params_full_model": sum(p.numel() for p in model.parameters()),
        "recalibrated_bn": recalibrate,
        "max_abs_diff": dict(zip(["exported", "reloaded", "program"], differences, strict=True)),
        "files": {name: {"path": str(p), "bytes": p.stat().st_size} for name, p in paths.items()},
        "seed": trained.seed,
        **provenance(device),
    }
    write_json(Path(out_dir) / "export.json", summary)
    return summary
