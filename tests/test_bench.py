"""`make bench` runs end to end (shrunk, on fake data) and writes the tables it promises.

Only the tables' shape and the quantities that do not depend on timing are asserted: speed
targets are measured by `make bench`, not tested.
"""

import pandas as pd
import torch
from test_pointnet import make_dataset

from benchmarks.models import example_input, lenet5, magnitude_pruned
from conftest import run_script
from structural_dropout import export


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
        "widths.widths.lenet5=[127]",
        "widths.widths.char_gpt=[8,64]",
        "widths.onnx=[mnist_mlp]",
        "lenet5_small_vs_full.batches=[2]",
        "method_step_vs_plain.methods=[nested_distill]",
        "method_step_vs_plain.overrides=['task.val_size=200']",
        "widths.batches.pointnet=[2]",
        "pruned.sparsities=[0.9]",
        "pruned.batches=[2]",
        timeout=600,
    )
    bench = pd.read_csv(out / "bench.csv")
    assert list(bench.columns) == ["benchmark", "case", "baseline_s", "candidate_s", "ratio"]
    assert bench.benchmark.value_counts().to_dict() == {
        "export_vs_native": 4,  # 2 models x 2 widths x 1 batch
        "identical_dense_models": 4,  # each case's control
        "lenet5_small_vs_full": 3,  # exported, pruned dense, pruned sparse at 1 batch
        "method_step_vs_plain": 1,
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
        "onnxruntime_ms",
        "onnx_max_abs_diff",
    ]
    onnx = widths.dropna(subset=["onnxruntime_ms"])  # the models asked for, no other
    assert set(onnx.model) == {"mnist_mlp"} and (onnx.onnxruntime_ms > 0).all()
    assert (onnx.onnx_max_abs_diff <= 1e-4).all()
    mlp = widths[widths.model == "mnist_mlp"].set_index("width")
    for w in (5, 256):  # 784 -> w -> w -> 10, biases included in params only
        assert mlp.macs_per_sample[w].min() == 784 * w + w * w + w * 10
        assert mlp.params[w].min() == 784 * w + w * w + w * 10 + 2 * w + 10
    lenet = widths[widths.model == "lenet5"].set_index("width")  # 6, 13 channels, 127 units
    assert lenet.params[127].min() == 29_942
    assert lenet.macs_per_sample[127].min() == 6 * 576 * 25 + 13 * 64 * 150 + 208 * 127 + 1270
    gpt = widths[widths.model == "char_gpt"].set_index("width")  # one head at both widths
    assert gpt.macs_per_sample[64] - gpt.macs_per_sample[8] == 4 * 128 * 2 * 128 * (64 - 8)
    assert set(widths.model) == {"mnist_mlp", "pointnet", "liif_decoder", "lenet5", "char_gpt"}
    pruned = pd.read_csv(out / "pruned.csv")
    assert list(pruned.columns) == [
        "model", "sparsity", "nonzero_params", "batch", "dense_ms", "sparse_ms"
    ]  # fmt: skip
    # 10% of each layer's weights kept (500, 25,000, 400,000, 5,000), every bias (580)
    assert pruned.nonzero_params.tolist() == [50 + 2_500 + 40_000 + 500 + 580]
    assert (pruned[["dense_ms", "sparse_ms"]] > 0).all().all()
    assert (out / "run.json").exists()


def test_the_pruned_lenet_keeps_the_share_asked_and_runs_the_same_sparse():
    full = export(lenet5())
    dense = magnitude_pruned(full, 0.93, sparse=False)
    weights = [m.weight for m in dense if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)]
    for weight in weights:
        assert abs((weight == 0).float().mean().item() - 0.93) < 0.01
    sparse = magnitude_pruned(full, 0.93, sparse=True)
    x = example_input("lenet5", 4)
    with torch.no_grad():
        torch.testing.assert_close(sparse(x), dense(x), rtol=1e-4, atol=1e-5)
        assert not torch.allclose(dense(x), full(x))
