"""The GPT comparison's tables: the best of our methods is chosen on validation, each target is
judged paired by seed against its goal, the equal-compute runs sit beside the equal-step ones."""

import json

import pandas as pd

from structural_dropout.lab.reports.render.shakespeare_compare import (
    WIDTHS,
    best_ours,
    seconds_per_seed,
    shakespeare_compare_compute,
    shakespeare_compare_headline,
    shakespeare_targets,
)

NOISE = {1: -0.002, 2: 0.0, 3: 0.002}  # per seed: the same in every method, so pairs cancel it


def _rows(method, widths, loss, val=None, seconds=100.0, runs=1):
    """Rows of one method over seeds 1-3: ``loss(width)``, validation ``val(width)``."""
    val = val or loss
    return [
        {"method": method, "setting": "", "seed": seed, "width": w, "params": 1000 + w,
         "val_loss": val(w) + noise, "loss": loss(w) + noise, "train_runs": runs,
         "train_seconds": seconds}
        for seed, noise in NOISE.items()
        for w in widths
    ]  # fmt: skip


def _results(tmp_path, sandwich_gap_at_128=0.0, between=-0.05, full_gap=0.0):
    """A comparison where sandwich is 0.01 nats worse than plain training and than the GPTs
    trained alone (plus ``sandwich_gap_at_128`` at width 128, ``full_gap`` at 512), and sandwich
    minus MatFormer's rule is ``between`` at 96, 192, 384 (0.0 elsewhere)."""
    curve = lambda w: 1.5 + 64 / w  # noqa: E731 - a loss falling with the width
    rows = [
        *_rows("none", WIDTHS, curve, seconds=100.0),
        *_rows("independent", [64, 128, 256], curve, seconds=200.0, runs=3),
        *_rows("sandwich", WIDTHS,
               lambda w: curve(w) + 0.01 + {128: sandwich_gap_at_128, 512: full_gap}.get(w, 0.0),
               seconds=280.0),
        *_rows("sandwich_equal_compute", WIDTHS, lambda w: curve(w) + 0.05, seconds=100.0),
        # at equal compute the paper's rule is the better one on validation, and 0.025 behind
        # the GPTs trained alone (not 0.05 like sandwich)
        *_rows("structural_equal_compute", WIDTHS, lambda w: curve(w) + 0.025, seconds=100.0),
        *_rows("matformer_equal_compute", WIDTHS, lambda w: curve(w) + 0.05, seconds=100.0),
        # structural: better on test everywhere, worse on validation: not the one chosen
        *_rows("structural", WIDTHS, lambda w: curve(w) - 0.01, val=lambda w: curve(w) + 0.2),
        *_rows("matformer", WIDTHS,
               lambda w: curve(w) + 0.01 - (between if w in (96, 192, 384) else 0.0),
               seconds=270.0),
    ]
    (tmp_path / "compare").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(tmp_path / "compare" / "shakespeare.csv", index=False)
    # each seed's runs took the rows' time together (the GPTs trained alone: 3 runs a seed)
    runs = {(r["method"], r["seed"]): (r["train_runs"], r["train_seconds"]) for r in rows}
    _runs_json(tmp_path, [
        (f"{method}/{seed}_{i}", seed, seconds / count)
        for (method, seed), (count, seconds) in runs.items() for i in range(count)
    ])  # fmt: skip
    return tmp_path


def _runs_json(results, runs):
    """``compare/shakespeare_runs.json`` of ``(run, seed, train_seconds)`` records."""
    records = [{"run": run, "seed": seed, "train_seconds": seconds} for run, seed, seconds in runs]
    (results / "compare" / "shakespeare_runs.json").write_text(json.dumps(records))


def _result(table: str, start: str) -> str:
    line = next(line for line in table.splitlines() if line.startswith(f"| {start}"))
    return line.strip("|").split("|")[-1].strip()


def test_the_best_of_our_methods_is_chosen_on_validation_at_each_budget(tmp_path):
    table = pd.read_csv(_results(tmp_path) / "compare" / "shakespeare.csv")
    assert best_ours(table) == "sandwich"  # structural is better on test only
    assert best_ours(table, "_equal_compute") == "structural_equal_compute"


def test_each_target_is_judged_against_its_goal(tmp_path):
    table = shakespeare_targets(_results(tmp_path))
    assert _result(table, "`sandwich` − plain training, full width, test") == "met"  # +0.010
    for width in (64, 128, 256):
        assert _result(table, f"`sandwich` width {width} − trained alone") == "met"  # +0.010
    for width in (96, 192, 384):
        assert _result(table, f"`sandwich` width {width} − `matformer`") == "met"  # -0.050
    worse = shakespeare_targets(
        _results(tmp_path / "b", sandwich_gap_at_128=0.03, between=0.0, full_gap=0.02)
    )
    assert _result(worse, "`sandwich` − plain training, full width, test") == "**missed**"
    assert _result(worse, "`sandwich` width 128 − trained alone") == "**missed**"  # +0.040
    assert _result(worse, "`sandwich` width 64 − trained alone") == "met"
    assert _result(worse, "`sandwich` width 192 − `matformer`") == "**missed**"  # a tie


def test_the_equal_compute_targets_use_the_equal_compute_runs(tmp_path):
    table = shakespeare_targets(_results(tmp_path))
    ours = "`structural_equal_compute`"
    assert _result(table, f"{ours} − plain training, full width, test") == "**missed**"  # +0.025
    assert _result(table, f"{ours} width 64 − trained alone") == "met"  # +0.025 <= 0.03
    # against MatFormer at equal compute (+0.05): -0.025, not the 3,000-step one
    assert _result(table, f"{ours} width 96 − `matformer_equal_compute`") == "met"
    assert f"| {ours} width 96 − `matformer_equal_compute`, test | -0.025 ± 0.000 |" in table


def test_the_headline_has_one_row_per_budget_with_each_widths_reference(tmp_path):
    table = shakespeare_compare_headline(_results(tmp_path))
    header, _, steps, compute = table.splitlines()
    assert header.split(" | ")[1:4] == ["w 64 − alone", "w 96 − MatFormer", "w 128 − alone"]
    assert header.endswith("w 512 − plain |")
    cells = [cell.strip() for cell in steps.strip("|").split("|")]
    assert cells[:3] == ["`sandwich`", "+0.010 ± 0.000 ✓", "-0.050 ± 0.000 ✓"]
    assert cells[-1] == "+0.010 ± 0.000 ✓"  # full width against plain training
    cells = [cell.strip() for cell in compute.strip("|").split("|")]
    assert cells[:3] == ["`structural_equal_compute`", "+0.025 ± 0.000 ✓", "-0.025 ± 0.000 ✓"]
    assert cells[-1] == "+0.025 ± 0.000 ✗"  # beyond the 0.02 goal


def test_equal_compute_runs_sit_beside_their_equal_step_runs(tmp_path):
    table = shakespeare_compare_compute(_results(tmp_path))
    lines = [line for line in table.splitlines() if line.startswith("| `sandwich`")]
    assert len(lines) == 2
    assert "3,000 steps" in lines[0] and "equal compute" in lines[1]
    assert lines[0].endswith("| 1.635 ± 0.002 | 280 s |")  # width 512: 1.625 + 0.01
    assert lines[1].endswith("| 1.675 ± 0.002 | 100 s |")  # 1.625 + 0.05


def test_a_methods_training_time_is_its_median_over_seeds_of_all_its_runs(tmp_path):
    (tmp_path / "compare").mkdir()
    _runs_json(tmp_path, [
        ("structural/0", 1, 500.0), ("structural/1", 2, 100.0), ("structural/2", 3, 120.0),
        # the GPTs trained alone: two widths a seed, summed per seed
        ("independent/0", 1, 30.0), ("independent/1", 1, 40.0),
        ("independent/2", 2, 10.0), ("independent/3", 2, 20.0),
        ("independent/4", 3, 50.0), ("independent/5", 3, 60.0),
    ])  # fmt: skip
    seconds = seconds_per_seed(tmp_path)
    assert seconds["structural"] == 120.0  # not seed 1's slow 500 s, nor a mean
    assert seconds["independent"] == 70.0  # per seed 70, 30, 110
