"""Parameter counting at a given width."""

from __future__ import annotations

from torch import nn

from .truncatable import truncatable_parts


def count_params(model: nn.Module, width: int | None = None) -> int:
    """Parameters of the dense model that holds only the units kept at ``width``.

    Every parameter outside a truncatable part counts in full (PointNet's per-point layers), each
    truncatable part (``Truncatable.num_params``) counts its kept units, every layer once, output
    layers included. This is the ``numel`` of ``export(model, width)`` (tested), counted without
    copying any weight, so a sweep of hundreds of widths spends no time on it.
    """
    parts = truncatable_parts(model)
    total = sum(p.numel() for p in model.parameters())
    full = sum(p.numel() for part in parts for p in part.parameters())
    return total - full + sum(part.num_params(width) for part in parts)
