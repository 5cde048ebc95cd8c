"""`make bench` runs end to end (shrunk, on fake data) and writes the tables it promises.

Only the tables' shape and the quantities that do not depend on timing are asserted: speed
targets are measured by `make bench`, not tested.
"""

import pandas as pd
from test_pointnet import make_dataset

from conftest import run_script


def test_bench_writes_both_tables(tmp_path, fake_mnist):
    data = tmp_path / "data"
    data.mkdir()
    (data / "MNIST").symlink_to(fake_mnist / "MNIST")
    make_dataset(data / "ModelNet10_pcd1024", ".pcd", per_split=(2, 1))
    out = tmp_path / "bench"
    run_script(
        "scripts/bench.py",
        f"out_dir={out}",
        f"data_dir={data}",
        f"cache_dir={tmp_path / 'cache'}",
        "rounds=1",
        "min_run_time=0.001",
        "isolate=false",  # the tables, not the timings: no fresh interpreter per benchmark
        "export_vs_native.widths=[3,256]",
        "export_vs_native.batches=[2]",
        "sweep_cached_vs_naive.naive_widths=2",
        "sweep_cached_vs_naive.overrides=['task.cache_points=80','task.num_points=80']",
        "mnist_pipeline_vs_dataloader.rounds=1",
        "mnist_pipeline_vs_dataloader.overrides=['task.val_size=200']",
        "widths.widths.mnist_mlp=[5,256]",
        "widths.widths.pointnet=[7]",
        "widths.widths.liif_decoder=[9]",
        "widths.batches.pointnet=[2]",
        timeout=600,
    )
    bench = pd.read_csv(out / "bench.csv")
    assert list(bench.columns) == ["benchmark", "case", "baseline_s", "candidate_s", "ratio"]
    assert bench.benchmark.value_counts().to_dict() == {
        "export_vs_native": 4,  # 2 models x 2 widths x 1 batch
        "sd_train_step_vs_plain": 1,
        "sweep_cached_vs_naive": 1,
        "mnist_pipeline_vs_dataloader": 1,
    }
    assert (bench[["baseline_s", "candidate_s"]] > 0).all().all()
    assert ((bench.ratio - bench.candidate_s / bench.baseline_s).abs() < 1e-9).all()
    assert "1000 images" in bench.case[bench.benchmark == "mnist_pipeline_vs_dataloader"].item()

    widths = pd.read_csv(out / "widths.csv")
    assert list(widths.columns) == [
        "model",
        "width",
        "params",
        "macs_per_sample",
        "batch",
        "latency_ms",
    ]
    mlp = widths[widths.model == "mnist_mlp"].set_index("width")
    for w in (5, 256):  # 784 -> w -> w -> 10, biases included in params only
        assert mlp.macs_per_sample[w].min() == 784 * w + w * w + w * 10
        assert mlp.params[w].min() == 784 * w + w * w + w * 10 + 2 * w + 10
    assert set(widths.model) == {"mnist_mlp", "pointnet", "liif_decoder"}
    assert (out / "run.json").exists()
