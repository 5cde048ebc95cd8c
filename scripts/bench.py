"""Benchmarks behind the speed claims: python scripts/bench.py (make bench).

Writes results/bench/bench.csv (benchmark, case, baseline_s, candidate_s, ratio = candidate /
baseline), results/bench/widths.csv (params, multiply-adds and latency of each exported width)
and results/bench/run.json (provenance), and prints the tables. Settings: configs/bench.yaml.
"""

import time
from pathlib import Path

import hydra
import pandas as pd
from hydra import compose
from omegaconf import DictConfig, OmegaConf

from benchmarks import cases
from benchmarks.models import SEED
from benchmarks.widths import width_costs
from structural_dropout.checkpoint import atomic_write, write_json
from structural_dropout.runtime import provenance, resolve_device, set_threads


@hydra.main(version_base="1.3", config_path="../configs", config_name="bench")
def main(config: DictConfig) -> None:
    set_threads(config.num_threads)
    info = provenance(resolve_device("cpu"))  # before the tables are rewritten
    start = time.perf_counter()
    rounds, min_run_time = config.rounds, config.min_run_time

    def training_config(experiment: str, settings: DictConfig) -> DictConfig:
        shared = [f"data_dir={config.data_dir}", f"cache_dir={config.cache_dir}"]
        overrides = [f"experiment={experiment}", "profile=cpu", *shared, *settings.overrides]
        return compose("train", overrides)

    settings = config.export_vs_native
    benchmarks = [
        lambda: cases.export_vs_native(
            list(settings.models),
            list(settings.widths),
            list(settings.batches),
            rounds,
            min_run_time,
        ),
        lambda: cases.sd_train_step_vs_plain(
            config.sd_train_step_vs_plain.batch, rounds, min_run_time
        ),
        lambda: cases.sweep_cached_vs_naive(
            training_config("pointnet", config.sweep_cached_vs_naive),
            config.sweep_cached_vs_naive.naive_widths,
        ),
        lambda: cases.mnist_pipeline_vs_dataloader(
            training_config("mnist", config.mnist_pipeline_vs_dataloader),
            config.mnist_pipeline_vs_dataloader.rounds,
        ),
    ]
    out = Path(config.out_dir)
    rows = []
    for run in benchmarks:
        rows += [comparison.row() for comparison in run()]
        print(pd.DataFrame(rows[-1:]).to_string(index=False, header=False), flush=True)
    bench = pd.DataFrame(rows)
    widths = pd.DataFrame(
        width_costs(
            OmegaConf.to_container(config.widths.widths),
            OmegaConf.to_container(config.widths.batches),
            min_run_time,
        )
    )
    for name, table in (("bench.csv", bench), ("widths.csv", widths)):
        atomic_write(out / name, lambda tmp, table=table: table.to_csv(tmp, index=False))
    write_json(
        out / "run.json",
        {
            "config": OmegaConf.to_container(config, resolve=True),
            "seed": SEED,
            **info,
            "seconds": round(time.perf_counter() - start, 1),
        },
    )
    print(bench.to_markdown(index=False, floatfmt=".4g"))
    print(widths.to_markdown(index=False, floatfmt=".4g"))


if __name__ == "__main__":
    main()
