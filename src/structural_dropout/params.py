"""Parameter counting at a given width."""

from __future__ import annotations

from torch import nn


def count_params(model: nn.Module, width: int | None = None) -> int:
    """Parameters of the dense model that holds only the units kept at ``width``.

    Counted on the model's own export, so the number is by construction the ``numel`` of what a
    user would ship: every layer counted once, the output layer included.
    """
    export = getattr(model, "export", None)
    if export is None:
        raise TypeError(f"{type(model).__name__} has no export(width) method to count from")
    return sum(p.numel() for p in export(width).parameters())
