"""The GPT's generated tables: heads per width, bits per character, the latency-vs-work fit."""

import json
import math

import pandas as pd
import pytest

from structural_dropout.lab.reports.render.shakespeare import (
    SHAKESPEARE_WIDTHS,
    latency_fit,
    shakespeare_export,
    shakespeare_facts,
    shakespeare_latency,
    shakespeare_widths,
)


def _run(tmp_path, nest_heads=True, val=None):
    """A results folder with a GPT run of 4 heads over 512 feed-forward units."""
    folder = tmp_path / "shakespeare"
    folder.mkdir(parents=True)
    widths = list(range(8, 513, 8))
    val = val or [3.0 - w / 512 for w in widths]
    pd.DataFrame(
        {"width": widths, "params": [1000 + w for w in widths], "val_loss": val,
         "loss": [math.log(2) * (2 - w / 512) for w in widths]}
    ).to_csv(folder / "sweep.csv", index=False)  # fmt: skip
    model = {"heads": 4, "ffn_hidden": 512, "nest_heads": nest_heads}
    run = {"config": {"model": model}, "commit": "a" * 40, "dirty": False, "seed": 0,
           "train_seconds": 60.0, "sweep_seconds": 6.0,
           "hardware": {"processor": "CPU", "cpu_count": 2, "torch_threads": 2}}  # fmt: skip
    (folder / "run.json").write_text(json.dumps(run))
    return tmp_path


def _row(table: str, name: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


def test_widths_name_the_heads_each_keeps_and_the_loss_in_bits(tmp_path):
    table = shakespeare_widths(_run(tmp_path))
    heads = dict(zip(SHAKESPEARE_WIDTHS, _row(table, "heads kept"), strict=True))
    assert heads[8] == heads[128] == "1" and heads[192] == "2" and heads[384] == "3"
    assert heads[512] == "4"
    bits = dict(zip(SHAKESPEARE_WIDTHS, _row(table, "test (bits per character)"), strict=True))
    assert bits[512] == "1.000" and bits[256] == "1.500"  # loss = ln 2 * bits
    flat = shakespeare_widths(_run(tmp_path / "flat", nest_heads=False))
    assert set(_row(flat, "heads kept")) == {"4"}  # the feed-forward axis only


def test_facts_pick_the_best_width_on_validation(tmp_path):
    val = [3.0 - w / 512 for w in range(8, 513, 8)]
    val[20] = 1.0  # width 168 is best on validation; the test loss falls to the full width
    facts = shakespeare_facts(_run(tmp_path, val=val))
    assert "| best width on validation (smallest reaching the best) | 168 (2 heads):" in facts


def _bench(tmp_path, latencies_ms):
    folder = tmp_path / "bench"
    folder.mkdir(parents=True)
    widths = [8, 64, 256, 512]
    pd.DataFrame(
        {"model": "char_gpt", "width": widths, "params": widths, "batch": 1,
         "macs_per_sample": [128 * (1000 + 100 * w) for w in widths],
         "latency_ms": latencies_ms}
    ).to_csv(folder / "widths.csv", index=False)  # fmt: skip
    return tmp_path


def test_latency_that_follows_the_work_meets_the_target_and_one_that_does_not_misses(tmp_path):
    macs = [1000 + 100 * w for w in (8, 64, 256, 512)]
    following = [128 * (0.5 + 0.01 * m) / 1e3 for m in macs]  # 0.5 us fixed + 0.01 us per MAC
    per_char = [0.5 + 0.01 * m for m in macs]
    intercept, slope, r2 = latency_fit(pd.DataFrame({"macs": macs, "latency": per_char}))
    assert (intercept, slope, r2) == pytest.approx((0.5, 0.01, 1.0))
    table = shakespeare_latency(_bench(tmp_path / "a", following))
    assert "R² 1.0000 (target ≥ 0.95: met)" in table and "0.50 µs fixed" in table
    flat = shakespeare_latency(_bench(tmp_path / "b", [1.0, 3.0, 1.0, 1.2]))
    assert "**missed**" in flat


def test_an_export_whose_logits_drift_past_the_goal_reads_missed(tmp_path):
    folder = tmp_path / "shakespeare" / "export"
    folder.mkdir(parents=True)
    for width, worst in ((8, 3e-6), (128, 2e-4)):
        summary = {"width": width, "params": 1000 * width,
                   "max_abs_diff": {"exported": 1e-7, "reloaded": 1e-7, "program": worst},
                   "files": {"program": {"bytes": 2_000_000}}}  # fmt: skip
        (folder / f"w{width}.json").write_text(json.dumps(summary))
    table = shakespeare_export(tmp_path)
    rows = [line for line in table.splitlines() if line.startswith("| 8 |") or
            line.startswith("| 128 |")]  # fmt: skip
    assert rows[0].endswith("| met |") and "3.0e-06" in rows[0]
    assert rows[1].endswith("| **missed** |")
