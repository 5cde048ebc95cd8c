"""Export one width of a structural-dropout model as a plain, smaller PyTorch model, and save it.

``export(model, width)`` copies the model and replaces every truncatable part by standard layers
holding only the kept units, with the ``width / c`` rescaling folded into the next layer's
weights. It handles:

- every ``Truncatable`` part of the model (``TruncatableMLP``, the MLPs of this repository, or
  a layer of your own that implements the protocol), through its own ``export(width)``;
- ``nn.Sequential`` blocks of a user's own model where a ``StructuralDropout`` sits between two
  ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` layers, with only BatchNorm (before the cut),
  pooling and element-wise activations or dropout in between, and a ``Flatten`` from a
  convolution's channels into a ``Linear``, e.g. ``Linear → BatchNorm1d → ReLU →
  StructuralDropout → Linear`` or ``Conv2d → ReLU → MaxPool2d → StructuralDropout(dim=1) →
  Flatten → Linear``.

Anything else holding a ``StructuralDropout`` is an error: guessing how to slice it could give a
model that silently computes something else.

``save_export`` writes the exported module as ``weights.pt`` (a state dict) with
``architecture.json`` (for ``nn.Sequential`` models of ``torch.nn`` layers: rebuilt with
``torch.nn`` alone) and ``model.pt2`` (``torch.export``: graph and weights, reloaded with
``torch.export.load`` without this library or the model's code).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.export import Dim

from .io import atomic_write
from .layers.dropout import (
    StructuralDropout,
    check_width,
    model_width,
    rescale_factor,
    structural_layers,
)
from .layers.mlp import dense_batch_norm, dense_linear
from .truncatable import Truncatable

# Modules that act on each feature on its own: a cut may pass through them unchanged.
ELEMENTWISE = (
    nn.Identity,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Softplus,
    nn.Dropout,
)
_PRODUCERS = (nn.Linear, nn.Conv1d, nn.Conv2d)  # layers whose output units a cut can slice away
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
# Modules that act on each channel on its own (a cut passes them on either side).
CHANNELWISE = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveAvgPool2d,
    nn.Dropout2d,
)
_CONV_ARGUMENTS = (
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "dilation",
    "groups",
    "bias",
    "padding_mode",
)

# Constructor arguments of the torch.nn layers ``architecture.json`` can describe (read back from
# the module's attributes of the same name); ``bias`` is stored as a bool.
_ARGUMENTS = {
    nn.Linear: ("in_features", "out_features", "bias"),
    nn.Conv1d: _CONV_ARGUMENTS,
    nn.Conv2d: _CONV_ARGUMENTS,
    **{
        kind: ("num_features", "eps", "momentum", "affine", "track_running_stats")
        for kind in (nn.BatchNorm1d, nn.BatchNorm2d)
    },
    nn.MaxPool2d: ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"),
    nn.AvgPool2d: (
        "kernel_size",
        "stride",
        "padding",
        "ceil_mode",
        "count_include_pad",
        "divisor_override",
    ),
    nn.AdaptiveAvgPool2d: ("output_size",),
    nn.Flatten: ("start_dim", "end_dim"),
    nn.LeakyReLU: ("negative_slope",),
    nn.ELU: ("alpha",),
    nn.GELU: ("approximate",),
    nn.Dropout: ("p",),
    nn.Softplus: ("beta", "threshold"),
    **{kind: () for kind in (nn.Identity, nn.ReLU, nn.ReLU6, nn.SiLU, nn.Mish, nn.Hardswish)},
    **{kind: () for kind in (nn.Tanh, nn.Sigmoid)},
}


@torch.no_grad()
def export(model: nn.Module, width: int | None = None) -> nn.Module:
    """A plain copy of ``model`` (eval mode) holding only the units kept at ``width`` (None: full
    width); its outputs equal ``model``'s after ``set_width(model, width)`` in eval mode."""
    layers = structural_layers(model)
    if width is not None:
        if not layers:
            raise ValueError(f"{type(model).__name__} has no StructuralDropout layer to cut")
        check_width(width, model_width(model))
    dense = _replace_truncatable(_copy_without_transients(model).eval(), width)
    left = [name for name, m in dense.named_modules() if isinstance(m, StructuralDropout)]
    if left:
        raise ValueError(
            f"cannot export the StructuralDropout layers at {left}: export handles Truncatable "
            "parts "
            "and nn.Sequential blocks where the layer sits between two nn.Linear / nn.Conv1d / "
            "nn.Conv2d layers (with only BatchNorm, pooling, element-wise modules and a Flatten "
            "between)"
        )
    for module in dense.modules():  # share_cuts' hooks: no cut is left to draw
        for key, hook in list(module._forward_pre_hooks.items()):
            if getattr(hook, "draws_shared_cut", False):
                del module._forward_pre_hooks[key]
    return dense


def _copy_without_transients(model: nn.Module) -> nn.Module:
    """``deepcopy`` that leaves out plain tensor attributes (a forward's saved outputs, which may
    be part of an autograd graph and cannot be copied); parameters and buffers are copied."""
    saved = []
    for module in model.modules():
        for name, value in list(vars(module).items()):
            if isinstance(value, Tensor) and not isinstance(value, nn.Parameter):
                saved.append((module, name, value))
                setattr(module, name, None)
    try:
        return copy.deepcopy(model)
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


def _replace_truncatable(module: nn.Module, width: int | None) -> nn.Module:
    """``module`` with every truncatable part replaced by its dense export (in place, except that
    ``module`` itself may be replaced: the returned module is the one to use)."""
    if isinstance(module, Truncatable):
        return module.export(width)
    for name, child in module.named_children():
        setattr(module, name, _replace_truncatable(child, width))
    if isinstance(module, nn.Sequential) and any(isinstance(m, StructuralDropout) for m in module):
        return _export_sequential(module, width)
    return module


def _export_sequential(block: nn.Sequential, width: int | None) -> nn.Sequential:
    """Slice the layers around each ``StructuralDropout`` of ``block`` and drop the layer."""
    layers = list(block)
    for i, drop in enumerate(layers):
        if not isinstance(drop, StructuralDropout):
            continue
        where = f"{type(drop).__name__} at index {i} of the nn.Sequential"
        k = drop.kept(width)
        producer = _neighbour(layers, i, -1, where)
        consumer = _neighbour(layers, i, +1, where)
        flattened = any(isinstance(m, nn.Flatten) for m in layers[i + 1 : consumer])
        for kind, layer in (("before", producer), ("after", consumer)):
            if not _cuts_along(drop, layers[layer]) and not (kind == "after" and flattened):
                raise ValueError(
                    f"{where} cuts dim {drop.dim}, not the feature dim of the "
                    f"{type(layers[layer]).__name__} {kind} it"
                )
        if _out_units(layers[producer]) != drop.width:
            raise ValueError(
                f"{where} has width {drop.width} but the layer before it has "
                f"{_out_units(layers[producer])} outputs"
            )
        positions = _positions(layers[consumer], drop.width, where) if flattened else 1
        layers[producer] = _keep_outputs(layers[producer], k)
        for j in range(producer + 1, i):
            if isinstance(layers[j], _NORMS):
                layers[j] = dense_batch_norm(layers[j], k)
        layers[consumer] = _keep_inputs(
            layers[consumer], k, rescale_factor(k, drop.width, drop.rescale), positions
        )
        layers[i] = None
    return nn.Sequential(*[layer for layer in layers if layer is not None]).eval()


def _neighbour(layers: list, i: int, direction: int, where: str) -> int:
    """Index of the nearest Linear / Conv from ``i`` in ``direction``, past only BatchNorm
    (before the cut), pooling, element-wise modules and (after the cut) a ``Flatten``."""
    j = i + direction
    while 0 <= j < len(layers):
        layer = layers[j]
        if isinstance(layer, _PRODUCERS):
            return j
        passable = ELEMENTWISE + CHANNELWISE + (_NORMS if direction < 0 else (nn.Flatten,))
        if not isinstance(layer, passable):
            raise ValueError(
                f"{where}: cannot fold the cut through {type(layer).__name__}; only "
                "BatchNorm (before the cut), pooling, element-wise modules and a Flatten (after "
                "it) may sit between it and the nn.Linear / nn.Conv layers around it"
            )
        j += direction
    side = "before" if direction < 0 else "after"
    raise ValueError(f"{where} has no nn.Linear / nn.Conv layer {side} it in its nn.Sequential")


def _positions(consumer: nn.Module, channels: int, where: str) -> int:
    """The inputs of the ``Linear`` after a ``Flatten`` that each cut channel feeds."""
    if not isinstance(consumer, nn.Linear) or consumer.in_features % channels:
        raise ValueError(
            f"{where}: the layer after the Flatten must be an nn.Linear whose inputs are the "
            f"{channels} channels times their positions"
        )
    return consumer.in_features // channels


def _cuts_along(drop: StructuralDropout, layer: nn.Module) -> bool:
    """True if ``drop`` cuts the dimension that holds ``layer``'s features."""
    if isinstance(layer, nn.Linear):
        return drop.dim == -1
    if isinstance(layer, nn.Conv2d):
        return drop.dim in (1, -3)  # [B, C, H, W]
    return drop.dim in (1, -2)  # Conv1d: [B, C, L]


def _out_units(layer: nn.Module) -> int:
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


def _keep_outputs(layer: nn.Module, k: int) -> nn.Module:
    if isinstance(layer, nn.Linear):
        return dense_linear(layer, k, layer.in_features)
    if layer.groups != 1:
        raise ValueError(f"cannot cut the outputs of a grouped {type(layer).__name__}")
    dense = _conv_like(layer, layer.in_channels, k)
    dense.weight.copy_(layer.weight[:k])
    if layer.bias is not None:
        dense.bias.copy_(layer.bias[:k])
    return dense


def _keep_inputs(layer: nn.Module, k: int, scale: float, positions: int = 1) -> nn.Module:
    """``layer`` reading only the first ``k`` input channels (each ``positions`` inputs wide,
    after a ``Flatten``: channels come first), their weights multiplied by ``scale``."""
    if isinstance(layer, nn.Linear):
        return dense_linear(layer, layer.out_features, k * positions, scale)
    if layer.groups != 1:
        raise ValueError(f"cannot cut the inputs of a grouped {type(layer).__name__}")
    dense = _conv_like(layer, k, layer.out_channels)
    dense.weight.copy_(layer.weight[:, :k] * scale)
    if layer.bias is not None:
        dense.bias.copy_(layer.bias)
    return dense


def _conv_like(conv: nn.Module, in_channels: int, out_channels: int) -> nn.Module:
    return type(conv)(
        in_channels,
        out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        conv.bias is not None,
        conv.padding_mode,
    )


def describe(module: nn.Module) -> dict:
    """A JSON description of an ``nn.Sequential`` of torch.nn layers, from which
    ``rebuild`` (or the three lines of it a user needs) builds the same architecture.

    Raises ``TypeError`` for anything else (a model with its own forward)."""
    if not isinstance(module, nn.Sequential):
        raise TypeError(f"only an nn.Sequential can be described, not {type(module).__name__}")
    layers = []
    for layer in module:
        if type(layer) not in _ARGUMENTS:
            raise TypeError(f"cannot describe a {type(layer).__name__} layer")
        args = {name: getattr(layer, name) for name in _ARGUMENTS[type(layer)]}
        if "bias" in args:
            args["bias"] = layer.bias is not None
        layers.append({"type": type(layer).__name__, "args": args})
    return {"type": "Sequential", "layers": layers}


def rebuild(description: dict) -> nn.Sequential:
    """The module ``describe`` described (weights not loaded), from torch.nn alone."""
    return nn.Sequential(
        *(getattr(nn, layer["type"])(**layer["args"]) for layer in description["layers"])
    )


def save_export(module: nn.Module, out_dir: str | Path, example_inputs: Sequence[Tensor]) -> dict:
    """Write ``module`` (from ``export``) to ``out_dir``; returns the written paths by name.

    ``example_inputs``: one call's inputs. Every dimension the model does not tie to a weight
    may vary at load time (batch, points, image size); a dimension of size 1 in the example is
    baked in, so use a batch of 2 or more.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    paths = {"weights": out_dir / "weights.pt", "program": out_dir / "model.pt2"}
    atomic_write(paths["weights"], lambda tmp: torch.save(module.state_dict(), tmp))
    try:
        architecture = {"format": "torch.nn", "module": describe(module)}
    except TypeError:  # a model with its own forward: its architecture lives in model.pt2
        architecture = {"format": "torch.export", "class": type(module).__qualname__}
    architecture["repr"] = str(module).splitlines()
    paths["architecture"] = out_dir / "architecture.json"
    atomic_write(
        paths["architecture"],
        lambda tmp: tmp.write_text(json.dumps(architecture, indent=2) + "\n"),
    )
    # Copies: the program keeps its example inputs, and a view would save its whole base tensor.
    inputs = tuple(x.detach().clone() for x in example_inputs)
    dynamic = tuple({d: Dim.AUTO for d in range(x.dim())} for x in inputs)
    with torch.no_grad():
        program = torch.export.export(module, inputs, dynamic_shapes=dynamic)
    atomic_write(paths["program"], lambda tmp: torch.export.save(program, tmp))
    return paths


def load_export(out_dir: str | Path) -> nn.Module:
    """The module ``save_export`` wrote: rebuilt from torch.nn when ``architecture.json`` allows,
    else the ``torch.export`` program."""
    out_dir = Path(out_dir)
    architecture = json.loads((out_dir / "architecture.json").read_text())
    if architecture["format"] == "torch.nn":
        module = rebuild(architecture["module"])
        module.load_state_dict(torch.load(out_dir / "weights.pt", weights_only=True))
        return module.eval()
    return torch.export.load(out_dir / "model.pt2").module()
