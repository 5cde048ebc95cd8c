import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from test_configs import compose_train
from torch import nn

from conftest import REPO, run_script
from experiments.liif.data import (
    QuerySampler,
    downsample,
    modcrop,
    read_image,
    to_float,
    write_image,
)
from experiments.liif.evaluation import benchmark_pair, bicubic_psnr, psnr_by_width, width_tails
from experiments.liif.metrics import psnr
from experiments.liif.model import LIIF, cell_size, pixel_centers
from structural_dropout import DropoutSpec, count_params, set_width
from structural_dropout.lab.run import train_and_sweep


def smooth_image(height: int, width: int) -> torch.Tensor:
    """A ``uint8`` RGB image of low-frequency waves (nothing a bicubic resize loses)."""
    y = torch.linspace(0, 1, height).view(-1, 1)
    x = torch.linspace(0, 1, width).view(1, -1)
    channels = [
        0.5 + 0.4 * torch.sin(2 * math.pi * (x + phase) * 0.7) * torch.cos(2 * math.pi * y * 0.5)
        for phase in (0.0, 0.3, 0.6)
    ]
    return (torch.stack(channels) * 255).round().to(torch.uint8)


def test_pixel_centres_and_cells_of_small_grids():
    assert pixel_centers(2, 4).tolist() == [
        [-0.5, -0.75],
        [-0.5, -0.25],
        [-0.5, 0.25],
        [-0.5, 0.75],
        [0.5, -0.75],
        [0.5, -0.25],
        [0.5, 0.25],
        [0.5, 0.75],
    ]
    assert pixel_centers(1, 1).tolist() == [[0.0, 0.0]]
    inner = pixel_centers(4, 5).view(4, 5, 2)[1:3, 1:4].reshape(-1, 2)
    assert torch.equal(pixel_centers(4, 5, shave=1), inner)
    assert cell_size(2, 4).tolist() == [1.0, 0.5]


def test_local_ensemble_of_pixel_values_is_bilinear_interpolation():
    """Decoding each corner as "the LR pixel itself" must give bilinear upsampling: this checks
    the nearest-pixel lookup, the offsets and the ensemble weights, borders included."""
    lr = torch.rand(1, 1, 5, 7)
    encoded = (F.unfold(lr, 3, padding=1).transpose(1, 2), (5, 7))  # centre tap = channel 4
    height, width = 13, 16
    coord = pixel_centers(height, width)[None]
    inputs, weights = LIIF.query_inputs(encoded, coord, cell_size(height, width).expand_as(coord))
    assert inputs.shape == (1, 4, height * width, 9 + 4)
    assert torch.allclose(weights.sum(1), torch.ones(1, height * width))
    blended = (inputs[..., 4] * weights).sum(1).view(height, width)
    expected = F.interpolate(lr, size=(height, width), mode="bilinear", align_corners=False)[0, 0]
    assert torch.allclose(blended, expected, atol=1e-5)
    offsets, cells = inputs[..., 9:11], inputs[..., 11:]
    assert offsets.abs().max() <= 2.0 + 1e-5  # at most one LR pixel (2 units) from its corner
    assert torch.allclose(cells, torch.tensor([2 * 5 / height, 2 * 7 / width]).expand_as(cells))


def test_bicubic_down_then_up_of_a_smooth_image_is_close():
    hr, lr = benchmark_pair(smooth_image(96, 80), 2)
    assert lr.shape == (3, 48, 40)
    assert bicubic_psnr(hr, lr, 2) > 40


def test_psnr_identical_noise_and_shave():
    target = torch.full((3, 20, 20), 128 / 255)
    assert psnr(target, target) == math.inf
    brighter = target + 10 / 255  # every channel +10 levels: Y differs by 10 * 219/255 levels
    expected = -10 * math.log10((10 / 255 * 219 / 255) ** 2)
    assert psnr(brighter, target) == pytest.approx(expected, abs=1e-5)  # float32 luma
    noisy = target.clone()
    noisy[:, :2] += 0.2  # only in the border rows: shaving 2 pixels removes it
    assert psnr(noisy, target, shave=2) == math.inf
    assert psnr(noisy, target, shave=1) < 30
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(target, target[:, :10])


def dense_decoder(decoder, k: int) -> nn.Sequential:
    """The decoder at width ``k`` built by hand from its weight slices (rescaling by 256/k)."""
    layers, n_in, scale = [], decoder.in_features, 1.0
    for block in decoder.blocks:
        linear = nn.Linear(n_in, k)
        linear.weight.data = block.linear.weight[:k, :n_in].detach() * scale
        linear.bias.data = block.linear.bias[:k].detach()
        layers += [linear, nn.ReLU()]
        n_in, scale = k, block.dropout.width / k
    head = nn.Linear(k, 3)
    head.weight.data = decoder.head.weight[:, :k].detach() * scale
    head.bias.data = decoder.head.bias.detach()
    return nn.Sequential(*layers, head)


@pytest.mark.parametrize("k", [1, 8, 100, 256])
def test_truncated_decoder_equals_a_dense_mlp_of_the_kept_units(k):
    torch.manual_seed(0)
    model = LIIF(channels=4, blocks=1, dropout=DropoutSpec(rescale=True)).eval()
    x = torch.randn(2, 4, 50, model.decoder.in_features)
    set_width(model.decoder, k)
    with torch.no_grad():
        expected = dense_decoder(model.decoder, k)(x)
        # Rescaling by (256/k) per layer amplifies float32 rounding: compare relative to the size.
        tolerance = 1e-5 * max(1.0, expected.abs().max().item())
        assert (model.decoder(x) - expected).abs().max() <= tolerance
        projected = model.decoder.project(x)  # the sweep's cached path
        assert (model.decoder.forward_projected(projected) - expected).abs().max() <= tolerance
    dense_params = sum(p.numel() for p in dense_decoder(model.decoder, k).parameters())
    assert model.decoder.num_params(k) == dense_params


def test_cached_width_sweep_equals_rendering_each_width():
    torch.manual_seed(0)
    model = LIIF(channels=4, blocks=1, hidden=[16, 16], dropout=DropoutSpec()).eval()
    hr, lr = benchmark_pair(smooth_image(30, 27), 3)
    widths = [2, 9, 16]
    swept = psnr_by_width(model, hr, lr, 3, width_tails(model.decoder, widths, torch.float32), 50)
    for width, value in zip(widths, swept, strict=True):
        set_width(model.decoder, width)
        rendered = model.upsample(to_float(lr)[None], *hr.shape[-2:], chunk=77)[0]
        assert value == pytest.approx(psnr(rendered, to_float(hr), shave=3), abs=1e-6)
    set_width(model.decoder, None)
    bf16 = psnr_by_width(model, hr, lr, 3, width_tails(model.decoder, widths, torch.bfloat16), 50)
    assert bf16 == pytest.approx(swept, abs=0.1)


def test_query_sampler_examples():
    images = [smooth_image(64, 70), smooth_image(20, 20)]  # the second is too small for x4
    sampler = QuerySampler(images, lr_size=12, queries=100, min_scale=1.0, max_scale=4.0)
    assert len(sampler.images) == 1
    torch.manual_seed(0)
    lr, coord, cell, colour = sampler.batch(3)
    assert lr.shape == (3, 3, 12, 12) and coord.shape == cell.shape == (3, 100, 2)
    assert colour.shape == (3, 100, 3) and 0 <= colour.min() and colour.max() <= 1
    assert coord.abs().max() < 1
    sides = 2 / cell[:, 0, 0]  # HR crop side: lr_size x scale, scale in [1, 4]
    assert ((sides >= 12) & (sides <= 48)).all()
    with pytest.raises(ValueError, match="at least 48 pixels"):
        QuerySampler(images[1:], lr_size=12, queries=100)


MATLAB_LR = Path(os.environ.get("STRUCTURAL_DROPOUT_DATA", REPO / "data")) / "sr"


@pytest.mark.skipif(
    not (MATLAB_LR / "Set5_LRBI_RCAN").is_dir(),
    reason=f"no {MATLAB_LR / 'Set5_LRBI_RCAN'} (MATLAB bicubic LR images of Set5): set "
    "STRUCTURAL_DROPOUT_DATA to a data folder holding sr/Set5 and sr/Set5_LRBI_RCAN to run it",
)
def test_downsampling_matches_matlab_imresize():
    for scale in (2, 3, 4):
        hr = modcrop(read_image(MATLAB_LR / "Set5" / "butterfly.png"), scale)
        ours = downsample(hr, scale).float()
        matlab = read_image(
            MATLAB_LR / "Set5_LRBI_RCAN" / f"x{scale}" / f"butterfly_LRBI_x{scale}.png"
        ).float()
        assert ours.shape == matlab.shape
        assert (ours - matlab).abs().mean() < 0.25  # grey levels
        assert (ours - matlab)[:, scale:-scale, scale:-scale].abs().max() <= 2


@pytest.fixture
def tiny_sr(tmp_path) -> Path:
    """A data dir where every set is the same two tiny images."""
    folder = tmp_path / "images"
    folder.mkdir()
    write_image(smooth_image(40, 44), folder / "baby.png")
    write_image(smooth_image(36, 30).flip(-1), folder / "bird.png")
    return tmp_path


def liif_smoke_config(data: Path, *overrides: str):
    sets = "{Set5: images, Set14: images, B100: images, DIV2K: images}"
    return compose_train(
        "experiment=liif",
        "profile=smoke",
        f"data_dir={data}",
        "task.train_sets=[images]",
        f"task.test_sets={sets}",
        *overrides,
    )


def test_liif_smoke_train_sweep_and_upscale(tmp_path, tiny_sr):
    config = liif_smoke_config(tiny_sr, f"results_dir={tmp_path / 'results'}", "sweep.figures=true")
    info = train_and_sweep(config, tmp_path / "run")
    results = tmp_path / "results"
    sweep = pd.read_csv(results / "sweep.csv")
    assert list(sweep.columns) == ["width", "params", "params_total", "scale", "dataset", "psnr"]
    assert set(zip(sweep.dataset, sweep.scale, strict=True)) == {
        ("val", 2),  # the held-out training image: validation
        ("Set5", 2),
        ("Set5", 3),
        ("Set14", 2),
        ("Set5", 6),
    }
    assert sorted(sweep[(sweep.dataset == "Set5") & (sweep.scale == 2)].width) == [2, 5, 8]
    encoder = (sweep.params_total - sweep.params).unique()
    assert len(encoder) == 1 and encoder[0] > 0
    assert sweep.psnr.between(5, 100).all()
    bicubic = pd.read_csv(results / "bicubic.csv")
    assert list(bicubic.columns) == ["scale", "dataset", "psnr"] and len(bicubic) == 5
    for name in ("psnr_vs_width.png", "psnr_vs_params.png", "Set5_baby_x2.png", "run.json"):
        assert (results / name).stat().st_size > 0
    assert json.loads((results / "run.json").read_text())["commit"] == info["commit"]
    full = info["full_width"]
    assert {row["width"] for row in full} == {8}

    out = tmp_path / "up.png"
    run_script(
        "scripts/upscale.py",
        f"checkpoint={tmp_path / 'run' / 'checkpoint.pt'}",
        f"input={tiny_sr / 'images' / 'bird.png'}",
        "scale=2.5",
        "width=4",
        f"output={out}",
        timeout=300,
    )
    assert read_image(out).shape == (3, 90, 75)


def test_validation_images_are_held_out_of_training(tiny_sr):
    def task(seed):
        config = liif_smoke_config(tiny_sr, f"task.split_seed={seed}")
        task = instantiate(config.task)
        task.setup(torch.device("cpu"))
        return task

    held = {}
    for seed in range(6):
        val = task(seed).test_images("val")
        train = task(seed).sampler.images
        assert len(val) == 1 and len(train) == 1
        ((name, image),) = val.items()
        assert not torch.equal(train[0], image)  # the held-out image is not trained on
        held[seed] = name
    assert set(held.values()) == {"images/baby", "images/bird"}  # the seed picks which
    with pytest.raises(ValueError, match="val_images=2 leaves none"):
        instantiate(liif_smoke_config(tiny_sr, "task.val_images=2").task).setup(torch.device("cpu"))


def test_liif_params_total_counts_the_encoder_once():
    model = LIIF(channels=8, blocks=2, hidden=[16, 16], dropout=DropoutSpec())
    encoder = sum(p.numel() for p in model.encoder.parameters())
    for width in (1, 7, 16):
        assert count_params(model, width) == encoder + model.decoder.num_params(width)


def test_liif_rejects_bad_settings(tmp_path, tiny_sr):
    config = liif_smoke_config(tiny_sr, "task.suites.widths.datasets=[Urban100]")
    with pytest.raises(InstantiationException, match="Urban100"):  # wraps the task's ValueError
        train_and_sweep(config, tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="no image folder"):
        train_and_sweep(liif_smoke_config(tmp_path / "nowhere"), tmp_path / "run2")


def test_liif_independent_model_sweeps_only_its_own_width(tmp_path, tiny_sr):
    config = liif_smoke_config(tiny_sr, "method=independent", "method.width=3", "task.picture=null")
    train_and_sweep(config, tmp_path / "run")
    sweep = pd.read_csv(tmp_path / "run" / "sweep.csv")
    assert set(sweep.width) == {3}  # every suite: the explicit sweep.widths ([null]: full width)
    model = LIIF(channels=4, blocks=1, hidden=[3, 3], dropout=DropoutSpec())
    assert sweep.params.unique().tolist() == [model.decoder.num_params()]


def test_liif_trains_with_nested_distillation(tmp_path, tiny_sr):
    config = liif_smoke_config(tiny_sr, "method=nested_distill", "dropout.lower_bound=2")
    info = train_and_sweep(config, tmp_path / "run")
    assert all(5 < row["psnr"] < 100 for row in info["full_width"])
