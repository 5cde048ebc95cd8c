"""Exporting one width as a plain PyTorch model, saving it and reloading it elsewhere."""

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from experiments.liif.model import LIIF
from experiments.pointnet.model import PointNet
from structural_dropout import (
    DropoutSpec,
    StructuralDropout,
    TruncatableMLP,
    count_params,
    export,
    load_export,
    save_export,
    set_width,
)
from structural_dropout.export import describe, rebuild

TOLERANCE = 1e-5  # float32, as the export promises, for outputs of unit scale


def _settle_batch_norm(model: nn.Module, *inputs: torch.Tensor, steps: int = 5) -> None:
    """A few training forwards at random cuts, so BatchNorm statistics are not the defaults."""
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            model(*inputs)
    model.eval()


def _max_difference(model: nn.Module, dense: nn.Module, *inputs: torch.Tensor) -> float:
    """Max abs difference, relative to outputs larger than 1: folding a rescaling of up to
    ``width / 1`` into the weights rounds differently, by float32's relative precision."""
    with torch.no_grad():
        expected = model(*inputs)
        return ((expected - dense(*inputs)).abs().max() / expected.abs().max().clamp(min=1)).item()


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("rescale", [False, True])
def test_mlp_export_equals_the_truncated_mlp(batch_norm, rescale):
    torch.manual_seed(0)
    model = TruncatableMLP(20, [32, 24], 5, DropoutSpec(rescale=rescale), batch_norm=batch_norm)
    x = torch.randn(64, 20)
    _settle_batch_norm(model, x)
    for width in (1, 7, 24, 31, 32, None):
        set_width(model, width)
        dense = export(model, width)
        assert all(type(m).__module__.startswith("torch.nn") for m in dense.modules())
        assert _max_difference(model, dense, x) <= TOLERANCE
        assert sum(p.numel() for p in dense.parameters()) == count_params(model, width)


def test_pointnet_export_equals_the_truncated_model():
    torch.manual_seed(0)
    model = PointNet(10, DropoutSpec())
    points = torch.randn(8, 64, 3)
    _settle_batch_norm(model, points)
    for width in (3, 100, 256, 512):
        set_width(model, width)
        dense = export(model, width)
        assert not any(isinstance(m, (StructuralDropout, TruncatableMLP)) for m in dense.modules())
        assert _max_difference(model, dense, points) <= TOLERANCE
        assert sum(p.numel() for p in dense.parameters()) == count_params(model, width)
    assert model.head.blocks[0].dropout.eval_width == 512  # the original is left as it was


def test_liif_export_equals_the_truncated_decoder():
    torch.manual_seed(0)
    model = LIIF(channels=8, blocks=1, hidden=[48, 48], dropout=DropoutSpec(rescale=False)).eval()
    lr = torch.rand(2, 3, 9, 7)
    coord, cell = torch.rand(2, 30, 2) * 2 - 1, torch.full((2, 30, 2), 2 / 20)
    for width in (1, 16, 48):
        set_width(model, width)
        dense = export(model, width)
        assert isinstance(dense.decoder, nn.Sequential)
        assert _max_difference(model, dense, lr, coord, cell) <= TOLERANCE
        inputs = torch.randn(40, model.decoder.in_features)
        assert _max_difference(model.decoder, export(model.decoder, width), inputs) <= TOLERANCE


def _user_model(conv: bool) -> nn.Sequential:
    """A model a user writes with the layer dropped in between standard layers."""
    if conv:  # per-point features [B, C, N]: the cut is along channels
        return nn.Sequential(
            nn.Conv1d(3, 16, 1),
            nn.BatchNorm1d(16),
            nn.ReLU(),
            StructuralDropout(16, dim=1),
            nn.Conv1d(16, 4, 1),
        )
    return nn.Sequential(
        nn.Linear(10, 32),
        nn.BatchNorm1d(32),
        nn.GELU(),
        StructuralDropout(32),
        nn.Dropout(0.1),
        nn.Linear(32, 16),
        nn.ReLU(),
        StructuralDropout(16, rescale=False),
        nn.Linear(16, 3),
    )


@pytest.mark.parametrize("conv", [False, True])
def test_export_of_a_users_sequential_model(conv):
    torch.manual_seed(0)
    model = _user_model(conv)
    x = torch.randn(32, 3, 50) if conv else torch.randn(32, 10)
    _settle_batch_norm(model, x)
    for width in (1, 5, 16, None):
        set_width(model, width)
        dense = export(model, width)
        assert not any(isinstance(m, StructuralDropout) for m in dense.modules())
        assert _max_difference(model, dense, x) <= TOLERANCE
        first = model[0].weight.shape[0]
        kept = first if width is None else min(width, first)
        assert dense[0].weight.shape[0] == kept  # the units above the cut are gone


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([nn.Linear(4, 8), nn.ReLU(), StructuralDropout(8)], "no nn.Linear / nn.Conv layer after"),
        (
            [nn.Linear(4, 8), nn.LayerNorm(8), StructuralDropout(8), nn.Linear(8, 2)],
            "cannot fold the cut through LayerNorm",
        ),
        ([nn.Linear(4, 6), StructuralDropout(8), nn.Linear(8, 2)], "width 8 but the layer"),
        ([nn.Linear(4, 8), StructuralDropout(8, dim=1), nn.Linear(8, 2)], "cuts dim 1"),
    ],
)
def test_export_refuses_what_it_cannot_slice(layers, message):
    with pytest.raises(ValueError, match=message):
        export(nn.Sequential(*layers), 4)


def test_export_refuses_a_width_the_model_does_not_have():
    with pytest.raises(ValueError, match="outside 1..8"):
        export(TruncatableMLP(4, [8], 2, DropoutSpec()), 9)


def test_describe_and_rebuild_round_trip():
    dense = export(_user_model(conv=False), 5)
    rebuilt = rebuild(json.loads(json.dumps(describe(dense))))
    rebuilt.load_state_dict(dense.state_dict())
    x = torch.randn(6, 10)
    assert _max_difference(dense, rebuilt.eval(), x) == 0
    with pytest.raises(TypeError, match="only an nn.Sequential"):
        describe(export(PointNet(10, DropoutSpec()), 8))


# The reload in a fresh interpreter: torch only, nothing of this repository imported.
RELOAD = """
import json, sys
import torch
from torch import nn
out, = sys.argv[1:]
x, expected = torch.load(out + "/check.pt")
outputs = [torch.export.load(out + "/model.pt2").module()(*x)]
architecture = json.load(open(out + "/architecture.json"))
if architecture["format"] == "torch.nn":
    layers = architecture["module"]["layers"]
    model = nn.Sequential(*(getattr(nn, layer["type"])(**layer["args"]) for layer in layers))
    model.load_state_dict(torch.load(out + "/weights.pt", weights_only=True))
    outputs.append(model.eval()(*x))
ours = [name for name in sys.modules if name.split(".")[0] in ("structural_dropout", "experiments")]
assert not ours, ours
print(len(outputs), max((o - expected).abs().max().item() for o in outputs))
"""


def _models():
    torch.manual_seed(0)
    mlp = TruncatableMLP(12, [16, 16], 3, DropoutSpec(), batch_norm=True)
    liif = LIIF(channels=8, blocks=1, hidden=[24, 24], dropout=DropoutSpec(rescale=False))
    lr = torch.rand(2, 3, 6, 5)
    return {  # model, inputs used to trace, other-shaped inputs to check (a new batch size)
        "mlp": (mlp, (torch.randn(4, 12),), (torch.randn(7, 12),)),
        "pointnet": (
            PointNet(5, DropoutSpec()),
            (torch.randn(2, 40, 3),),
            (torch.randn(3, 33, 3),),
        ),
        "liif": (
            liif,
            (lr, torch.rand(2, 10, 2) * 2 - 1, torch.full((2, 10, 2), 0.1)),
            (torch.rand(3, 3, 7, 8), torch.rand(3, 12, 2) * 2 - 1, torch.full((3, 12, 2), 0.1)),
        ),
    }


@pytest.mark.parametrize("name", ["mlp", "pointnet", "liif"])
def test_saved_export_reloads_without_this_library(name, tmp_path):
    model, traced, other = _models()[name]
    _settle_batch_norm(model, *traced)
    set_width(model, 9)
    dense = export(model, 9)
    paths = save_export(dense, tmp_path, traced)
    assert {p.name for p in paths.values()} == {"weights.pt", "architecture.json", "model.pt2"}
    with torch.no_grad():
        expected = model(*other)
        assert (load_export(tmp_path)(*other) - expected).abs().max() <= TOLERANCE
    torch.save((other, expected), tmp_path / "check.pt")
    result = subprocess.run(
        [sys.executable, "-c", RELOAD, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    loaded, difference = result.stdout.split()
    assert int(loaded) == (2 if name == "mlp" else 1)  # the MLP also rebuilds from torch.nn
    assert float(difference) <= TOLERANCE
