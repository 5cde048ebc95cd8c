"""The benchmarks of ``make bench``: each returns ``timing.Comparison`` rows for bench.csv."""

from __future__ import annotations

import copy
import gzip
import shutil
from pathlib import Path
from time import perf_counter

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from experiments.mnist.data import MEAN, STD, raw_folder
from structural_dropout import export, set_width
from structural_dropout.lab.build import build_run
from structural_dropout.lab.sweep import sweep
from structural_dropout.lab.training import step_loss

from .models import (
    SEED,
    example_input,
    lenet5,
    magnitude_pruned,
    native_mlp,
    plain_mlp,
    structural_mlp,
)
from .timing import Comparison, compare


@torch.inference_mode()
def export_vs_native(
    models: list[str], widths: list[int], batches: list[int], rounds: int, min_run_time: float
) -> list[Comparison]:
    """An exported width-``w`` model vs the same dense model built natively from torch.nn, and
    beside each case its control: the native model vs an identical copy of it. Two identical
    models in different memory differ by up to ~15% per case on a 2-core machine (placement,
    not arithmetic), so the control's spread is the resolution of the export's ratio."""
    rows = []
    for name in models:
        model = structural_mlp(name).eval()
        for width in widths:
            set_width(model, width)
            exported, native = export(model, width), native_mlp(name, width)
            twin = copy.deepcopy(native)
            for batch in batches:
                x = example_input(name, batch)
                for benchmark, candidate in (
                    ("export_vs_native", exported),
                    ("identical_dense_models", twin),
                ):
                    rows.append(
                        compare(
                            benchmark,
                            f"{name} w={width} batch={batch}",
                            lambda native=native, x=x: native(x),
                            lambda candidate=candidate, x=x: candidate(x),
                            rounds,
                            min_run_time,
                            fastest=True,  # the same arithmetic on every call
                        )
                    )
    return rows


@torch.inference_mode()
def lenet5_small_vs_full(
    width: int, sparsity: float, batches: list[int], rounds: int, min_run_time: float
) -> list[Comparison]:
    """LeNet-5's exported width-``width`` model against the full one (the structural saving),
    and beside it the full model magnitude-pruned to ``sparsity`` as it runs: dense with zeros,
    and with its linear layers in torch's CSR sparse kernels (convolutions stay dense)."""
    model = lenet5()
    full = export(model)
    set_width(model, width)
    candidates = {
        f"exported w={width}": export(model, width),
        f"pruned {sparsity:.0%} dense": magnitude_pruned(full, sparsity, sparse=False),
        f"pruned {sparsity:.0%} sparse": magnitude_pruned(full, sparsity, sparse=True),
    }
    rows = []
    for batch in batches:
        x = example_input("lenet5", batch)
        for name, candidate in candidates.items():
            rows.append(
                compare(
                    "lenet5_small_vs_full",
                    f"{name} batch={batch}",
                    lambda x=x: full(x),
                    lambda candidate=candidate, x=x: candidate(x),
                    rounds,
                    min_run_time,
                    fastest=True,
                )
            )
    return rows


def sd_train_step_vs_plain(
    config: DictConfig, rounds: int, min_run_time: float
) -> list[Comparison]:
    """One optimizer step of the MNIST MLP with structural dropout (p=1, one uniform cut per
    step, only the kept units computed) vs the same step without it; the batch size and the
    optimizer are the MNIST training config's (``config``)."""
    torch.manual_seed(SEED)
    batch = config.task.batch_size
    x, y = torch.randn(batch, 784), torch.randint(0, 10, (batch,))

    def step_of(model):
        model.train()
        optimizer = instantiate(config.optimizer)(model.parameters())

        def step():
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()

        return step

    return [
        compare(
            "sd_train_step_vs_plain",
            f"mnist_mlp batch={batch} p=1 uniform, {_optimizer_name(config.optimizer)}",
            step_of(plain_mlp("mnist_mlp")),
            step_of(structural_mlp("mnist_mlp")),
            rounds,
            min_run_time,
        )
    ]


def method_step_vs_plain(
    configs: dict[str, DictConfig], rounds: int, min_run_time: float
) -> list[Comparison]:
    """One training step of each method (its training config: the final comparison's setting)
    against one step of plain training (``configs["none"]``), on the same first batch: what the
    comparison's one run costs per step, timed side by side (its runs' wall times are noisier:
    two runs share the machine)."""

    def step_of(config: DictConfig):
        torch.manual_seed(SEED)
        run = build_run(config, torch.device("cpu"))
        batch = next(iter(run.task.train_batches()))
        run.model.train()

        def step():
            run.optimizer.zero_grad(set_to_none=True)
            step_loss(run.model, run.task, batch, run.settings).backward()
            run.optimizer.step()

        return step

    plain = step_of(configs["none"])
    return [
        compare(
            "method_step_vs_plain", f"mnist {name}", plain, step_of(config), rounds, min_run_time
        )
        for name, config in configs.items()
        if name != "none"
    ]


def _optimizer_name(optimizer: DictConfig) -> str:
    """``Adam lr=0.001 fused=True``: the optimizer's class and settings."""
    settings = {k: v for k, v in optimizer.items() if not k.startswith("_")}
    name = optimizer._target_.rsplit(".", 1)[-1]
    return " ".join([name, *(f"{k}={v}" for k, v in settings.items())])


def sweep_cached_vs_naive(config: DictConfig, naive_widths: int) -> list[Comparison]:
    """PointNet's head-only width sweep over all 512 widths: the backbone's global features
    computed once (candidate) vs a full forward pass per width (baseline, timed on
    ``naive_widths`` evenly spaced widths and scaled to 512: it takes seconds per width)."""
    torch.manual_seed(SEED)
    model = instantiate(config.model, truncate=["head"]).eval()
    seconds = {}
    for cached in (False, True):
        task = instantiate(config.task, cache_backbone=cached)
        task.setup(torch.device("cpu"))
        widths = None if cached else torch.linspace(1, 512, naive_widths).round().int().tolist()
        total = _timed(lambda task=task, widths=widths: sweep(model, task, widths, progress=False))
        seconds[cached] = total / (512 if cached else naive_widths) * 512
    case = f"pointnet head, 512 widths, {len(task.splits['test'][1])} test shapes"
    case += f" (naive: {naive_widths} widths, scaled)"
    return [Comparison("sweep_cached_vs_naive", case, seconds[False], seconds[True])]


def mnist_pipeline_vs_dataloader(config: DictConfig, rounds: int) -> list[Comparison]:
    """One training epoch of batches: the in-memory pipeline (the MNIST task's: normalised
    tensors indexed by a shuffled permutation) vs torchvision's MNIST dataset through a
    per-sample DataLoader (ToTensor + Normalize per image), over the same training images."""
    task = instantiate(config.task)
    task.setup(torch.device("cpu"))
    batch = task.batch_size
    n_train = len(task.splits["train"][1])
    root = _plain_mnist(config.task.data_dir, Path(config.cache_dir) / "bench_mnist")
    dataset = datasets.MNIST(
        root,
        train=True,
        download=False,
        transform=transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,)), torch.flatten]
        ),
    )
    loader = DataLoader(Subset(dataset, range(n_train)), batch_size=batch, shuffle=True)

    def epoch(batches):
        for _ in batches():
            pass

    return [
        compare(
            "mnist_pipeline_vs_dataloader",
            f"one epoch of {n_train} images, batch={batch}",
            lambda: epoch(lambda: iter(loader)),
            lambda: epoch(task.train_batches),
            rounds,
            min_run_time=0.0,  # an epoch is long enough to time on its own
        )
    ]


def _plain_mnist(data_dir: str, root: Path) -> Path:
    """A copy of the MNIST idx files, uncompressed, where torchvision's dataset expects them."""
    target = raw_folder(root)
    target.mkdir(parents=True, exist_ok=True)
    for source in raw_folder(data_dir).glob("*-ubyte*"):
        plain = target / source.name.removesuffix(".gz")
        if not plain.exists():
            opener = gzip.open if source.suffix == ".gz" else open
            with opener(source, "rb") as f, open(plain, "wb") as out:
                shutil.copyfileobj(f, out)
    return root


def _timed(fn) -> float:
    start = perf_counter()
    fn()
    return perf_counter() - start
