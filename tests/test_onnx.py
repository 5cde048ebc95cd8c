"""ONNX export checked with onnxruntime: the experiments' models at widths 16, 64 and full give
the PyTorch model's outputs, with other batch sizes (and, for LIIF, image and query counts) than
the example they were traced on; missing packages are a one-line error that says what to install."""

import sys

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from conftest import CONFIGS
from structural_dropout import export, set_width
from structural_dropout.onnx_export import onnx_max_abs_diff, onnx_session, save_onnx


def _model(experiment: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        config = compose("train", [f"experiment={experiment}", "profile=cpu"])
    torch.manual_seed(0)
    return instantiate(config.model).eval()


def _inputs(experiment: str, batch: int, size: int = 0) -> tuple[torch.Tensor, ...]:
    """A batch of the experiment's inputs; ``size`` varies LIIF's image side and query count."""
    if experiment == "mnist":
        return (torch.randn(batch, 784),)
    if experiment == "pointnet":
        return (torch.randn(batch, 1024, 3),)
    side, queries = 24 + size, 100 + 7 * size
    return (torch.rand(batch, 3, side, side), torch.rand(batch, queries, 2) * 2 - 1,
            torch.full((batch, queries, 2), 2 / (4 * side)))  # fmt: skip


@pytest.fixture(scope="module", params=["mnist", "pointnet", "liif"])
def trained_like(request):
    """The experiment's model with weights moved off their initialisation (biases included),
    so that a wrong ONNX graph cannot hide behind near-constant outputs."""
    model = _model(request.param)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return request.param, model


@pytest.mark.parametrize("width", [16, 64, None])
def test_onnx_matches_pytorch_at_other_batch_sizes(trained_like, width, tmp_path):
    experiment, model = trained_like
    set_width(model, width)
    small = export(model, width).eval()
    path = save_onnx(small, tmp_path / "model.onnx", _inputs(experiment, 2))
    other = _inputs(experiment, 5, size=8)
    assert onnx_max_abs_diff(path, small, other) <= 1e-4
    with torch.no_grad():  # and the check can fail: another width's model is far off
        set_width(model, 8)
        wrong = export(model, 8).eval()
    assert onnx_max_abs_diff(path, wrong, other) > 1e-3
    set_width(model, None)  # the fixture is shared by the widths


def test_missing_packages_say_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # an import of it now fails
    with pytest.raises(ImportError, match=r"onnxruntime, not installed: pip install"):
        onnx_session(tmp_path / "model.onnx")
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(ImportError, match=r"ONNX needs onnxscript"):
        save_onnx(torch.nn.Linear(2, 2), tmp_path / "m.onnx", (torch.randn(2, 2),))


def test_a_batch_of_one_is_refused(tmp_path):
    with pytest.raises(ValueError, match="a batch of 2 or more"):
        save_onnx(torch.nn.Linear(2, 2), tmp_path / "m.onnx", (torch.randn(1, 2),))
