"""Self-describing checkpoints, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename over ``path``: readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The extension stays last (".x.pt.tmp1234.pt"): some writers check it.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, default=str) + "\n"))


def save_checkpoint(path: Path, **state: Any) -> None:
    """Save weights with everything needed to rebuild the model: pass ``config=`` (a plain dict)."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    state = torch.load(path, map_location=map_location, weights_only=False)
    if "config" not in state or "model" not in state:
        raise ValueError(f"{path} is not a structural-dropout checkpoint (no config or model)")
    return state
