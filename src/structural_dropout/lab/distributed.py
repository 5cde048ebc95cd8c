"""Data-parallel training over processes (``torch.distributed``): torchrun on one machine, or
one SLURM task per GPU (Hydra's submitit launcher).

Every rank builds the same model (rank 0's initial weights are broadcast), draws the same global
batch and trains on its slice of it; after each backward the gradients are averaged with one
all-reduce, weighted by each slice's share of the batch, so every rank takes the same optimizer
step. This is what ``DistributedDataParallel`` does, written out: our rules run several forwards
per backward (the sandwich rule, MatFormer's) and a cut leaves the parameters above it unused,
which DDP's reducer only allows with ``find_unused_parameters`` and a static graph, at a cost.

Cuts (``distributed.cuts``):

- ``same``: every rank draws the same cut (one random stream), so N processes train exactly as
  one process would on the whole batch: the same weights, up to float rounding (tested);
- ``per_rank``: each rank draws its own cut (and its own batch), so one step trains N widths at no
  extra cost per GPU, a sandwich rule for free; each epoch re-seeds every rank's stream from
  (seed, epoch, rank), so a resumed run continues as an uninterrupted one would.

Only rank 0 writes (checkpoints, tables, figures, ``run.json``) and sweeps; every rank reads and
writes rank 0's run directory. BatchNorm statistics are each rank's own (no SyncBatchNorm).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

log = logging.getLogger(__name__)

CUTS = ("same", "per_rank")


@dataclass
class Distributed:
    rank: int
    world_size: int
    local_rank: int
    cuts: str = "same"

    @property
    def main(self) -> bool:
        return self.rank == 0

    def describe(self) -> dict:
        return {"world_size": self.world_size, "cuts": self.cuts, "backend": dist.get_backend()}

    def device(self, device: torch.device) -> torch.device:
        """This rank's GPU (its local rank) when training on CUDA."""
        return torch.device("cuda", self.local_rank) if device.type == "cuda" else device

    def seed_epoch(self, seed: int, epoch: int) -> None:
        """``per_rank``: each rank's own random stream for this epoch (a resume replays it)."""
        if self.cuts == "per_rank":
            value = (seed * 1_000_003 + epoch * 10_007 + self.rank) % 2**31
            torch.manual_seed(value)
            np.random.seed(value)

    def broadcast_module(self, module: nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank."""
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)

    def broadcast_path(self, path: Path) -> Path:
        """Rank 0's ``path`` (its run directory) on every rank."""
        box = [str(path)]
        dist.broadcast_object_list(box, src=0)
        return Path(box[0])

    def shard(self, batch):
        """This rank's slice of a global batch (tensors split along their first dimension, as
        ``torch.tensor_split`` does) and its share of the batch's samples."""
        tensors = batch if isinstance(batch, list | tuple) else (batch,)
        sizes = {t.shape[0] for t in tensors if isinstance(t, Tensor) and t.dim() > 0}
        if len(sizes) != 1:
            raise ValueError(f"a batch to split over ranks needs one batch size, got {sizes}")
        (size,) = sizes
        if size < self.world_size:
            raise ValueError(f"a batch of {size} cannot be split over {self.world_size} ranks")
        parts = [
            t.tensor_split(self.world_size)[self.rank] if isinstance(t, Tensor) and t.dim() else t
            for t in tensors
        ]
        share = len(torch.arange(size).tensor_split(self.world_size)[self.rank]) / size
        mine = type(batch)(parts) if isinstance(batch, list | tuple) else parts[0]
        return mine, share

    def average_gradients(self, parameters: Iterable[nn.Parameter], loss: Tensor,
                          share: float) -> float:  # fmt: skip
        """All-reduce the gradients and the loss, each rank weighted by its ``share`` of the
        batch: the whole batch's gradient on every rank. A parameter no rank computed a gradient
        for keeps none (the optimizer skips it, as in one process); one that only some ranks
        reached (``per_rank`` cuts) counts as zero on the others. Returns the batch's loss."""
        parameters = [p for p in parameters if p.requires_grad]
        reached = torch.tensor([p.grad is not None for p in parameters], dtype=torch.int32,
                               device=loss.device)  # fmt: skip
        dist.all_reduce(reached)
        used = [p for p, n in zip(parameters, reached.tolist(), strict=True) if n > 0]
        for p in used:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in used] + [loss.detach().reshape(1)])
        flat.mul_(share)
        dist.all_reduce(flat)
        offset = 0
        for p in used:
            n = p.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p))
            offset += n
        return float(flat[-1])


def from_environment(cuts: str = "same", device: torch.device | None = None) -> Distributed | None:
    """The process group torchrun (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``) or SLURM
    (``SLURM_NTASKS`` > 1, via submitit's environment) describes; None for a single process."""
    if cuts not in CUTS:
        raise ValueError(f"distributed.cuts must be one of {CUTS}, got {cuts!r}")
    tasks = int(os.environ.get("SLURM_NTASKS", "1"))
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 and tasks > 1:
        if os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
            raise RuntimeError(
                f"a SLURM job of {tasks} tasks without torchrun's variables: submit it with "
                "hydra/launcher=submitit_slurm (one task per GPU) or run torchrun in one task"
            )
        from submitit.helpers import TorchDistributedEnvironment  # the lab extra

        TorchDistributedEnvironment().export()  # MASTER_ADDR/PORT, RANK, WORLD_SIZE, LOCAL_RANK
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return None
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        cuda = device is not None and device.type == "cuda"
        if cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(minutes=30))
    if rank > 0:  # one log: rank 0's
        logging.getLogger().setLevel(logging.WARNING)
    return Distributed(rank, world_size, local_rank, cuts)
