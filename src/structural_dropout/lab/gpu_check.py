"""The GPU check's parts (``scripts/gpu_check.py``, ``make gpu-check``): an experiment's smoke
run on a device, the time of its training step at a profile, and a 2-process smoke run."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from .build import build_run
from .provenance import seed_everything
from .run import train_and_sweep
from .training import step_loss

REPO = Path(__file__).resolve().parents[3]  # the checkout: configs/ and scripts/
CONFIGS = REPO / "configs"
EXPERIMENTS = ["mnist", "lenet5", "pointnet", "liif", "shakespeare"]


def config(experiment: str, profile: str, device: str, *overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", [f"experiment={experiment}", f"profile={profile}",
                                 f"device={device}", "progress=false", *overrides])  # fmt: skip


def smoke(experiment: str, device: str, out: Path) -> dict:
    """The experiment's smoke profile, trained and swept on ``device``."""
    start = time.perf_counter()
    info = train_and_sweep(config(experiment, "smoke", device), out / "runs" / experiment)
    full = info["full_width"]
    full = full[0] if isinstance(full, list) else full
    return {"seconds": round(time.perf_counter() - start, 2), "full_width": full,
            "precision": info["config"]["trainer"]["precision"]}  # fmt: skip


def step_time(experiment: str, profile: str, device: str, steps: int) -> dict:
    """Median seconds of one training step (forward, backward, optimizer) at ``profile``."""
    seed_everything(0)
    run = build_run(config(experiment, profile, device), torch.device(device))
    model, task, settings = run.model, run.task, run.settings
    model.train()
    cuda = run.device.type == "cuda"
    times = []
    batches = iter(task.train_batches())
    for i in range(3 + steps):
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(task.train_batches())
            batch = next(batches)
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(run.device.type, torch.bfloat16,
                            enabled=settings.precision == "bf16"):  # fmt: skip
            loss = step_loss(model, task, batch, settings)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        if cuda:
            torch.cuda.synchronize()
        if i >= 3:
            times.append(time.perf_counter() - start)
    memory = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
    return {"profile": profile, "precision": settings.precision, "steps": steps,
            "median_s": statistics.median(times), "max_memory_mib": memory}  # fmt: skip


def ddp_smoke(device: str, out: Path) -> dict:
    """MNIST's smoke profile over 2 processes (torchrun): NCCL on two GPUs, gloo on the CPU."""
    run_dir = out / "runs" / "mnist_ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "scripts/train.py", "experiment=mnist", "profile=smoke", f"device={device}",
               "progress=false", f"hydra.run.dir={run_dir}"]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"the 2-process run failed: {result.stderr.strip()[-2000:]}")
    run = json.loads((run_dir / "run.json").read_text())
    return {"seconds": round(time.perf_counter() - start, 2), "distributed": run["distributed"],
            "full_width": run["full_width"]}  # fmt: skip
