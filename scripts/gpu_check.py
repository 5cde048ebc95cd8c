"""The first thing to run on a GPU machine: every experiment's smoke run on CUDA, a timing of each
experiment's training step at its paper profile, and a 2-process DDP smoke run when there are two
GPUs (make gpu-check).

    python scripts/gpu_check.py                      # CUDA; writes results/gpu/gpu_check.json
    python scripts/gpu_check.py --device cpu --out /tmp/check --experiments mnist --steps 3

Each experiment trains as its config says (precision: fp32, or bf16 where the experiment sets
it); a step's time is the median of ``--steps`` steps after 3 warm-up steps, synchronised with the
GPU. An experiment whose data is missing is reported as skipped, with the reason; any other
failure stops the check. ``--device cpu`` runs the same path without CUDA (the tests do).
"""

import argparse
import json
from pathlib import Path

import torch

from structural_dropout.io import atomic_write
from structural_dropout.lab.gpu_check import EXPERIMENTS, REPO, ddp_smoke, smoke, step_time
from structural_dropout.lab.provenance import provenance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--out", type=Path, default=REPO / "results" / "gpu")
    parser.add_argument("--experiments", nargs="+", default=EXPERIMENTS, choices=EXPERIMENTS)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per experiment")
    parser.add_argument("--timing-profile", default="paper", choices=["smoke", "cpu", "paper"])
    parser.add_argument("--ddp", action="store_true", help="also the 2-process run on the CPU")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device here (torch.cuda.is_available() is False); "
                         "--device cpu runs the same check on the CPU")  # fmt: skip
    report = {"device": args.device, **provenance(torch.device(args.device)),
              "gpus": torch.cuda.device_count(), "smoke": {}, "step": {}}  # fmt: skip
    for experiment in args.experiments:
        for part, work in (
            ("smoke", lambda e=experiment: smoke(e, args.device, args.out)),
            ("step", lambda e=experiment: step_time(e, args.timing_profile, args.device,
                                                    args.steps)),
        ):  # fmt: skip
            try:
                report[part][experiment] = work()
            except FileNotFoundError as missing:  # data not on this machine: say so, go on
                report[part][experiment] = {"skipped": str(missing).splitlines()[0]}
            print(f"{experiment} {part}: {report[part][experiment]}", flush=True)
    two_gpus = args.device == "cuda" and torch.cuda.device_count() >= 2
    if two_gpus or args.ddp:
        report["ddp"] = ddp_smoke(args.device, args.out)
        print(f"ddp: {report['ddp']}", flush=True)
    else:
        report["ddp"] = {"skipped": "fewer than two GPUs"}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "gpu_check.json"
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(report, indent=2, default=str)))
    print(path)


if __name__ == "__main__":
    main()
