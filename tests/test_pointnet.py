"""PointNet: data sources, caching, truncation, and the cached sweep against the naive one."""

import numpy as np
import pytest
import torch

from experiments.pointnet.data import (
    list_shapes,
    load_modelnet,
    normalize,
    read_off,
    read_pcd,
    sample_surface,
)
from experiments.pointnet.model import PointNet
from experiments.pointnet.task import PointNetTask, stratified_holdout
from structural_dropout import count_params, export, set_width
from structural_dropout.lab.sweep import sweep
from structural_dropout.spec import DropoutSpec

TETRAHEDRON = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float)
TETRA_FACES = [(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)]


def write_pcd(path, points, binary=True):
    header = (
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\n"
        f"TYPE F F F\nCOUNT 1 1 1\nWIDTH {len(points)}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\n"
        f"POINTS {len(points)}\nDATA {'binary' if binary else 'ascii'}\n"
    )
    body = (
        points.astype("<f4").tobytes()
        if binary
        else "\n".join(" ".join(f"{v:.6f}" for v in p) for p in points).encode()
    )
    path.write_bytes(header.encode() + body)


def write_off(path, vertices, faces, glued=False):
    counts = f"{len(vertices)} {len(faces)} 0"
    head = f"OFF{counts}\n" if glued else f"OFF\n{counts}\n"
    lines = [" ".join(map(str, v)) for v in vertices]
    lines += [f"{len(f)} " + " ".join(map(str, f)) for f in faces]
    path.write_text(head + "\n".join(lines) + "\n")


def make_dataset(root, suffix, classes=10, per_split=(3, 2), points=80, seed=0):
    """A tiny ModelNet-style tree: class c is a cloud stretched along its own direction."""
    rng = np.random.default_rng(seed)
    for c in range(classes):
        for split, n in zip(("train", "test"), per_split, strict=True):
            folder = root / f"class{c:02d}" / split
            folder.mkdir(parents=True)
            for i in range(n):
                if suffix == ".pcd":
                    cloud = rng.normal(size=(points, 3)) * (1 + np.eye(3)[c % 3] * (1 + c))
                    write_pcd(folder / f"s{i}.pcd", cloud)
                else:
                    write_off(
                        folder / f"s{i}.off", TETRAHEDRON * (1 + c), TETRA_FACES, glued=i == 0
                    )
    return root


def test_read_pcd_binary_and_ascii(tmp_path):
    points = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    write_pcd(tmp_path / "b.pcd", points)
    write_pcd(tmp_path / "a.pcd", points, binary=False)
    assert np.array_equal(read_pcd(tmp_path / "b.pcd"), points)
    assert np.allclose(read_pcd(tmp_path / "a.pcd"), points, atol=1e-6)
    (tmp_path / "bad.pcd").write_bytes(b"VERSION 0.7\nFIELDS x y z\nPOINTS 3\n")
    with pytest.raises(ValueError, match="DATA"):
        read_pcd(tmp_path / "bad.pcd")


def test_read_off_handles_glued_header_and_polygons(tmp_path):
    write_off(tmp_path / "q.off", TETRAHEDRON, [(0, 1, 2, 3)], glued=True)  # a quad
    vertices, triangles = read_off(tmp_path / "q.off")
    assert np.array_equal(vertices, TETRAHEDRON)
    assert triangles.tolist() == [[0, 1, 2], [0, 2, 3]]


def test_sampled_points_lie_on_the_surface():
    rng = np.random.default_rng(0)
    points = sample_surface(TETRAHEDRON, np.array(TETRA_FACES), 4000, rng)
    # Each point is on one of the 4 faces: x=0, y=0, z=0 or x+y+z=1, and inside the solid.
    distance = np.minimum.reduce(
        [
            np.abs(points[:, 0]),
            np.abs(points[:, 1]),
            np.abs(points[:, 2]),
            np.abs(points.sum(1) - 1) / np.sqrt(3),
        ]
    )
    assert distance.max() < 1e-6 and points.min() > -1e-6 and points.sum(1).max() < 1 + 1e-6
    # Area-weighted: the slanted face has sqrt(3) times the area of each of the others.
    on_slanted = np.abs(points.sum(1) - 1) < 1e-6
    assert on_slanted.mean() == pytest.approx(np.sqrt(3) / (3 + np.sqrt(3)), abs=0.03)


def test_normalize_centres_into_unit_sphere():
    points = normalize(np.random.default_rng(0).normal(5, 3, size=(100, 3)))
    assert np.allclose(points.mean(0), 0, atol=1e-6)
    assert np.linalg.norm(points, axis=1).max() == pytest.approx(1.0)


@pytest.mark.parametrize("source, suffix", [("pcd", ".pcd"), ("off", ".off")])
def test_cache_round_trips(tmp_path, source, suffix):
    name = "ModelNet10" if source == "pcd" else "ModelNet40"
    folder = tmp_path / (f"{name}_pcd1024" if source == "pcd" else name)
    make_dataset(folder, suffix)
    data = load_modelnet(tmp_path, name, source, 32, tmp_path / "cache", download=False)
    assert data["classes"] == [f"class{c:02d}" for c in range(10)]
    assert data["train"][0].shape == (30, 32, 3) and data["test"][0].shape == (20, 32, 3)
    assert data["test"][1].tolist() == [c for c in range(10) for _ in range(2)]
    assert torch.linalg.norm(data["train"][0], dim=2).amax(1).allclose(torch.ones(30))
    cached = load_modelnet(tmp_path, name, source, 32, tmp_path / "cache", download=False)
    assert torch.equal(cached["train"][0], data["train"][0])
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1


def test_missing_dataset_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="ModelNet10_pcd1024"):
        load_modelnet(tmp_path, "ModelNet10", "pcd", 32, tmp_path / "cache", download=False)
    with pytest.raises(FileNotFoundError, match="no <class>/train"):
        list_shapes(tmp_path, ".pcd")


def trained_pointnet(truncate, seed=0) -> PointNet:
    """A PointNet whose BatchNorm statistics and affine parameters are no longer the defaults."""
    torch.manual_seed(seed)
    model = PointNet(4, DropoutSpec(), truncate)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
        for tnet in (model.input_tnet, model.feature_tnet):  # starts at identity: unsettle it
            tnet.regressor.head.weight.normal_(0, 0.01)
        for _ in range(3):  # training-mode passes at random cuts update the running statistics
            model(torch.randn(8, 32, 3))
    return model.eval()


def pointnet_params(k: int, classes: int = 4) -> int:
    """Parameters of PointNet at width k (every group truncated), counted by hand."""

    def linear(a, b):
        return a * b + b

    def pointwise(channels):  # Linear + BatchNorm affine per layer
        return sum(linear(a, b) + 2 * b for a, b in zip(channels[:-1], channels[1:], strict=True))

    def mlp(out):  # 1024 → min(k,512) → min(k,256) → out, BatchNorm in the hidden layers
        h1, h2 = min(k, 512), min(k, 256)
        return linear(1024, h1) + 2 * h1 + linear(h1, h2) + 2 * h2 + linear(h2, out)

    return (
        pointwise([3, 64, 128, 1024])
        + mlp(9)
        + pointwise([3, 64, 64])
        + pointwise([64, 64, 128, 1024])
        + mlp(64 * 64)
        + pointwise([64, 128, 1024])
        + mlp(classes)
    )


def test_truncated_pointnet_equals_its_dense_export_and_param_count():
    model = trained_pointnet(["head", "input_tnet", "feature_tnet"])
    x = torch.randn(6, 32, 3)
    for k in (1, 37, 300, 512):
        set_width(model, k)
        dense = export(model, k)
        assert not any("Truncatable" in type(m).__name__ for m in dense.modules())
        with torch.no_grad():
            assert torch.allclose(model(x), dense(x), atol=1e-4)
        assert count_params(model, k) == pointnet_params(k)
        assert count_params(model, k) == sum(p.numel() for p in dense.parameters())
    assert pointnet_params(512, 10) == 3_468_051  # the usual PointNet classifier size


def test_only_named_groups_are_truncated():
    model = trained_pointnet(["head"])
    assert model.backbone_is_fixed
    set_width(model, 5)
    assert model.input_tnet.regressor.blocks[0].dropout is None
    assert model.head.blocks[0].dropout.eval_width == 5
    with pytest.raises(ValueError, match="truncate"):
        PointNet(4, DropoutSpec(), ["head", "tail"])


def tiny_task(cache_backbone: bool) -> PointNetTask:
    task = PointNetTask(
        "unused",
        "unused",
        num_points=32,
        cache_points=32,
        batch_size=4,
        eval_batch_size=5,
        cache_backbone=cache_backbone,
    )
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(12, 32, 3, generator=generator), torch.arange(12) % 4
    task.splits = {"val": (x[8:], y[8:]), "test": (x, y), "calibration": (x[:10], y[:10])}
    return task


def test_validation_is_a_seeded_stratified_share_of_each_class():
    labels = torch.tensor([0] * 40 + [1] * 100 + [2] * 7 + [3] * 1)
    held = stratified_holdout(labels, 0.1, torch.Generator().manual_seed(0))
    counts = [int(held[labels == c].sum()) for c in range(4)]
    assert counts == [4, 10, 1, 0]  # a class of one shape keeps it for training
    again = stratified_holdout(labels, 0.1, torch.Generator().manual_seed(0))
    other = stratified_holdout(labels, 0.1, torch.Generator().manual_seed(1))
    assert torch.equal(held, again) and not torch.equal(held, other)
    assert not stratified_holdout(labels, 0.0, torch.Generator()).any()


@pytest.mark.parametrize("truncate", [["head"], ["head", "input_tnet", "feature_tnet"]])
@pytest.mark.parametrize("recalibrate", [False, True])
def test_cached_sweep_equals_naive_sweep(truncate, recalibrate):
    model = trained_pointnet(truncate)
    widths = [1, 7, 64, 256, 512]
    fast = sweep(model, tiny_task(True), widths, progress=False, recalibrate_bn=recalibrate)
    naive = sweep(model, tiny_task(False), widths, progress=False, recalibrate_bn=recalibrate)
    assert fast == naive
    logits = []  # and the sweep really evaluated different functions per width
    for k in (1, 512):
        set_width(model, k)
        with torch.no_grad():
            logits.append(model(tiny_task(True).splits["test"][0]))
    assert not torch.allclose(*logits)
    if "input_tnet" in truncate:  # the T-Nets' transforms depend on the width too
        transforms = []
        for k in (1, 512):
            set_width(model, k)
            with torch.no_grad():
                transforms.append(model.input_tnet.transform(torch.randn(2, 1024)))
        assert not torch.allclose(*transforms)


def test_recalibration_changes_small_widths_and_restores_statistics():
    model = trained_pointnet(["head"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    task = tiny_task(True)
    shared = sweep(model, task, [3], progress=False)
    recalibrated = sweep(model, task, [3], progress=False, recalibrate_bn=True)
    assert shared[0]["width"] == recalibrated[0]["width"] == 3
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
