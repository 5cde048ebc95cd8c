"""Device, seeding and provenance: the facts a result needs to be rerun."""

from __future__ import annotations

import os
import platform
import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

# The repository's Hydra configs, for benchmarks and tools that compose them outside @hydra.main.
REPO_CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for an absent CUDA is an error, not a fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={name!r} was asked for but CUDA is not available; use 'auto'")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_threads(num_threads: int | None) -> None:
    """Pin torch's intra-op threads (None keeps torch's default of one per core)."""
    if num_threads is not None:
        torch.set_num_threads(num_threads)


def git_commit(repo: Path | None = None) -> dict:
    """The commit the code ran at, and whether the working tree had uncommitted changes."""
    cwd = repo or Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        return {
            "commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        }
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def hardware(device: torch.device) -> dict:
    info = {
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        # The vector instructions torch's CPU kernels use (AVX2, AVX512, ...) and whether the CPU
        # computes bfloat16 natively: bf16 autocast is fast with it and many times slower without.
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": native_bf16(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def native_bf16() -> bool | None:
    """Whether this CPU has bfloat16 instructions (AVX-512 BF16 or AMX); None where unknown."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return None
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def provenance(device: torch.device) -> dict:
    return {
        **git_commit(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "hardware": hardware(device),
    }
