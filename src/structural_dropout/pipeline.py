"""From a composed Hydra config to a trained checkpoint, a sweep CSV, figures and run.json.

The scripts in ``scripts/`` are thin wrappers around these two functions; tests call them with
configs composed from the real YAML files.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from .checkpoint import atomic_write, load_checkpoint, write_json
from .plots import sweep_figures
from .runtime import provenance, resolve_device, seed_everything, set_threads
from .sweep import sweep
from .training import train

ARTIFACTS = ("sweep.csv", "run.json")


def _build(config: DictConfig, device: torch.device):
    task = instantiate(config.task)
    task.setup(device)
    model = instantiate(config.model).to(device)
    return task, model


def _write_sweep(rows: list[dict], out_dir: Path) -> tuple[Path, list[Path]]:
    csv_path = out_dir / "sweep.csv"
    _write_csv(csv_path, rows)
    return csv_path, sweep_figures(csv_path)


def _write_csv(path: Path, rows: list[dict]) -> None:
    atomic_write(path, lambda tmp: pd.DataFrame(rows).to_csv(tmp, index=False))


def _publish(out_dir: Path, results_dir: str | None, figures: list[Path]) -> None:
    """Copy the run's CSV, run.json and figures into ``results_dir`` (the reproduce targets)."""
    if not results_dir:
        return
    target = Path(results_dir)
    target.mkdir(parents=True, exist_ok=True)
    for path in [out_dir / name for name in ARTIFACTS] + figures:
        atomic_write(target / path.name, lambda tmp, src=path: shutil.copyfile(src, tmp))


def _sweep_and_report(config, model, task, out_dir: Path, info: dict) -> dict:
    start = time.perf_counter()
    rows = sweep(
        model,
        task,
        config.sweep.widths,
        config.sweep.step,
        config.sweep.split,
        progress=config.progress,
        recalibrate_bn=config.sweep.recalibrate_bn,
    )
    info["sweep_seconds"] = round(time.perf_counter() - start, 2)
    _, figures = _write_sweep(rows, out_dir)
    full = rows[-1]
    info["full_width"] = full
    write_json(out_dir / "run.json", info)
    _publish(out_dir, config.get("results_dir"), figures)
    return info


def train_and_sweep(config: DictConfig, out_dir: str | Path) -> dict:
    """Train one model as ``config`` says, then sweep its widths; returns the run summary."""
    out_dir = Path(out_dir)
    set_threads(config.num_threads)
    seed_everything(config.seed)
    device = resolve_device(config.device)
    resolved = OmegaConf.to_container(config, resolve=True)
    info = {"config": resolved, "seed": config.seed, **provenance(device)}  # before any work
    task, model = _build(config, device)
    optimizer = instantiate(config.optimizer)(model.parameters())
    scheduler = instantiate(config.scheduler)(optimizer) if config.scheduler else None

    start = time.perf_counter()
    history = train(
        model,
        task,
        optimizer,
        scheduler,
        epochs=config.trainer.epochs,
        checkpoint_path=out_dir / "checkpoint.pt",
        config=resolved,
        validate_every=config.trainer.validate_every,
        val_widths=config.trainer.val_widths,
        val_split=config.trainer.val_split,
        precision=config.trainer.precision,
        grad_clip=config.trainer.grad_clip,
        progress=config.progress,
    )
    info["train_seconds"] = round(time.perf_counter() - start, 2)
    info["history"] = history
    _write_csv(out_dir / "history.csv", history)
    if not config.sweep.enabled:
        write_json(out_dir / "run.json", info)
        return info
    return _sweep_and_report(config, model, task, out_dir, info)


def sweep_checkpoint(checkpoint: str | Path, config: DictConfig, out_dir: str | Path) -> dict:
    """Sweep a saved model: the model and task are rebuilt from the config inside the checkpoint.

    ``config`` supplies only how to run the sweep (device, threads, sweep settings, results_dir).
    """
    set_threads(config.num_threads)
    device = resolve_device(config.device)
    state = load_checkpoint(checkpoint, map_location=device)
    trained = OmegaConf.create(state["config"])
    task, model = _build(trained, device)
    model.load_state_dict(state["model"])
    info = {
        "config": state["config"],
        "seed": trained.seed,
        "checkpoint": str(checkpoint),
        **provenance(device),
        "epoch": state.get("epoch"),
        "history": state.get("history"),
    }
    return _sweep_and_report(config, model, task, Path(out_dir), info)
