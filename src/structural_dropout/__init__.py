"""Structural Dropout: train once, keep any prefix width of the hidden layers."""

from .export import export, load_export, save_export
from .layer import (
    StructuralDropout,
    fixed_cut,
    model_width,
    set_width,
    share_cuts,
    structural_dropout,
    structural_dropout_mask,
)
from .mlp import PLAIN, DropoutSpec, SlicedLinear, TruncatableLinear, TruncatableMLP
from .params import count_params

__all__ = [
    "PLAIN",
    "DropoutSpec",
    "SlicedLinear",
    "StructuralDropout",
    "TruncatableLinear",
    "TruncatableMLP",
    "count_params",
    "export",
    "fixed_cut",
    "load_export",
    "model_width",
    "save_export",
    "set_width",
    "share_cuts",
    "structural_dropout",
    "structural_dropout_mask",
]
