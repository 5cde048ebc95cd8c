"""``widths.csv``: what each exported width costs (the curve users pick a width from)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from structural_dropout import export, set_width

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


@torch.inference_mode()
def width_costs(widths: dict[str, list[int]], batches: dict[str, list[int]], min_run_time: float):
    """Rows ``model, width, params, macs_per_sample, batch, latency_ms`` of each exported width
    (for PointNet a sample is one cloud of 1024 points; for the LIIF decoder one query of one
    ensemble corner: a pixel takes four; for LeNet-5 one 28x28 image; for the character GPT one
    window of its full context, 128 characters: per character, divide by 128)."""
    rows = []
    for name, chosen in widths.items():
        builders = {"pointnet": pointnet, "lenet5": lenet5, "char_gpt": char_gpt}
        model = builders[name]() if name in builders else structural_mlp(name).eval()
        for width in chosen:
            set_width(model, width)
            exported = export(model, width)
            params = sum(p.numel() for p in exported.parameters())
            macs = multiply_adds(exported, example_input(name, 2)) // 2
            for batch in batches[name]:
                x = example_input(name, batch)
                seconds = seconds_per_call(
                    lambda exported=exported, x=x: exported(x), min_run_time, fastest=True
                )
                rows.append(
                    {
                        "model": name,
                        "width": width,
                        "params": params,
                        "macs_per_sample": macs,
                        "batch": batch,
                        "latency_ms": seconds * 1e3,
                    }
                )
    return rows


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
