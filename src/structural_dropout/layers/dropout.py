"""The structural dropout layer.

In training, a step keeps only the first ``c`` of a layer's ``width`` features and drops the rest;
``c`` is random, so the network learns to put what matters most into its first features. At
evaluation a fixed width is chosen, and any prefix of the trained layer is a usable smaller layer.

This module imports torch only: it is the part users copy into their own models.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from ..spec import CUT_KNOBS, CutSettings, check_positive_int


def check_width(width: int, layer_width: int, name: str = "width") -> int:
    """Return ``width`` if ``1 <= width <= layer_width``, else raise a ValueError naming it."""
    if isinstance(width, bool) or not isinstance(width, int):
        raise ValueError(f"{name} must be an int, got {width!r}")
    if not 1 <= width <= layer_width:
        raise ValueError(f"{name}={width} is outside 1..{layer_width} (the layer width)")
    return width


def rescale_factor(cut: int, width: int, rescale: bool) -> float:
    """The factor the kept features are multiplied by, so their sum keeps its scale."""
    return width / cut if rescale and cut < width else 1.0


def structural_dropout(
    x: Tensor, cut: int, width: int, rescale: bool = True, dim: int = -1
) -> Tensor:
    """Keep the first ``cut`` of ``width`` features along ``dim``; returns ``cut`` features.

    ``x`` may hold all ``width`` features (the rest are sliced away) or exactly ``cut`` of them
    (a producer that computed only the kept units, which is how training gets cheaper).
    """
    n = x.shape[dim]
    if n == width and cut < width:
        x = x.narrow(dim, 0, cut)
    elif n != cut:
        raise ValueError(f"expected {width} or {cut} features along dim {dim}, got {n}")
    factor = rescale_factor(cut, width, rescale)
    return x * factor if factor != 1.0 else x


def structural_dropout_mask(
    x: Tensor, cut: int, width: int, rescale: bool = True, dim: int = -1
) -> Tensor:
    """The slow, obvious form: zero the features at and above ``cut``, keep the shape."""
    if x.shape[dim] != width:
        raise ValueError(f"expected {width} features along dim {dim}, got {x.shape[dim]}")
    shape = [1] * x.dim()
    shape[dim] = width
    mask = (torch.arange(width, device=x.device) < cut).to(x.dtype).view(shape)
    return x * mask * rescale_factor(cut, width, rescale)


class StructuralDropout(nn.Module):
    """Drops every feature above a random cut ``c``; ``c`` is fixed by ``set_width`` at eval.

    Args:
        width: number of features of the layer this follows.
        settings: how the cut is drawn in training (``CutSettings``; its fields can also be
            given as keywords, e.g. ``StructuralDropout(256, p=0.5, lower_bound=8)``). Each knob
            is readable on the layer (``layer.p``, ``layer.lower_bound``, ...).
        dim: the feature dimension.
        mode: ``"mask"`` keeps the tensor shape (drop-in anywhere); ``"slice"`` returns only the
            kept features, for a next layer that accepts fewer inputs (``SlicedLinear``).
        axis: the model width this layer follows, so that layers of different sizes shrink
            together (a width multiplier, as slimmable networks use). At model width ``w`` (a
            cut drawn, or ``set_width``) the layer keeps ``ceil(w * width / axis)`` features;
            its cut grid and ``lower_bound`` are on the axis. None (default): the axis is the
            layer's own width and it keeps ``min(w, width)`` features.
    """

    def __init__(
        self,
        width: int,
        settings: CutSettings | None = None,
        *,
        dim: int = -1,
        mode: str = "mask",
        axis: int | None = None,
        **knobs,
    ):
        super().__init__()
        check_positive_int(width, "width", " (the number of features)")
        if axis is not None:
            check_positive_int(axis, "axis", " (the model width this layer follows) or None")
        if settings is not None and knobs:
            raise ValueError("give either settings or knobs as keywords, not both")
        self.settings = settings if settings is not None else CutSettings(**knobs)
        self.proportional = axis is not None
        self.axis = width if axis is None else axis
        if self.settings.lower_bound > self.axis:
            what = "axis" if self.proportional else "layer width"
            raise ValueError(
                f"lower_bound={self.settings.lower_bound} is above the {what} {self.axis}"
            )
        if mode not in ("mask", "slice"):
            raise ValueError(f"mode must be 'mask' or 'slice', got {mode!r}")
        self.width, self.dim, self.mode = width, dim, mode
        # The grid and its probabilities are fixed: built once, not at every training step.
        self._grid = torch.tensor(self.grid())
        self._weights = self._cut_weights()
        self.eval_width: int | None = None  # None: full width
        self.cut: int | None = None  # set by `share_cuts` for the current step; else drawn here
        self.pinned = False  # True inside `fixed_cut`: `share_cuts` leaves `cut` alone
        self.copy_cuts: list[int | None] | None = None  # set by `cuts_per_copy`

    def kept(self, width: int | None) -> int:
        """Features kept at model width ``width`` (None: all of them); see ``axis``."""
        if width is None:
            return self.width
        if self.proportional:
            return -(-width * self.width // self.axis)  # ceil, in exact integer arithmetic
        return min(width, self.width)

    def kept_per_sample(self, cuts: Tensor) -> Tensor:
        """``kept`` of each of ``cuts`` (on the axis, as ``draw_cuts`` gives them)."""
        if self.proportional:
            return -torch.div(-cuts * self.width, self.axis, rounding_mode="floor")
        return cuts.clamp(max=self.width)

    @property
    def num_cuts(self) -> int:
        """How many cuts the grid holds (the last one is always the full width)."""
        return math.ceil((self.axis - self.lower_bound) / self.step) + 1

    def grid(self) -> list[int]:
        """The cuts a truncating step can draw, on the axis, smallest first; the last is the full
        width (``kept`` maps a cut to the features kept)."""
        return [min(self.lower_bound + i * self.step, self.axis) for i in range(self.num_cuts)]

    def draw_cut(self, generator: torch.Generator | None = None) -> int:
        """One training step's cut on the axis: full width with probability ``1 - p``, else from
        the grid."""
        if self.p == 0.0 or (self.p < 1.0 and torch.rand((), generator=generator) >= self.p):
            return self.axis
        if self.distribution == "uniform" and self.smallest_p == 0.0:
            i = torch.randint(self.num_cuts, (), generator=generator)
        else:
            i = torch.multinomial(self._weights, 1, generator=generator)
        return int(self._grid[i])

    def _cut_weights(self) -> Tensor:
        """Probability of each cut of the grid under ``distribution`` and ``smallest_p``."""
        grid = self._grid.double()
        if self.distribution == "uniform":
            weights = torch.ones_like(grid)
        elif self.distribution == "log_uniform":
            weights = 1.0 / grid
        else:
            weights = (1.0 - self.geometric_p) ** torch.arange(len(grid), dtype=torch.float64)
        weights = weights / weights.sum() * (1.0 - self.smallest_p)
        weights[0] += self.smallest_p
        return weights

    def draw_cuts(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` independent cuts on the axis (one per sample): each truncates with probability
        ``p``."""
        picks = torch.multinomial(self._weights, n, replacement=True, generator=generator)
        keep_all = torch.rand(n, generator=generator) >= self.p
        return torch.where(keep_all, self.axis, self._grid[picks])

    def mask_per_sample(self, x: Tensor) -> Tensor:
        """``x`` with each sample cut at its own drawn cut (rescaled if ``rescale``). A sample is
        one index of the dimensions before ``dim`` (a row of ``[..., width]``); the dimensions
        after it share its cut (a convolution's positions: ``[N, C, H, W]`` with ``dim=1``)."""
        dim = self.dim % x.dim()
        if x.shape[dim] != self.width:
            raise ValueError(
                f"per-sample cuts need {self.width} features in dimension {dim}, got shape "
                f"{tuple(x.shape)}"
            )
        samples, after = x.shape[:dim], (1,) * (x.dim() - dim - 1)
        cuts = self.kept_per_sample(self.draw_cuts(math.prod(samples)))
        if self.copy_cuts is not None:  # the batch holds copies; some keep a fixed cut
            copies = cuts.view(len(self.copy_cuts), -1)
            for copy, cut in zip(copies, self.copy_cuts, strict=True):
                if cut is not None:
                    copy.fill_(self.kept(cut))
        cuts = cuts.to(x.device).view(samples + (1,) + after)
        kept = torch.arange(self.width, device=x.device).view((self.width,) + after) < cuts
        factor = self.width / cuts.to(x.dtype) if self.rescale else 1.0
        return x * kept.to(x.dtype) * factor

    def set_width(self, width: int | None) -> None:
        """Fix the features kept at evaluation (None: all; ``set_width(model, w)`` maps a model
        width to each layer's through ``kept``)."""
        self.eval_width = None if width is None else check_width(width, self.width)

    def active_width(self) -> int:
        """The number of features kept by this forward pass."""
        if self.training:
            if self.masks_per_sample:  # every unit is computed; `keep` masks each sample
                return self.width
            return self.cut if self.cut is not None else self.kept(self.draw_cut())
        return self.width if self.eval_width is None else self.eval_width

    @property
    def masks_per_sample(self) -> bool:
        """True when this forward pass cuts each sample on its own (training, ``per_sample``)."""
        return self.training and self.per_sample and not self.pinned

    def forward(self, x: Tensor) -> Tensor:
        return self.keep(x, self.active_width())

    def keep(self, x: Tensor, cut: int) -> Tensor:
        """Apply this layer's dropout to ``x`` at ``cut`` (the cut a caller already drew for
        this pass), or each sample at its own cut when ``masks_per_sample``."""
        if self.masks_per_sample:
            return self.mask_per_sample(x)
        drop = structural_dropout_mask if self.mode == "mask" else structural_dropout
        return drop(x, cut, self.width, self.rescale, self.dim)

    def extra_repr(self) -> str:
        knobs = ", ".join(f"{name}={getattr(self.settings, name)}" for name in CUT_KNOBS)
        axis = f", axis={self.axis}" if self.proportional else ""
        return f"width={self.width}{axis}, {knobs}, mode={self.mode}, eval_width={self.eval_width}"


# Every knob of the settings reads as an attribute of the layer (``layer.p``), never a copy.
for _name in CUT_KNOBS:
    setattr(
        StructuralDropout, _name, property(lambda self, name=_name: getattr(self.settings, name))
    )


def structural_layers(model: nn.Module) -> list[StructuralDropout]:
    return [m for m in model.modules() if isinstance(m, StructuralDropout)]


def set_width(model: nn.Module, width: int | None) -> None:
    """Set the evaluation width of every structural dropout layer of ``model`` in one call.

    Each layer keeps ``layer.kept(width)`` units: a layer narrower than ``width`` all of them, a
    layer with an ``axis`` its share; ``width`` above ``model_width(model)`` is an error. ``None``
    restores full width.
    """
    layers = structural_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no StructuralDropout layer to set")
    if width is not None:
        check_width(width, max(layer.axis for layer in layers))
    for layer in layers:
        layer.set_width(None if width is None else layer.kept(width))


def model_width(model: nn.Module) -> int:
    """The largest width a sweep can set: the widest axis of ``model``'s structural dropout
    layers (a layer's own width unless it follows an ``axis``)."""
    layers = structural_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no StructuralDropout layer")
    return max(layer.axis for layer in layers)


def draw_shared_cut(layers: list[StructuralDropout], generator=None) -> int:
    """One cut for all ``layers``, drawn on the grid of the widest axis among them; every layer
    must draw like it (all ``CutSettings`` knobs but ``rescale`` equal), else the draw would
    silently follow the widest layer's settings."""
    widest = max(layers, key=lambda layer: layer.axis)
    differing = [
        layer.settings for layer in layers if not layer.settings.draws_like(widest.settings)
    ]
    if differing:
        raise ValueError(
            "a shared cut needs the same cut settings (all but rescale) in every layer; "
            f"{widest.settings} differs from {differing[0]}"
        )
    return widest.draw_cut(generator)


def share_cuts(model: nn.Module) -> RemovableHandle:
    """Make every training forward of ``model`` use one cut for all its layers.

    Before each training forward, one cut is drawn and every layer keeps ``layer.kept(cut)``
    units, which is exactly the model a later ``set_width(model, cut)`` evaluates. The cut holds
    for the whole forward, even if a layer is called several times in it.
    """

    def draw(module: nn.Module, args) -> None:
        if module.training:
            layers = [layer for layer in structural_layers(module) if not layer.pinned]
            if layers:
                cut = draw_shared_cut(layers)
                for layer in layers:
                    layer.cut = layer.kept(cut)

    draw.draws_shared_cut = True  # so `export` can remove it
    return model.register_forward_pre_hook(draw)


@contextmanager
def fixed_cut(model: nn.Module, width: int) -> Iterator[None]:
    """Train at a chosen cut instead of a random one (e.g. to train the smallest and the full
    width in the same step). Each layer keeps ``layer.kept(width)`` units."""
    layers = structural_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no StructuralDropout layer")
    check_width(width, max(layer.axis for layer in layers))
    for layer in layers:
        layer.cut, layer.pinned = layer.kept(width), True
    try:
        yield
    finally:
        for layer in layers:
            layer.cut, layer.pinned = None, False


@contextmanager
def cuts_per_copy(model: nn.Module, cuts: list[int | None]) -> Iterator[None]:
    """For a batch made of ``len(cuts)`` copies of one batch (stacked on the first dimension),
    every per-sample layer cuts the rows of copy ``i`` at ``cuts[i]`` (None: each row draws its
    own cut), so several widths train in one forward pass."""
    layers = structural_layers(model)
    if not layers or not all(layer.per_sample for layer in layers):
        raise ValueError("cuts per copy need per-sample structural dropout in every layer")
    for layer in layers:
        layer.copy_cuts = list(cuts)
    try:
        yield
    finally:
        for layer in layers:
            layer.copy_cuts = None
