"""Accuracy against latency: each model gets the latency the bench measured for it."""

import pandas as pd
import pytest

from structural_dropout.lab.reports.latency import latency_figure, latency_table


def comparison():
    rows = []
    for seed in (1, 2):
        for width, acc in ((10, 0.95), (20, 0.97), (30, 0.98), (40, 0.99)):
            rows.append(["structural", "", seed, width, width * 100, acc + seed / 1000, 1])
        for width in (20, 40):
            rows.append(["independent", f"width={width}", seed, width, width * 100, 0.985, 2])
        for sparsity, acc in ((0.5, 0.99), (0.9, 0.98)):
            setting = f"drop_back=0.1,sparsity={sparsity}"
            rows.append(["drop_pruning", setting, seed, 40, 4000 * (1 - sparsity), acc, 2])
        rows.append(["compaction", "strength=1", seed, 17 + seed, 1700, 0.97, 3])
    columns = ["method", "setting", "seed", "width", "params", "accuracy", "train_runs"]
    return pd.DataFrame(rows, columns=columns)


WIDTHS = pd.DataFrame(
    [["net", w, 100 * w, b, w * b / 100] for w in (20, 40) for b in (1, 256)]
    + [["other", 10, 1, 1, 99.0]],
    columns=["model", "width", "params", "batch", "latency_ms"],
)
PRUNED = pd.DataFrame(
    [["net", 0.5, 1, 4.0, 4.0], ["net", 0.9, 1, 4.0, 1.5]] + [["net", 0.5, 256, 3.0, 50.0]],
    columns=["model", "sparsity", "batch", "dense_ms", "sparse_ms"],
)


def test_width_models_take_the_bench_latency_of_their_width_and_pruned_the_faster_run():
    table = latency_table(comparison(), WIDTHS, PRUNED, "net", batch=1)
    structural = table[table["method"] == "structural"].set_index("width")
    assert list(structural.index) == [20, 40]  # widths the bench did not time are dropped
    assert structural.loc[40, "latency_ms"] == pytest.approx(0.4)
    assert structural.loc[20, "accuracy"] == pytest.approx(0.9715)  # mean over the two seeds
    assert structural.loc[20, "seeds"] == 2
    pruned = table[table["method"] == "drop_pruning"].set_index("setting")
    half, most = pruned.loc["drop_back=0.1,sparsity=0.5"], pruned.loc["drop_back=0.1,sparsity=0.9"]
    assert (half["latency_ms"], half["runs_as"]) == (4.0, "dense")  # a tie: dense
    assert (most["latency_ms"], most["runs_as"]) == (1.5, "sparse (CSR)")
    assert most["params"] == pytest.approx(400)
    assert "compaction" not in set(table["method"])  # its own widths: untimed, left out


def test_the_table_refuses_a_batch_or_sparsity_the_bench_did_not_time(tmp_path):
    with pytest.raises(ValueError, match="no net width at batch 16"):
        latency_table(comparison(), WIDTHS, PRUNED, "net", batch=16)
    with pytest.raises(ValueError, match="no pruned model at sparsity 0.9"):
        latency_table(comparison(), WIDTHS, PRUNED, "net", batch=256)
    ok = comparison()
    ok = ok[~ok["setting"].str.contains("sparsity=0.9")]
    path = latency_figure(ok, WIDTHS, PRUNED, tmp_path / "latency.png", "net")
    assert path.stat().st_size > 0
