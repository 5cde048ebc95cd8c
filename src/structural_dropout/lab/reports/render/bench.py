"""The benchmarks' tables (results/bench/)."""

from __future__ import annotations

import json
from pathlib import Path
from statistics import geometric_mean

import pandas as pd

from .format import commit, count, hardware, markdown, percent


def _duration(seconds: float) -> str:
    return f"{seconds:.4g} s" if seconds >= 1 else f"{1e3 * seconds:.4g} ms"


# The speed claims' targets (ratio candidate / baseline at most this), by benchmark and, where
# only some cases carry a claim, the start of the case's name.
BENCH_TARGETS = {
    ("export_vs_native", ""): 1.05,
    ("sd_train_step_vs_plain", ""): 0.8,
    ("sweep_cached_vs_naive", ""): 1 / 50,
    ("mnist_pipeline_vs_dataloader", ""): 1 / 5,
    ("method_step_vs_plain", "mnist nested_distill"): 2.0,
    ("lenet5_small_vs_full", "exported w=127 batch=256"): 0.35,
}


def _bench_target(benchmark: str, case: str) -> float | None:
    for (name, prefix), target in BENCH_TARGETS.items():
        if name == benchmark and case.startswith(prefix):
            return target
    return None


def _target_cells(benchmark: str, case: str, ratios: pd.Series) -> list[str]:
    """The target of ``case`` (the first of a group) and whether ``ratios`` meet it: every one,
    or for a group of like cases their geometric mean (``POOLED``)."""
    target = _bench_target(benchmark, case)
    if target is None:
        return ["", ""]
    if benchmark in POOLED:
        met = geometric_mean(ratios.tolist()) <= target
        return [f"geometric mean ≤ {target:.3g}", "met" if met else "**missed**"]
    met = (ratios <= target).all()
    return [f"≤ {target:.3g}", "met" if met else "**missed**"]


# Benchmarks whose like cases are one row: the export check and its control (identical models),
# judged by the geometric mean, since one case alone moves by its placement (the control's range).
POOLED = ("export_vs_native", "identical_dense_models")


def bench(results: Path) -> str:
    """Every benchmark's ratio against its target; the export check's like cases (and its
    control's) as one row: their range and geometric mean."""
    table = pd.read_csv(results / "bench" / "bench.csv")
    rows = []
    for name, group in table.groupby("benchmark", sort=False):
        if name in POOLED:
            ratio = (f"{group['ratio'].min():.3f} – {group['ratio'].max():.3f} "
                     f"(geometric mean {geometric_mean(group['ratio'].tolist()):.3f})")  # fmt: skip
            rows.append([f"`{name}`", f"{len(group)} cases", ratio, "", "",
                         *_target_cells(name, group["case"].iloc[0], group["ratio"])])  # fmt: skip
            continue
        for row in group.itertuples():
            rows.append(
                [f"`{name}`", row.case, f"{row.ratio:.3g}", _duration(row.baseline_s),
                 _duration(row.candidate_s), *_target_cells(name, row.case, pd.Series([row.ratio]))]
            )  # fmt: skip
    header = ["benchmark", "case", "ratio candidate / baseline", "baseline", "candidate",
              "target", "result"]  # fmt: skip
    return markdown(header, rows)


def bench_run(results: Path) -> str:
    """Where and when the committed benchmarks ran (``run.json``)."""
    run = json.loads((results / "bench" / "run.json").read_text())
    rows = [
        ["commit", commit(run) if run["dirty"] else f"{commit(run)} (clean)"],
        ["date", run["date"][:10]],
        ["hardware", f"{hardware(run).replace('threads', 'torch threads')}, "
                     f"{run['hardware']['device']}"],
        ["torch", run["torch"]],
        ["wall time", f"{run['seconds']:.0f} s"],
    ]  # fmt: skip
    return markdown(["`make bench`", "value (`run.json`)"], rows)


def bench_widths(results: Path) -> str:
    """``widths.csv``: per model and exported width, its size, work and latency at each batch."""
    table = pd.read_csv(results / "bench" / "widths.csv")
    rows = []
    for model, group in table.groupby("model", sort=False):
        full_macs = group["macs_per_sample"].max()
        batches = sorted(group["batch"].unique())
        for width, at in group.groupby("width"):
            at = at.set_index("batch")
            first = at.iloc[0]
            share = percent(first["macs_per_sample"] / full_macs)
            runtime = at.get("onnxruntime_ms", pd.Series(index=at.index, dtype=float))
            rows.append(
                [model, str(width), count(first["params"]),
                 f"{count(first['macs_per_sample'])} ({share})",
                 ", ".join(f"{at.loc[b, 'latency_ms']:.3g} ms (batch {b})" for b in batches),
                 ", ".join("not timed" if pd.isna(runtime[b]) else f"{runtime[b]:.3g} ms"
                           for b in batches)]
            )  # fmt: skip
    header = ["model", "width", "parameters", "multiply-adds per sample (of full)",
              "latency (PyTorch)", "onnxruntime, same batches"]  # fmt: skip
    return markdown(header, rows)
