import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from structural_dropout.lab.provenance import REPO_CONFIGS as CONFIGS

REPO = CONFIGS.parent


def experiments_in(config_dir: Path) -> list[str]:
    """Every experiment of a config tree: the files of ``experiment/``, so a new experiment is
    tested without editing a test."""
    return sorted(path.stem for path in (Path(config_dir) / "experiment").glob("*.yaml"))


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an idx file of unsigned bytes, gzipped, as the MNIST originals are."""
    header = (0x0800 | array.ndim).to_bytes(4, "big")
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="session")
def fake_mnist(tmp_path_factory) -> Path:
    """A small MNIST-shaped data dir (1,200 train / 300 test) in torchvision's layout.

    Each class is a bright bar at its own row, plus noise, so a model can learn it in one epoch.
    """
    root = tmp_path_factory.mktemp("data")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 1200), ("t10k", 300)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 28, 28))
        for i, label in enumerate(labels):
            images[i, 2 + 2 * label : 4 + 2 * label, 4:24] = 255
        write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


def real_mnist_root() -> Path | None:
    """The real MNIST, if this machine has it (CI links ../shared/data into data/)."""
    for root in (os.environ.get("STRUCTURAL_DROPOUT_DATA"), REPO / "data"):
        if root and (Path(root) / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").exists():
            return Path(root)
    return None


def run_script(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run ``python <args>`` in the repository, as a user would, and require it to succeed."""
    result = subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def multirun(tmp_path: Path, data_dir: Path, *overrides: str) -> Path:
    """``scripts/train.py -m`` with the smoke profile; returns the sweep directory."""
    sweep_dir = tmp_path / "multirun"
    run_script(
        "scripts/train.py",
        "-m",
        "profile=smoke",
        f"data_dir={data_dir}",
        "task.download=false",
        f"hydra.sweep.dir={sweep_dir}",
        *overrides,
    )
    return sweep_dir
