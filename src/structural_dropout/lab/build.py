"""One build path: a run is built once from its config, and rebuilt from a checkpoint the same way.

``build_run(config, device)`` instantiates everything a run needs, in a fixed order (task, model,
method hooks, optimizer, scheduler, training rule and settings); nothing below it instantiates
from the config again. ``rebuild(checkpoint)`` does the same from the config saved inside the
checkpoint, so a re-sweep, an export, the comparison's diagnostic and ``upscale`` see the model,
the hooks and the task exactly as training left them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from ..baselines.unit_sorting import sort_units
from ..batchnorm import width_dependent_norms
from ..layers.mlp import truncatable_mlps
from ..params import count_params
from .checkpoint import load_checkpoint
from .task import Task
from .training import TrainerSettings


class MethodHooks(Protocol):
    """The training hooks of a method (``method.training`` in its config). Every one is optional.

    prepare(model): before training, and before a checkpoint's weights load (adds modules).
    penalty(model) -> Tensor: added to each step's loss.
    after_step(model, step, total): after each optimizer step (``step`` counts from 1).
    finalize(model) -> model: after training and after a checkpoint loads; returns the model
        to sweep (e.g. compacted, or with its pruning masks made permanent).
    count_params(model, width) -> int: how the sweep counts parameters (default ``count_params``).
    """


@dataclass
class Run:
    """Everything one run trains, evaluates or rebuilds, built once from ``config``."""

    config: DictConfig
    device: torch.device
    task: Task | None  # None when rebuilt without its data (``rebuild(..., with_task=False)``)
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    settings: TrainerSettings  # holds the method's hooks too: ``hooks``

    @property
    def hooks(self) -> MethodHooks | None:
        return self.settings.hooks

    @property
    def count(self):
        """The sweep's parameter counter: the method's, else the dense one."""
        return getattr(self.hooks, "count_params", count_params)

    def finish_training(self) -> nn.Module:
        """What the method does to the trained model before any sweep (sort its units,
        ``hooks.finalize``); replaces and returns ``self.model``."""
        method = self.config.get("method") or {}
        if method.get("sort_units"):
            for mlp in truncatable_mlps(self.model, f"sort (method {method.name})"):
                sort_units(mlp)
        if hasattr(self.hooks, "finalize"):
            self.model = self.hooks.finalize(self.model)
        return self.model


def build_run(
    config: DictConfig, device: torch.device, with_task: bool = True, for_training: bool = True
) -> Run:
    """Build a run from a composed config. The order is fixed (task, model, hooks, optimizer,
    scheduler): random draws made while building one object must not move another's.
    ``with_task=False`` skips the task (and its data), for a model whose weights load next;
    ``for_training=False`` skips what only training needs (a frozen teacher)."""
    task = instantiate(config.task) if with_task else None
    if task is not None:
        task.setup(device)
    model = instantiate(config.model)
    method = config.get("method") or {}
    hooks = instantiate(method["training"]) if method.get("training") else None
    if hasattr(hooks, "prepare"):
        hooks.prepare(model)
    model = model.to(device)
    optimizer = instantiate(config.optimizer)(model.parameters())
    scheduler = instantiate(config.scheduler)(optimizer) if config.get("scheduler") else None
    trainer = OmegaConf.to_container(config.trainer, resolve=True)
    rule = trainer.pop("rule", None)
    rule = instantiate(rule) if rule is not None else None
    teacher = _teacher(trainer.pop("teacher", None) or {}, rule, model, device, for_training)
    settings = TrainerSettings(**trainer, rule=rule, hooks=hooks, teacher=teacher)
    _check_recalibration(config, model)
    return Run(config, device, task, model, optimizer, scheduler, settings)


def _teacher(
    spec: dict, rule, model: nn.Module, device: torch.device, for_training: bool
) -> nn.Module | None:
    """The frozen teacher of ``trainer.teacher`` (eval mode, no gradients), rebuilt from its
    checkpoint; with ``init`` the model starts from its weights. None without a checkpoint."""
    path = spec.get("checkpoint")
    weight = getattr(rule, "teacher", 0)
    if path is None:
        if weight:
            raise ValueError(f"rule.teacher={weight} needs trainer.teacher.checkpoint=<path>")
        return None
    if not weight:
        raise ValueError(
            "trainer.teacher.checkpoint is set but no rule learns from it: use a sandwich rule "
            "with teacher > 0 (e.g. rule=sandwich trainer.rule.teacher=1)"
        )
    if not for_training:
        return None
    _, run = rebuild(path, device, with_task=False)
    teacher = run.model.eval().requires_grad_(False)
    if spec.get("init"):
        model.load_state_dict(teacher.state_dict())
    return teacher


def _check_recalibration(config: DictConfig, model: nn.Module) -> None:
    """Asking to recalibrate BatchNorm on a model without width-dependent BatchNorm is an error
    before any training, not after it."""
    if config.sweep.get("recalibrate_bn") and not width_dependent_norms(model):
        raise ValueError(
            f"sweep.recalibrate_bn=true, but this {type(model).__name__} has no BatchNorm whose "
            "statistics depend on the width; set sweep.recalibrate_bn=false"
        )


def rebuild(
    checkpoint: str | Path,
    device: torch.device,
    overrides: dict[str, Any] | None = None,
    with_task: bool = True,
) -> tuple[dict, Run]:
    """A checkpoint's state and its run, rebuilt from the config saved inside it, weights loaded
    and the method's post-training step applied (the model as the run swept it).

    ``overrides``: nested config values to replace before building (e.g. a sweep's settings).
    ``with_task=False``: the model alone, no data loaded (e.g. to upscale a user's image).
    """
    state = load_checkpoint(checkpoint, map_location=device)
    config = OmegaConf.create(state["config"])
    if overrides:
        config = OmegaConf.merge(config, overrides)
    run = build_run(config, device, with_task, for_training=False)
    run.model.load_state_dict(state["model"])
    run.finish_training()
    return state, run
