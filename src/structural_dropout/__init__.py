"""Structural Dropout: train once, keep any prefix width of the hidden layers.

Three rooms, dependencies pointing one way:

- the core (this package's top level; imports torch only): the layer (``layers``), its knobs
  (``spec``), truncatable layers and the protocol they implement (``truncatable``), parameter
  counting (``params``), export (``export``; ONNX: ``onnx_export``), BatchNorm recalibration
  (``batchnorm``) and the multi-width training rules (``rules``);
- ``structural_dropout.baselines``: the methods we compare against (Dropout Compaction, Drop
  Pruning, unit sorting), built on the core;
- ``structural_dropout.lab``: the experiment harness (Hydra, pandas, matplotlib): building a run
  from a config, the training loop, the sweep, checkpoints, provenance and reports.
"""

from .batchnorm import recalibrated_norms, width_dependent_norms
from .export import export, load_export, save_export
from .layers.conv import SlicedConv2d, TruncatableCNN, TruncatableConv2d
from .layers.dropout import (
    StructuralDropout,
    fixed_cut,
    model_width,
    set_width,
    share_cuts,
    structural_dropout,
    structural_dropout_mask,
)
from .layers.mlp import SlicedLinear, TruncatableLinear, TruncatableMLP
from .layers.transformer import (
    CausalSelfAttention,
    TransformerBlock,
    TruncatableFeedForward,
    TruncatableSelfAttention,
    export_shape,
    set_shape,
    shape_params,
)
from .onnx_export import onnx_max_abs_diff, save_onnx
from .params import count_params
from .rules import Sandwich, sandwich_loss
from .spec import PLAIN, CutSettings, DropoutSpec
from .truncatable import Truncatable, truncatable_parts

__all__ = [
    "PLAIN",
    "CausalSelfAttention",
    "CutSettings",
    "DropoutSpec",
    "Sandwich",
    "SlicedConv2d",
    "SlicedLinear",
    "StructuralDropout",
    "TransformerBlock",
    "Truncatable",
    "TruncatableCNN",
    "TruncatableConv2d",
    "TruncatableFeedForward",
    "TruncatableLinear",
    "TruncatableMLP",
    "TruncatableSelfAttention",
    "count_params",
    "export",
    "export_shape",
    "fixed_cut",
    "load_export",
    "model_width",
    "onnx_max_abs_diff",
    "recalibrated_norms",
    "sandwich_loss",
    "save_export",
    "save_onnx",
    "set_shape",
    "set_width",
    "shape_params",
    "share_cuts",
    "structural_dropout",
    "structural_dropout_mask",
    "truncatable_parts",
    "width_dependent_norms",
]
