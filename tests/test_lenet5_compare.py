"""The LeNet-5 comparison's tables (issue #18's targets) from a made-up comparison."""

import json

import pandas as pd
import pytest

from structural_dropout.lab.reports.render.lenet5_compare import (
    lenet5_compare_methods,
    lenet5_compare_pairs,
    lenet5_compare_sized,
    lenet5_compare_training,
    lenet5_targets,
)

WIDTHS = [25, 51, 127, 251, 500]
PARAMS = {25: 1589, 51: 6001, 127: 29942, 251: 114_600, 500: 431_080}


def _files(tmp_path, accuracy_127=0.99, gap_127=-0.002, speed_256=0.21):
    """A comparison folder (plain, sandwich, separately trained, Drop Pruning; seeds 1-3) with
    its gaps table, and a bench table."""
    rows = []
    for seed in (1, 2, 3):
        for method in ("none", "sandwich", "independent"):
            for width in WIDTHS:
                test = accuracy_127 if (method, width) == ("sandwich", 127) else 0.993
                test += 0.001 * (seed - 2)  # mean: as set, std 0.1 points
                rows.append([method, "", seed, width, PARAMS[width], test + 0.002, test])
        rows.append(["drop_pruning", "drop_back=0.3,scope=global,sparsity=0.93", seed, 500, 30715,
                     0.95, 0.94 + 0.01 * seed])  # fmt: skip
    columns = ["method", "setting", "seed", "width", "params", "val_accuracy", "accuracy"]
    table = pd.DataFrame(rows, columns=columns).assign(train_runs=1, train_seconds=100.0)
    (tmp_path / "compare").mkdir()
    (tmp_path / "bench").mkdir()
    table.to_csv(tmp_path / "compare" / "lenet5.csv", index=False)
    pd.DataFrame(
        {"method": "sandwich", "reference": ["independent", "none"], "width": [127, 500],
         "seeds": 3, "mean": [gap_127, 0.0], "se": 0.0005, "significant": False}
    ).to_csv(tmp_path / "compare" / "lenet5_gaps.csv", index=False)  # fmt: skip
    cases = {"exported w=127 batch=256": speed_256, "pruned 93% dense batch=256": 0.96,
             "pruned 93% sparse batch=256": 0.93}  # fmt: skip
    pd.DataFrame(
        {"benchmark": "lenet5_small_vs_full", "case": list(cases), "baseline_s": 1.0,
         "candidate_s": list(cases.values()), "ratio": list(cases.values())}
    ).to_csv(tmp_path / "bench" / "bench.csv", index=False)  # fmt: skip
    return tmp_path


def _row(table: str, start: str) -> str:
    return next(line for line in table.splitlines() if line.startswith(f"| {start}"))


def test_targets_are_judged_for_the_best_one_run_method(tmp_path):
    table = lenet5_targets(_files(tmp_path))
    assert "**missed**" not in table
    assert "29.9 k | ≤ 30,200 (1/14.3) | met" in _row(table, "width 127: parameters")
    assert "-0.20 ± 0.05" in _row(table, "width 127 −")
    assert "0.930" in _row(table, "its model")  # the faster of dense and sparse
    assert "96.00 ± 1.00" in _row(table, "Drop Pruning")  # test accuracy, not validation


@pytest.mark.parametrize(
    "change, row",
    [({"gap_127": -0.004}, "width 127 −"), ({"accuracy_127": 0.988}, "width 127: test"),
     ({"speed_256": 0.4}, "exported")],
)  # fmt: skip
def test_a_target_short_of_its_goal_reads_missed(tmp_path, change, row):
    table = lenet5_targets(_files(tmp_path, **change))
    assert "**missed**" in _row(table, row)
    assert table.count("**missed**") == 1  # and only that row


def test_methods_table_leaves_the_size_baselines_to_their_own(tmp_path):
    _files(tmp_path)
    methods = lenet5_compare_methods(tmp_path)
    assert "drop_pruning" not in methods and "drop_pruning" in lenet5_compare_sized(tmp_path)
    assert _row(methods, "parameters").split(" | ")[1:4] == ["1,589", "6,001", "29.9 k"]
    assert "99.30 ± 0.10" in _row(methods, "sandwich")  # width 25's test accuracy over seeds


def test_size_baselines_are_listed_largest_first(tmp_path):
    _files(tmp_path)
    table = pd.read_csv(tmp_path / "compare" / "lenet5.csv")
    smaller = table[table["method"] == "drop_pruning"].assign(
        setting="drop_back=0.3,scope=global,sparsity=0.98", params=8_600
    )
    larger = smaller.assign(setting="drop_back=0.3,scope=global,sparsity=0.5", params=215_800)
    pd.concat([table, smaller, larger]).to_csv(tmp_path / "compare" / "lenet5.csv", index=False)
    sized = lenet5_compare_sized(tmp_path)
    order = [line.split(" | ")[2] for line in sized.splitlines()[2:]]
    assert order == ["215.8 k", "30.7 k", "8,600"]


def test_pairs_are_the_one_run_methods_against_separately_trained_at_the_tables_widths(tmp_path):
    pairs = lenet5_compare_pairs(_files(tmp_path))
    assert pairs.splitlines()[0].endswith("| width 127 | width 251 | width 500 |")
    cells = _row(pairs, "sandwich").split(" | ")[1:4]
    assert cells == ["+0.00 ± 0.00", "+0.00 ± 0.00", "-0.30 ± 0.00*"]
    assert "drop_pruning" not in pairs  # a size baseline: its own table


def test_training_cost_is_told_per_processor_and_per_seed_over_all_its_runs(tmp_path):
    """Separately trained LeNets cost all their widths per seed; a machine's runs stay apart."""
    def run(name, seed, seconds, processor):
        return {"run": name, "seed": seed, "train_seconds": seconds,
                "hardware": {"processor": processor}}  # fmt: skip

    runs = [run(f"independent/{i}", seed, 10.0 * width, "Xeon")
            for i, (seed, width) in enumerate((s, w) for s in (1, 2) for w in (1, 2, 3))]
    runs += [run("sandwich/0", 1, 90.0, "EPYC"), run("sandwich/1", 2, 30.0, "Xeon")]
    (tmp_path / "compare").mkdir()
    (tmp_path / "compare" / "lenet5_runs.json").write_text(json.dumps(runs))
    table = lenet5_compare_training(tmp_path)
    assert _row(table, "`independent`").split(" | ")[1:] == ["Xeon", "6", "20", "10–30", "60 |"]
    assert _row(table, "`sandwich` | EPYC").endswith("| 1 | 90 | 90–90 | 90 |")
    assert _row(table, "`sandwich` | Xeon").endswith("| 1 | 30 | 30–30 | 30 |")
