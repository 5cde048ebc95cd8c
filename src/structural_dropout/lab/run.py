"""From a composed Hydra config to a trained checkpoint, a sweep CSV, figures and run.json.

The scripts in ``scripts/`` are thin wrappers around these functions; tests call them with
configs composed from the real YAML files. Every run is built by ``build.build_run`` (training)
or ``build.rebuild`` (from a checkpoint), once.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from tqdm.contrib.logging import logging_redirect_tqdm

from ..batchnorm import recalibrated_norms
from ..export import export, load_export, save_export
from ..io import atomic_write
from ..layers.dropout import set_width
from ..layers.transformer import export_shape, set_shape
from ..onnx_export import onnx_max_abs_diff, save_onnx
from .build import Run, build_run, rebuild
from .checkpoint import load_checkpoint, write_json
from .distributed import from_environment
from .provenance import provenance, resolve_device, seed_everything, set_threads
from .reports.plots import sweep_figures
from .sweep import sweep, write_table
from .training import train

log = logging.getLogger(__name__)


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


def _publish(out_dir: Path, results_dir: str | None, files: list[Path]) -> None:
    """Copy the run's tables, run.json and figures into ``results_dir`` (the reproduce targets)."""
    if not results_dir:
        return
    target = Path(results_dir)
    target.mkdir(parents=True, exist_ok=True)
    for path in [*files, out_dir / "run.json"]:
        atomic_write(target / path.name, lambda tmp, src=path: shutil.copyfile(src, tmp))


def _sweep_and_report(run: Run, sweep_config: DictConfig, out_dir: Path, info: dict) -> dict:
    """Sweep, then write the tables (``sweep.csv``, and any the task adds), figures and run.json.

    A task with its own ``sweep`` (LIIF: datasets x scales x widths) returns its tables by file
    name and draws its own figures; the others go through the generic width sweep.
    """
    config, model, task = run.config, run.model, run.task
    start = time.perf_counter()
    if hasattr(task, "sweep"):
        tables = task.sweep(model, sweep_config, progress=config.progress, count=run.count)
    else:
        tables = {
            "sweep.csv": sweep(
                model,
                task,
                sweep_config.widths,
                sweep_config.step,
                sweep_config.split,
                sweep_config.get("val_split"),
                progress=config.progress,
                recalibrate_bn=sweep_config.recalibrate_bn,
                start=sweep_config.start,
                count=run.count,
            )
        }
    info["sweep_seconds"] = round(time.perf_counter() - start, 2)
    files = [write_table(out_dir / name, rows) for name, rows in tables.items()]
    if sweep_config.get("figures", True):
        draw = getattr(task, "figures", lambda out, _: sweep_figures(out / "sweep.csv"))
        files += draw(out_dir, model)
    rows = tables["sweep.csv"]
    widest = max(row["width"] for row in rows)
    full = [row for row in rows if row["width"] == widest]
    info["full_width"] = full[0] if len(full) == 1 else full
    log.info(
        "swept %d rows in %.1f s; full width: %s -> %s",
        len(rows),
        info["sweep_seconds"],
        info["full_width"],
        out_dir / "sweep.csv",
    )
    write_json(out_dir / "run.json", info)
    _publish(out_dir, config.get("results_dir"), files)
    return info


def _finished_run(config: DictConfig, out_dir: Path, resolved: dict) -> dict | None:
    """With ``resume=auto``, the summary of a run already finished in ``out_dir`` with this very
    config (so an interrupted grid skips its finished jobs); another config there is an error."""
    run_json = out_dir / "run.json"
    if config.resume != "auto" or not run_json.is_file():
        return None
    info = json.loads(run_json.read_text())
    ours = json.loads(json.dumps(resolved))  # as run.json stores it
    differ = sorted(
        k for k in ours.keys() | info["config"].keys() if ours.get(k) != info["config"].get(k)
    )
    if differ:
        raise ValueError(
            f"{out_dir} holds a finished run whose config differs in {differ}; "
            "choose another run directory"
        )
    log.info("%s: finished already with this config (resume=auto), skipped", out_dir)
    return info


def _resume_state(config: DictConfig, checkpoint: Path, resolved: dict) -> dict | None:
    """The checkpoint to continue from when ``resume=true`` (or ``auto`` and there is one); it
    must be of the same model."""
    if config.resume not in (True, False, "auto"):
        raise ValueError(f"resume must be true, false or auto, got {config.resume!r}")
    if not config.resume or (config.resume == "auto" and not checkpoint.is_file()):
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
    # Several processes (torchrun, a multi-task SLURM job): rank 0's run directory for all.
    distributed = from_environment(OmegaConf.select(config, "distributed.cuts", default="same"),
                                   device)  # fmt: skip
    if distributed is not None:
        device, out_dir = distributed.device(device), distributed.broadcast_path(out_dir)
    resolved = OmegaConf.to_container(config, resolve=True)
    finished = _finished_run(config, out_dir, resolved)
    if finished is not None:
        return finished
    info = {"config": resolved, "seed": config.seed, **provenance(device)}  # before any work
    run = build_run(config, device)
    if distributed is not None:
        distributed.broadcast_module(run.model)
        info["distributed"] = distributed.describe()
    checkpoint = out_dir / "checkpoint.pt"
    resume = _resume_state(config, checkpoint, resolved)
    if resume is not None:
        info["resumed_from_epoch"] = resume["epoch"]
    log.info("run directory %s (threads %s)", out_dir, info["hardware"]["torch_threads"])
    start = time.perf_counter()
    with logging_redirect_tqdm():
        history = train(
            run.model,
            run.task,
            run.optimizer,
            run.scheduler,
            run.settings,
            checkpoint_path=checkpoint,
            config=resolved,
            resume=resume,
            progress=config.progress,
            distributed=distributed,
        )
    if distributed is not None:
        torch.distributed.destroy_process_group()  # no more collectives: rank 0 sweeps alone
        if not distributed.main:
            return {"rank": distributed.rank, "run_dir": str(out_dir)}
    # Every session's training time (a resumed run's history holds the earlier ones').
    info["train_seconds"] = round(
        history[-1]["seconds"] if history else time.perf_counter() - start, 2
    )
    info["history"] = history
    run.finish_training()
    write_table(out_dir / "history.csv", history)
    if not config.sweep.enabled:
        write_json(out_dir / "run.json", info)
        return info
    return _sweep_and_report(run, config.sweep, out_dir, info)


def sweep_checkpoint(checkpoint: str | Path, config: DictConfig, out_dir: str | Path) -> dict:
    """Sweep a saved model: model, task and method hooks are rebuilt from the config inside the
    checkpoint (``build.rebuild``). ``config`` supplies only how to run the sweep (device,
    threads, sweep settings, results_dir); sweep settings left null follow the training run's."""
    set_threads(job_threads(config))
    device = resolve_device(config.device)
    given = {key: value for key, value in config.sweep.items() if value is not None}
    state, run = rebuild(checkpoint, device, {"sweep": given})
    run.config = OmegaConf.merge(
        run.config, {"progress": config.progress, "results_dir": config.get("results_dir")}
    )
    info = {
        "config": state["config"],
        "seed": run.config.seed,
        "checkpoint": str(checkpoint),
        "sweep_config": OmegaConf.to_container(run.config.sweep, resolve=True),
        **provenance(device),
        "epoch": state.get("epoch"),
        "history": state.get("history"),
    }
    with logging_redirect_tqdm():
        return _sweep_and_report(run, run.config.sweep, Path(out_dir), info)


def export_checkpoint(
    checkpoint: str | Path,
    width: int | None,
    out_dir: str | Path,
    device: str = "cpu",
    ffn: int | None = None,
    heads: int | None = None,
    onnx: bool = False,
) -> dict:
    """Export a saved model at ``width`` (None: full) to ``out_dir`` (``export.save_export``) and
    check the written program against the model; returns the summary written to
    ``export.json``. A transformer's feed-forward units and heads can be set apart instead of a
    width (``ffn``, ``heads``: ``set_shape``). ``onnx``: also ``model.onnx``, run by onnxruntime
    on the example inputs and on them twice over (another batch size) against the model.

    A run swept with ``sweep.recalibrate_bn`` is exported with the BatchNorm statistics
    re-estimated at ``width``, as its sweep measured it.
    """
    shaped = ffn is not None or heads is not None
    if shaped and width is not None:
        raise ValueError(f"give width={width} or ffn/heads (ffn={ffn}, heads={heads}), not both")
    device = resolve_device(device)
    _, run = rebuild(checkpoint, device)
    model, task = run.model, run.task
    model.eval()
    if shaped:
        set_shape(model, ffn, heads)
    else:
        set_width(model, width)
    inputs = task.example_inputs()
    recalibrate = bool(run.config.sweep.get("recalibrate_bn"))
    calibration = task.prepare_eval(model, "calibration") if recalibrate else None
    with (
        (
            recalibrated_norms(model, lambda: task.evaluate(model, calibration))
            if recalibrate
            else nullcontext()
        ),
        torch.no_grad(),
    ):
        dense = export_shape(model, ffn, heads) if shaped else export(model, width)
        expected = model(*inputs)
    paths = save_export(dense, out_dir, inputs)
    with torch.no_grad():
        program = torch.export.load(paths["program"]).module()
        differences = [
            (candidate(*inputs) - expected).abs().max().item()
            for candidate in (dense, load_export(out_dir), program)
        ]
    if onnx:
        paths["onnx"] = save_onnx(dense, Path(out_dir) / "model.onnx", inputs)
        doubled = tuple(torch.cat([x, x]) for x in inputs)
        differences += [onnx_max_abs_diff(paths["onnx"], dense, batch)
                        for batch in (inputs, doubled)]  # fmt: skip
    summary = {
        "checkpoint": str(checkpoint),
        "width": width,
        **({"ffn": ffn, "heads": heads} if shaped else {}),
        "params": sum(p.numel() for p in dense.parameters()),
        "params_full_model": sum(p.numel() for p in model.parameters()),
        "recalibrated_bn": recalibrate,
        "max_abs_diff": dict(
            zip(["exported", "reloaded", "program", "onnx", "onnx_batch_x2"][: len(differences)],
                differences, strict=True)
        ),  # fmt: skip
        "files": {name: {"path": str(p), "bytes": p.stat().st_size} for name, p in paths.items()},
        "seed": run.config.seed,
        **provenance(device),
    }
    write_json(Path(out_dir) / "export.json", summary)
    return summary
