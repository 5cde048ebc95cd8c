"""ONNX: an exported width as ``model.onnx``, and its check with onnxruntime.

``save_onnx`` writes a module from ``export`` with torch's ONNX exporter (``torch.onnx.export``,
which needs the ``onnx`` and ``onnxscript`` packages), its batch and other free dimensions dynamic;
``onnx_max_abs_diff`` runs the file with onnxruntime and returns its largest difference from the
PyTorch module on some inputs. The packages are optional (``pip install
"structural-dropout[onnx]"``); without them these functions raise an ``ImportError`` that says so.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.export import Dim

INSTALL = 'pip install "structural-dropout[onnx]" (or uv sync --extra onnx)'


def _require(*names: str) -> list:
    """The modules ``names``, or one ImportError naming the missing ones and how to install."""
    found, missing = [], []
    for name in names:
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            missing.append(name)
    if missing:
        raise ImportError(f"ONNX needs {', '.join(missing)}, not installed: {INSTALL}")
    return found


def save_onnx(
    module: nn.Module, path: str | Path, example_inputs: Sequence[Tensor], opset: int = 18
) -> Path:
    """Write ``module`` (in eval mode) to ``path`` as ONNX. As in ``save_export``, every
    dimension the model does not tie to a weight stays dynamic (batch, points, image size,
    queries); a dimension of size 1 in ``example_inputs`` is baked in, so give a batch of 2 or
    more."""
    _require("onnx", "onnxscript")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    inputs = tuple(x.detach().clone() for x in example_inputs)
    if any(x.dim() == 0 or x.shape[0] < 2 for x in inputs):
        raise ValueError("give example inputs with a batch of 2 or more (a batch of 1 is baked in)")
    dynamic = tuple({d: Dim.AUTO for d in range(x.dim())} for x in inputs)
    with torch.no_grad():
        program = torch.onnx.export(
            module.eval(), inputs, dynamo=True, dynamic_shapes=dynamic, opset_version=opset,
            verbose=False,
        )  # fmt: skip
    tmp = path.with_name(path.name + ".tmp")
    program.save(str(tmp))
    tmp.replace(path)  # a reader never sees half a file
    return path


def onnx_session(path: str | Path, threads: int | None = None):
    """An onnxruntime session of ``path`` on the CPU (``threads``: its intra-op threads, e.g.
    torch's, so that both runtimes are timed on the same cores; None: onnxruntime's default)."""
    (ort,) = _require("onnxruntime")
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_run(session, inputs: Sequence[Tensor]) -> list[Tensor]:
    """The session's outputs on ``inputs`` (in the order the model takes them)."""
    feed = {arg.name: x.detach().cpu().numpy() for arg, x in zip(session.get_inputs(), inputs,
                                                                  strict=True)}  # fmt: skip
    return [torch.from_numpy(out) for out in session.run(None, feed)]


def onnx_max_abs_diff(path: str | Path, module: nn.Module, inputs: Sequence[Tensor]) -> float:
    """The largest absolute difference between ``path`` run by onnxruntime and ``module`` on
    ``inputs`` (a module with one output)."""
    with torch.no_grad():
        expected = module.eval()(*inputs)
    (output,) = onnx_run(onnx_session(path), inputs)
    if output.shape != expected.shape:
        raise ValueError(f"the ONNX model gives shape {tuple(output.shape)}, "
                         f"the module {tuple(expected.shape)}")  # fmt: skip
    return (output - expected.cpu()).abs().max().item()
