"""LIIF figures: PSNR against decoder width and parameters per dataset and scale, with the
bicubic level drawn; and side-by-side crops of one image (HR, bicubic, several widths)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from structural_dropout import set_width  # noqa: E402
from structural_dropout.lab.reports.plots import save_figure  # noqa: E402
from structural_dropout.lab.sweep import read_table  # noqa: E402

from .data import resize, to_float  # noqa: E402
from .evaluation import benchmark_pair  # noqa: E402
from .metrics import psnr  # noqa: E402


def liif_figures(sweep_csv: str | Path, bicubic_csv: str | Path) -> list[Path]:
    """``psnr_vs_width.png`` and ``psnr_vs_params.png`` beside ``sweep_csv``: one panel per
    dataset (rows) and scale (columns), the bicubic PSNR as a dashed line."""
    sweep_csv = Path(sweep_csv)
    df = read_table(sweep_csv)
    bicubic = pd.read_csv(bicubic_csv).set_index(["dataset", "scale"])["psnr"]
    datasets = list(dict.fromkeys(df["dataset"]))
    scales = sorted(df["scale"].unique())
    paths = []
    for x, label, name in (
        ("width", "decoder width", "psnr_vs_width"),
        ("params", "decoder parameters", "psnr_vs_params"),
    ):
        fig, axes = plt.subplots(
            len(datasets),
            len(scales),
            figsize=(2.8 * len(scales), 2.4 * len(datasets)),
            squeeze=False,
        )
        for row, dataset in enumerate(datasets):
            for col, scale in enumerate(scales):
                ax = axes[row][col]
                part = df[(df["dataset"] == dataset) & (df["scale"] == scale)].sort_values(x)
                if part.empty:
                    ax.axis("off")
                    continue
                ax.plot(part[x], part["psnr"], marker="." if len(part) < 8 else None, label="LIIF")
                if (dataset, scale) in bicubic.index:
                    ax.axhline(bicubic[(dataset, scale)], ls="--", c="gray", label="bicubic")
                if x == "params":
                    ax.set_xscale("log")
                ax.set_title(f"{dataset} ×{scale}", fontsize=9)
                ax.tick_params(labelsize=7)
                ax.grid(alpha=0.3)
                ax.set_xlabel(label, fontsize=8)
                if col == 0:
                    ax.set_ylabel("PSNR (dB, Y)", fontsize=8)
        axes[0][0].legend(fontsize=7)
        paths.append(save_figure(fig, sweep_csv.parent / f"{name}.png"))
    return paths


@torch.no_grad()
def picture(
    model,
    image: Tensor,
    scale: int,
    widths: Sequence[int],
    box: Sequence[int] | None,
    path: Path,
    chunk: int = 4096,
) -> Path:
    """Crops of one image at ``scale``: HR, bicubic, and the model at each of ``widths``, each
    titled with its PSNR on the whole image. ``box`` = ``[top, left, size]`` in HR pixels
    (default: a centred square of a third of the shorter side)."""
    hr, lr = benchmark_pair(image, scale)
    height, width = hr.shape[-2:]
    if box is None:
        size = min(height, width) // 3
        box = [(height - size) // 2, (width - size) // 2, size]
    top, left, size = box
    device = next(model.parameters()).device
    model.eval()
    panels = [("HR", to_float(hr), None)]
    bicubic = to_float(resize(lr, height, width))
    panels.append(("bicubic", bicubic, psnr(bicubic, to_float(hr), scale)))
    encoded = model.encode(to_float(lr)[None].to(device))  # once: the encoder has no width
    try:
        for w in widths:
            set_width(model.decoder, w)
            sr = model.render(encoded, height, width, chunk)[0].cpu()
            panels.append((f"width {w}", sr, psnr(sr, to_float(hr), scale)))
    finally:
        set_width(model.decoder, None)
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.3))
    for ax, (title, picture_, value) in zip(axes, panels, strict=True):
        crop = picture_[:, top : top + size, left : left + size].clamp(0, 1)
        ax.imshow(crop.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(title if value is None else f"{title}: {value:.2f} dB", fontsize=9)
        ax.axis("off")
    return save_figure(fig, path)


def compare_runs(
    csvs: dict[str, str | Path], dataset: str, out_path: str | Path, bicubic_csv=None
) -> Path:
    """PSNR vs decoder width on ``dataset`` for several runs (e.g. structural vs plain), one
    panel per scale the runs share, the bicubic level dashed when ``bicubic_csv`` is given."""
    frames = {name: read_table(path) for name, path in csvs.items()}
    frames = {name: df[df["dataset"] == dataset] for name, df in frames.items()}
    scales = sorted(set.intersection(*(set(df["scale"]) for df in frames.values())))
    if not scales:
        raise ValueError(f"the runs share no scale on {dataset}")
    bicubic = None if bicubic_csv is None else pd.read_csv(bicubic_csv)
    fig, axes = plt.subplots(1, len(scales), figsize=(3.4 * len(scales), 3.0), squeeze=False)
    for ax, scale in zip(axes[0], scales, strict=True):
        for name, df in frames.items():
            part = df[df["scale"] == scale].sort_values("width")
            ax.plot(part["width"], part["psnr"], label=name)
        if bicubic is not None:
            level = bicubic[(bicubic["dataset"] == dataset) & (bicubic["scale"] == scale)]
            if not level.empty:
                ax.axhline(level["psnr"].iloc[0], ls="--", c="gray", label="bicubic")
        ax.set(title=f"{dataset} ×{scale}", xlabel="decoder width", ylabel="PSNR (dB, Y)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    return save_figure(fig, Path(out_path))
