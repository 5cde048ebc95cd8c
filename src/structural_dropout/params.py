"""Parameter counting at a given width."""

from __future__ import annotations

from torch import nn

from .mlp import TruncatableMLP


def count_params(model: nn.Module, width: int | None = None) -> int:
    """Parameters of the dense model that holds only the units kept at ``width``.

    Every parameter outside a truncatable MLP counts in full (PointNet's per-point layers), each
    truncatable MLP counts its kept units, every layer once, output layers included. This is the
    ``numel`` of ``export(model, width)`` (tested), counted without copying any weight, so a sweep
    of hundreds of widths spends no time on it.
    """
    mlps = [m for m in model.modules() if isinstance(m, TruncatableMLP)]
    total = sum(p.numel() for p in model.parameters())
    full = sum(p.numel() for mlp in mlps for p in mlp.parameters())
    return total - full + sum(mlp.num_params(width) for mlp in mlps)
