"""Time PointNet's head-only width sweep: cached backbone vs the naive per-width full evaluation.

    python scripts/bench_pointnet_sweep.py [naive_widths=8] [extra Hydra overrides...]

The cached sweep covers all 512 widths; the naive one runs ``naive_widths`` evenly spaced widths
and is extrapolated to 512 (it takes seconds per width). Weights do not change the cost, so the
model is freshly initialised. Prints one CSV row per case.
"""

import sys
import time

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from structural_dropout.runtime import REPO_CONFIGS, resolve_device, set_threads
from structural_dropout.sweep import sweep


def main(naive_widths: int, overrides: list[str]) -> None:
    with initialize_config_dir(config_dir=str(REPO_CONFIGS), version_base="1.3"):
        config = compose("train", ["experiment=pointnet", "profile=cpu", *overrides])
    set_threads(config.num_threads)
    device = resolve_device(config.device)
    torch.manual_seed(0)
    model = instantiate(config.model, truncate=["head"]).to(device).eval()
    timings = {}
    for cached in (True, False):
        task = instantiate(config.task, cache_backbone=cached)
        task.setup(device)
        widths = None if cached else torch.linspace(1, 512, naive_widths).round().int().tolist()
        start = time.perf_counter()
        rows = sweep(model, task, widths, progress=False)
        timings[cached] = (time.perf_counter() - start) / len(rows) * 512
    print("case,seconds_for_512_widths")
    print(f"cached,{timings[True]:.1f}")
    print(f"naive (extrapolated from {naive_widths} widths),{timings[False]:.1f}")
    print(f"speed-up,{timings[False] / timings[True]:.1f}")


if __name__ == "__main__":
    args = sys.argv[1:]
    count = int(args.pop(0).split("=")[1]) if args and args[0].startswith("naive_widths=") else 8
    main(count, args)
