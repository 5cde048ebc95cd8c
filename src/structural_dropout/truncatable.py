"""The extension point for truncatable layers.

A module that can be cut to a prefix width implements ``Truncatable``: how many parameters it
keeps at a width, a plain module holding only those, and which of its BatchNorm layers see inputs
that change with the width. Parameter counting (``params``), export (``export``) and BatchNorm
recalibration (``batchnorm``) reach truncatable parts only through these three methods, so a
convolutional or attention layer joins them by implementing the protocol; nothing else changes.
``TruncatableMLP``, ``TruncatableCNN``, ``TruncatableSelfAttention`` (heads) and
``TruncatableFeedForward`` (a transformer's hidden units) are the implementations this library
ships.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@runtime_checkable
class Truncatable(Protocol):
    """A module whose structural dropout layers can be cut to any prefix width."""

    def num_params(self, width: int | None = None) -> int:
        """Parameters of ``export(width)`` (None: full width), counted without building it."""
        ...

    def export(self, width: int | None = None) -> nn.Module:
        """A plain module of standard layers computing what this one does at ``width`` in eval
        mode, holding only the kept units."""
        ...

    def width_dependent_norms(self) -> list[_BatchNorm]:
        """The BatchNorm layers whose inputs change with the width (re-estimated per width)."""
        ...


def truncatable_parts(model: nn.Module) -> list[nn.Module]:
    """The outermost ``Truncatable`` modules of ``model`` (itself, if it is one), in order; a
    truncatable part nested inside another is the outer one's to handle."""
    if isinstance(model, Truncatable):
        return [model]
    return [part for child in model.children() for part in truncatable_parts(child)]


def replace_parts(
    model: nn.Module, kinds: tuple[type, ...], replace: Callable[[nn.Module], nn.Module]
) -> nn.Module:
    """``model`` with every outermost module of one of ``kinds`` replaced by ``replace(part)``,
    in place; returns the module to use (the replacement when ``model`` is itself one)."""
    if isinstance(model, kinds):
        return replace(model)
    for name, child in model.named_children():
        setattr(model, name, replace_parts(child, kinds, replace))
    return model
