"""What an experiment provides to the shared loops."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import torch
from torch import Tensor, nn


class Task(Protocol):
    """Data, loss and metric of one experiment.

    ``prepare_eval`` does the width-independent work once (loading and moving the data, running a
    backbone the cut never touches); ``evaluate`` is then called once per width on its result.
    Training's periodic validation and the width sweep both use this same pair.
    """

    metric: str  # the name of the value evaluate() returns, e.g. "accuracy"

    def setup(self, device: torch.device) -> None: ...

    @property
    def steps_per_epoch(self) -> int: ...

    def train_batches(self) -> Iterator[Any]: ...

    def loss(self, model: nn.Module, batch: Any) -> Tensor: ...

    def prepare_eval(self, model: nn.Module, split: str) -> Any: ...

    def evaluate(self, model: nn.Module, prepared: Any) -> float: ...

    def example_inputs(self) -> tuple[Tensor, ...]:
        """One forward call's inputs, a few real samples (``export`` traces the model on them)."""
        ...
