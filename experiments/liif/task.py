"""Arbitrary-scale super-resolution with LIIF: the Task the shared loops train and sweep."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from structural_dropout import count_params
from structural_dropout.lab.sweep import sweep_widths

from .data import QuerySampler, load_folder
from .evaluation import benchmark_pair, bicubic_psnr, psnr_by_width, width_tails
from .figures import liif_figures, picture
from .model import LIIF

_SPLIT = re.compile(r"^(?P<dataset>.+)x(?P<scale>\d+)$")


VAL = "val"  # the dataset name of the held-out training images


class LiifTask:
    """Train on random crops of ``train_sets``; evaluate Y-PSNR on ``test_sets``.

    ``val_images`` training images (a seeded choice, ``split_seed``) are held out as the
    validation dataset ``val``: training-time validation and every choice read it; the
    benchmark sets in ``test_sets`` are for reporting only.

    ``suites`` says what the sweep measures: each entry names datasets, integer scales and the
    decoder widths (a list, or ``all`` for the sweep's ``start..max`` in ``step``s); a suite set
    to null is skipped (so a profile can drop one). A split for
    validation is ``<dataset>x<scale>``, e.g. ``Set5x4``. ``picture`` names the image, scale and
    widths of the side-by-side crops the sweep also draws. ``eval_dtype="bfloat16"`` runs the
    sweep's per-width decoder layers in bfloat16 (validation always runs in float32).
    """

    metric = "psnr"

    def __init__(
        self,
        data_dir: str,
        train_sets: Sequence[str],
        test_sets: Mapping[str, str],
        suites: Mapping[str, Mapping],
        picture: Mapping | None = None,
        download: bool = True,
        lr_size: int = 48,
        queries: int = 2304,
        batch_size: int = 16,
        min_scale: float = 1.0,
        max_scale: float = 4.0,
        steps_per_epoch: int = 1000,
        chunk: int = 4096,
        eval_dtype: str = "float32",
        val_images: int = 10,
        split_seed: int = 0,
        train_limit: int | None = None,
        test_limit: int | None = None,
    ):
        if steps_per_epoch < 1 or batch_size < 1 or chunk < 1 or val_images < 0:
            raise ValueError("steps_per_epoch, batch_size and chunk must be >= 1, val_images >= 0")
        if VAL in test_sets:
            raise ValueError(f"{VAL!r} names the held-out training images; rename that test set")
        suites = {name: suite for name, suite in suites.items() if suite is not None}
        for name, suite in suites.items():
            unknown = set(suite["datasets"]) - set(test_sets) - {VAL}
            if unknown:
                raise ValueError(f"suite {name!r} names datasets {unknown} not in test_sets")
        self.data_dir, self.download = Path(data_dir), download
        self.train_sets, self.test_sets = list(train_sets), dict(test_sets)
        self.suites, self.picture_settings = suites, picture
        self.lr_size, self.queries, self.batch_size = lr_size, queries, batch_size
        self.min_scale, self.max_scale = min_scale, max_scale
        if eval_dtype not in ("float32", "bfloat16"):
            raise ValueError(f"eval_dtype must be 'float32' or 'bfloat16', got {eval_dtype!r}")
        self._steps, self.chunk = steps_per_epoch, chunk
        self.eval_dtype = getattr(torch, eval_dtype)
        self.val_images, self.split_seed = val_images, split_seed
        self.train_limit, self.test_limit = train_limit, test_limit
        self._test_images: dict[str, dict[str, Tensor]] = {}

    def setup(self, device: torch.device) -> None:
        self.device = device
        images: dict[str, Tensor] = {}
        for folder in self.train_sets:
            for name, image in load_folder(self.data_dir / folder, self.download).items():
                images[f"{Path(folder).name}/{name}"] = image
        names = sorted(images)
        if self.val_images >= len(names):
            raise ValueError(
                f"val_images={self.val_images} leaves none of {len(names)} to train on"
            )
        order = torch.randperm(len(names), generator=torch.Generator().manual_seed(self.split_seed))
        held = set(order[: self.val_images].tolist())
        val = {names[i]: images[names[i]] for i in sorted(held)}
        self._test_images[VAL] = dict(list(val.items())[: self.test_limit])
        train = [images[name] for i, name in enumerate(names) if i not in held]
        self.sampler = QuerySampler(
            train[: self.train_limit], self.lr_size, self.queries, self.min_scale, self.max_scale
        )

    def test_images(self, dataset: str) -> dict[str, Tensor]:
        """The images of a test set (or of the validation set ``val``) by name (loaded on first
        use)."""
        if dataset == VAL:
            if VAL not in self._test_images:
                raise RuntimeError("the validation images are chosen in setup(); call it first")
            if not self._test_images[VAL]:
                raise ValueError("the validation set is empty (task.val_images=0)")
            return self._test_images[VAL]
        if dataset not in self.test_sets:
            raise ValueError(f"unknown test set {dataset!r}; known: {sorted(self.test_sets)}")
        if dataset not in self._test_images:
            images = load_folder(self.data_dir / self.test_sets[dataset], self.download)
            self._test_images[dataset] = dict(list(images.items())[: self.test_limit])
        return self._test_images[dataset]

    @property
    def steps_per_epoch(self) -> int:
        return self._steps

    def train_batches(self) -> Iterator[tuple[Tensor, ...]]:
        for _ in range(self._steps):
            yield tuple(t.to(self.device) for t in self.sampler.batch(self.batch_size))

    def example_inputs(self) -> tuple[Tensor, ...]:
        """An LR crop of two training images with the coordinates and cells of their queries."""
        return tuple(t.to(self.device) for t in self.sampler.batch(2)[:3])

    def predict(self, model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        lr, coord, cell, _ = batch
        return model(lr, coord, cell)

    def criterion(self, prediction: Tensor, batch: tuple[Tensor, ...]) -> Tensor:
        return F.l1_loss(prediction, batch[-1])

    def distill_loss(self, prediction: Tensor, teacher: Tensor) -> Tensor:
        return F.l1_loss(prediction, teacher)

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        return self.criterion(self.predict(model, batch), batch)

    def prepare_eval(self, model: nn.Module, split: str) -> tuple[list, int]:
        match = _SPLIT.match(split)
        if match is None:
            raise ValueError(f"split {split!r} must be <dataset>x<scale>, e.g. Set5x4")
        scale = int(match["scale"])
        images = self.test_images(match["dataset"]).values()
        pairs = [benchmark_pair(image, scale) for image in images]
        return pairs, scale

    def evaluate(self, model: nn.Module, prepared: tuple[list, int]) -> float:
        # The encoder runs again at each validation width: holding every image's features instead
        # would cost GBs on DIV2K, and the encoder is ~1% of a full-width decode here.
        pairs, scale = prepared
        values = [psnr_by_width(model, hr, lr, scale, None, self.chunk)[0] for hr, lr in pairs]
        return sum(values) / len(values)

    def _suite_widths(self, suite: Mapping, model: LIIF, sweep: Mapping) -> list[int]:
        """The suite's widths; an explicit ``sweep.widths`` list replaces every suite's."""
        widths = suite["widths"] if sweep.get("widths") is None else sweep["widths"]
        max_width = max(model.decoder.hidden)
        if widths == "all":
            return sweep_widths(None, max_width, sweep["step"], sweep["start"])
        return sweep_widths(list(widths), max_width)

    @torch.inference_mode()
    def sweep(
        self, model: LIIF, sweep: Mapping, progress: bool = True, count=count_params
    ) -> dict[str, list[dict]]:
        """PSNR of every suite's datasets x scales x widths, and of bicubic upsampling: the rows of
        ``sweep.csv`` and ``bicubic.csv``. ``count(module, width)`` counts parameters."""
        model.eval()
        merged: dict[tuple[str, int], set[int]] = {}  # every width each dataset and scale needs
        for suite in self.suites.values():
            widths = self._suite_widths(suite, model, sweep)
            for dataset in suite["datasets"]:
                for scale in suite["scales"]:
                    merged.setdefault((dataset, int(scale)), set()).update(widths)
        total = sum(len(self.test_images(dataset)) for dataset, _ in merged)
        bar = tqdm(total=total, desc="sweep images", disable=not progress)
        rows, bicubic = [], []
        for (dataset, scale), width_set in merged.items():
            widths = sorted(width_set)
            tails = width_tails(model.decoder, widths, self.eval_dtype)  # once for all images
            per_image, baseline = [], []
            for hr, lr in (benchmark_pair(im, scale) for im in self.test_images(dataset).values()):
                per_image.append(psnr_by_width(model, hr, lr, scale, tails, self.chunk))
                baseline.append(bicubic_psnr(hr, lr, scale))
                bar.update()
            for i, width in enumerate(widths):
                rows.append(
                    {
                        "width": width,
                        "params": count(model.decoder, width),
                        "params_total": count(model, width),
                        "scale": scale,
                        "dataset": dataset,
                        "psnr": sum(p[i] for p in per_image) / len(per_image),
                    }
                )
            bicubic.append(
                {"scale": scale, "dataset": dataset, "psnr": sum(baseline) / len(baseline)}
            )
        bar.close()
        return {"sweep.csv": rows, "bicubic.csv": bicubic}

    def figures(self, out_dir: Path, model: LIIF | None = None) -> list[Path]:
        """PSNR figures from the CSVs in ``out_dir``; with ``model``, also the picture."""
        paths = liif_figures(out_dir / "sweep.csv", out_dir / "bicubic.csv")
        if model is not None and self.picture_settings is not None:
            settings = self.picture_settings
            image = self.test_images(settings["dataset"])[settings["image"]]
            paths.append(
                picture(
                    model,
                    image,
                    int(settings["scale"]),
                    list(settings["widths"]),
                    settings.get("box"),
                    out_dir / f"{settings['dataset']}_{settings['image']}_x{settings['scale']}.png",
                    self.chunk,
                )
            )
        return paths
