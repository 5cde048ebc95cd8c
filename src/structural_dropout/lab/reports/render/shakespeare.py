"""The character GPT's tables (issue #19: README, results/shakespeare/)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ...sweep import read_table
from .format import at_widths, best_on_validation, count, full_width, markdown, run_rows

SHAKESPEARE_WIDTHS = [8, 32, 64, 128, 192, 256, 384, 512]  # MatFormer's 64, 128, 256 among them
LATENCY_FIT_R2 = 0.95  # issue #19: latency per character at batch 1 scales with multiply-adds
EXPORT_GOAL = 1e-4  # issue #19: an exported width's logits equal the truncated model's


def _bits(nats: float) -> float:
    return nats / math.log(2)


def _heads(width: int, model: dict) -> int:
    """The heads kept at feed-forward width ``width`` (one width setting for the whole GPT:
    ``ceil(width * heads / ffn_hidden)``), all of them where heads are not nested."""
    if not model["nest_heads"]:
        return model["heads"]
    return math.ceil(width * model["heads"] / model["ffn_hidden"])


def _model(run_file: Path) -> dict:
    return json.loads(run_file.read_text())["config"]["model"]


def shakespeare_facts(results: Path) -> str:
    """The committed run: provenance, full width, and the best width on validation."""
    folder = results / "shakespeare"
    table = read_table(folder / "sweep.csv")
    model = _model(folder / "run.json")

    def scores(row: pd.Series) -> str:
        return (f"validation {row['val_loss']:.3f}, test {row['loss']:.3f} nats per character "
                f"({_bits(row['loss']):.3f} bits), {row['params']:,.0f} parameters")  # fmt: skip

    full, best = full_width(table), best_on_validation(table)
    rows = [
        *run_rows(folder / "run.json"),
        [f"full width ({int(full['width'])} units, {model['heads']} heads)", scores(full)],
        ["best width on validation (smallest reaching the best)",
         f"{int(best['width'])} ({_heads(int(best['width']), model)} heads): {scores(best)}"],
    ]  # fmt: skip
    return markdown(["quantity", "value (`shakespeare/run.json`, `sweep.csv`)"], rows)


def shakespeare_widths(results: Path, widths=SHAKESPEARE_WIDTHS, brief: bool = False) -> str:
    """Validation and test loss (nats per character; test also in bits) and parameters at a few
    feed-forward widths, with the heads each keeps (``brief``: heads, test loss, parameters)."""
    folder = results / "shakespeare"
    table = read_table(folder / "sweep.csv")
    model = _model(folder / "run.json")
    val, test = at_widths(table, "val_loss", widths), at_widths(table, "loss", widths)
    rows = [
        ["heads kept", *(str(_heads(w, model)) for w in widths)],
        ["validation loss (nats)", *(f"{v:.3f}" for v in val)],
        ["test loss (nats)", *(f"{v:.3f}" for v in test)],
        ["test (bits per character)", *(f"{_bits(v):.3f}" for v in test)],
        ["parameters", *map(count, at_widths(table, "params", widths))],
    ]
    if brief:
        rows = [rows[0], rows[2], rows[4]]
    return markdown(["feed-forward width", *map(str, widths)], rows)


def shakespeare_summary(results: Path) -> str:
    """The README's few widths of the committed run."""
    return shakespeare_widths(results, [8, 64, 128, 256, 512], brief=True)


def shakespeare_heads(results: Path) -> str:
    """``heads.csv``: every head count at the full feed-forward width."""
    table = pd.read_csv(results / "shakespeare" / "heads.csv")
    rows = [
        [str(r.heads), count(r.params), f"{r.val_loss:.3f}", f"{r.loss:.3f}"]
        for r in table.itertuples()
    ]
    return markdown(["heads", "parameters", "validation loss", "test loss"], rows)


def latency_fit(table: pd.DataFrame) -> tuple[float, float, float]:
    """Least squares ``latency = intercept + slope * macs``: ``(intercept, slope, r2)``."""
    slope, intercept = np.polyfit(table["macs"], table["latency"], 1)
    predicted = intercept + slope * table["macs"]
    residual = ((table["latency"] - predicted) ** 2).sum()
    total = ((table["latency"] - table["latency"].mean()) ** 2).sum()
    return float(intercept), float(slope), float(1 - residual / total)


def shakespeare_latency(results: Path) -> str:
    """The exported GPT's latency per character at batch 1 (``bench/widths.csv``: one forward
    pass over a full 128-character window, divided by 128) against its multiply-adds, and the
    straight line through them: the target is that latency follows the work (R² of the fit)."""
    widths = pd.read_csv(results / "bench" / "widths.csv")
    gpt = widths[(widths["model"] == "char_gpt") & (widths["batch"] == 1)].sort_values("width")
    if gpt.empty:
        raise ValueError("results/bench/widths.csv has no char_gpt rows at batch 1: run make bench")
    context = 128  # benchmarks/models.py CHAR_GPT: the window one call reads
    table = pd.DataFrame(
        {
            "width": gpt["width"].to_numpy(),
            "params": gpt["params"].to_numpy(),
            "macs": gpt["macs_per_sample"].to_numpy() / context,
            "latency": gpt["latency_ms"].to_numpy() * 1e3 / context,  # microseconds
        }
    )
    intercept, slope, r2 = latency_fit(table)
    full = table.iloc[-1]
    rows = [
        [str(r.width), count(r.params), f"{count(r.macs)} ({r.macs / full.macs:.1%})",
         f"{r.latency:.2f} µs ({r.latency / full.latency:.1%})",
         f"{intercept + slope * r.macs:.2f} µs"]
        for r in table.itertuples()
    ]  # fmt: skip
    verdict = "met" if r2 >= LATENCY_FIT_R2 else "**missed**"
    rows.append(
        ["fit", "", f"{slope * 1e3:.3f} µs per thousand multiply-adds",
         f"{intercept:.2f} µs fixed", f"R² {r2:.4f} (target ≥ {LATENCY_FIT_R2}: {verdict})"]
    )  # fmt: skip
    header = ["width", "parameters", "multiply-adds per character (of full)",
              "latency per character (of full)", "fit: fixed + per multiply-add"]  # fmt: skip
    return markdown(header, rows)


def shakespeare_export(results: Path) -> str:
    """``export/w<width>.json`` (``make export-shakespeare``): each exported width's parameters
    and the largest logit difference from the truncated model (exported module, reloaded
    weights, ``torch.export`` program) on the task's example window."""
    exports = sorted((results / "shakespeare" / "export").glob("w*.json"),
                     key=lambda p: int(p.stem[1:]))  # fmt: skip
    if not exports:
        raise FileNotFoundError("no shakespeare/export/w*.json: run make export-shakespeare")
    rows = []
    for path in exports:
        summary = json.loads(path.read_text())
        diff = summary["max_abs_diff"]
        worst = max(diff.values())
        rows.append(
            [str(summary["width"]), count(summary["params"]),
             *(f"{diff[k]:.1e}" for k in ("exported", "reloaded", "program")),
             f"{summary['files']['program']['bytes'] / 1e6:.2f} MB",
             "met" if worst <= EXPORT_GOAL else "**missed**"]
        )  # fmt: skip
    header = ["width", "parameters", "max abs logit diff: exported", "reloaded", "program",
              "`model.pt2`", f"≤ {EXPORT_GOAL:g}"]  # fmt: skip
    return markdown(header, rows)
