"""Dropout Compaction's removal threshold after the fact: from a finished run's checkpoint, the
compacted model's size and validation score at other thresholds (no retraining).

It answers why a compacted model scores far below its gated model: when the learned retentions
do not settle near 0 or 1, the threshold removes units that still carry the function. Validation
only: a threshold read off this table is a choice.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ...baselines.compaction import DropoutCompaction, RetentionGate
from ...params import count_params
from ..build import build_run
from ..checkpoint import load_checkpoint


@torch.inference_mode()
def threshold_rows(
    checkpoint: str | Path, thresholds: Iterable[float], device: torch.device | str = "cpu"
) -> list[dict]:
    """One row per threshold (and a first row ``threshold=None``: the gated model itself, each
    unit scaled by its retention, as training's validation scored it): ``strength, temperature,
    seed, threshold, params, val_<metric>, retained`` (``retained``: units at or above it)."""
    device = torch.device(device)
    state = load_checkpoint(checkpoint, map_location=device)
    config = OmegaConf.create(state["config"])
    if (config.get("method") or {}).get("name") != "compaction":
        raise ValueError(f"{checkpoint} is not a Dropout Compaction run (method=compaction)")
    run = build_run(config, device, with_task=True, for_training=False)
    run.model.load_state_dict(state["model"])
    model = run.model.eval()
    hooks: DropoutCompaction = run.hooks
    prepared = run.task.prepare_eval(model, "val")
    retentions = torch.cat([g.retention for g in model.modules() if isinstance(g, RetentionGate)])
    training = config.method.training
    base = {"strength": training.strength, "temperature": training.temperature,
            "seed": config.seed}  # fmt: skip
    metric = f"val_{run.task.metric}"

    def row(threshold: float | None, compacted: torch.nn.Module, retained: int) -> dict:
        score = run.task.evaluate(compacted, prepared)
        return base | {"threshold": threshold, "params": count_params(compacted), metric: score,
                       "retained": retained}  # fmt: skip

    rows = [row(None, model, len(retentions))]
    for threshold in thresholds:
        small = dataclasses.replace(hooks, threshold=threshold).finalize(copy.deepcopy(model))
        rows.append(row(threshold, small.eval(), int((retentions >= threshold).sum())))
    return rows
