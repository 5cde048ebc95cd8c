"""``widths.csv``: what each exported width costs (the curve users pick a width from)."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from structural_dropout import export, set_width
from structural_dropout.onnx_export import onnx_run, onnx_session, save_onnx

from .models import (
    char_gpt,
    example_input,
    lenet5,
    magnitude_pruned,
    pointnet,
    structural_mlp,
)
from .timing import seconds_per_call


def multiply_adds(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of one forward pass on ``x`` (torch's FLOP counter counts two per MAC)."""
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


def width_costs(
    widths: dict[str, list[int]],
    batches: dict[str, list[int]],
    min_run_time: float,
    onnx: Sequence[str] = (),
):
    """Rows ``model, width, params, macs_per_sample, batch, latency_ms, onnxruntime_ms,
    onnx_max_abs_diff`` of each exported width (for PointNet a sample is one cloud of 1024
    points; for the LIIF decoder one query of one ensemble corner: a pixel takes four; for LeNet-5
    one 28x28 image; for the character GPT one window of its full context, 128 characters: per
    character, divide by 128). For the models named in ``onnx``, the same exported model also as
    ONNX, run by onnxruntime with torch's thread count (empty cells for the others)."""
    rows = []
    for name, chosen in widths.items():
        builders = {"pointnet": pointnet, "lenet5": lenet5, "char_gpt": char_gpt}
        model = builders[name]() if name in builders else structural_mlp(name).eval()
        for width in chosen:
            set_width(model, width)
            with torch.inference_mode():
                exported = export(model, width)
                macs = multiply_adds(exported, example_input(name, 2)) // 2
            params = sum(p.numel() for p in exported.parameters())
            session = _onnx_session(exported, name) if name in onnx else None
            for batch in batches[name]:
                x = example_input(name, batch)
                with torch.inference_mode():
                    seconds = seconds_per_call(
                        lambda exported=exported, x=x: exported(x), min_run_time, fastest=True
                    )
                row = {"model": name, "width": width, "params": params,
                       "macs_per_sample": macs, "batch": batch, "latency_ms": seconds * 1e3,
                       "onnxruntime_ms": None, "onnx_max_abs_diff": None}  # fmt: skip
                if session is not None:
                    feed = {session.get_inputs()[0].name: x.numpy()}
                    runtime = seconds_per_call(lambda s=session, f=feed: s.run(None, f),
                                               min_run_time, fastest=True)  # fmt: skip
                    (output,) = onnx_run(session, (x,))
                    with torch.inference_mode():
                        diff = (output - exported(x)).abs().max().item()
                    row |= {"onnxruntime_ms": runtime * 1e3, "onnx_max_abs_diff": diff}
                rows.append(row)
    return rows


def _onnx_session(exported: torch.nn.Module, name: str):
    """``exported`` as ONNX (a temporary file) in an onnxruntime session with torch's threads."""
    with tempfile.TemporaryDirectory() as folder:
        path = save_onnx(exported, Path(folder) / "model.onnx", (example_input(name, 2),))
        return onnx_session(path, threads=torch.get_num_threads())


@torch.inference_mode()
def pruned_costs(sparsities: list[float], batches: list[int], min_run_time: float) -> list[dict]:
    """Rows ``model, sparsity, nonzero_params, batch, dense_ms, sparse_ms`` of the full LeNet-5
    magnitude-pruned to each ``sparsity`` (Drop Pruning's models as they run): with its zeros
    stored dense, and with its linear layers in CSR (torch's sparse kernels). Latency does not
    depend on which weights survive, only on how many, so freshly initialised weights stand in
    for the trained ones."""
    full = export(lenet5())
    rows = []
    for sparsity in sparsities:
        models = {kind: magnitude_pruned(full, sparsity, sparse=kind == "sparse")
                  for kind in ("dense", "sparse")}  # fmt: skip
        nonzero = sum(int((p != 0).sum()) for p in models["dense"].parameters())
        for batch in batches:
            x = example_input("lenet5", batch)
            seconds = {
                kind: seconds_per_call(lambda m=model, x=x: m(x), min_run_time, fastest=True)
                for kind, model in models.items()
            }
            rows.append(
                {
                    "model": "lenet5",
                    "sparsity": sparsity,
                    "nonzero_params": nonzero,
                    "batch": batch,
                    "dense_ms": seconds["dense"] * 1e3,
                    "sparse_ms": seconds["sparse"] * 1e3,
                }
            )
    return rows
