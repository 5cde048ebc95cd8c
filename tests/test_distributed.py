"""Data-parallel training (torchrun, gloo on CPU): two processes in same-cut mode train the
weights one process trains over the same global batch; only rank 0 writes; a resumed two-process
run (either cut mode) continues as an uninterrupted one."""

import json
import logging
import os

import pytest
import torch

from conftest import run_script
from experiments.mnist.task import MnistTask
from structural_dropout import TruncatableMLP
from structural_dropout.lab import distributed, training
from structural_dropout.lab.distributed import Distributed
from structural_dropout.spec import DropoutSpec

SMOKE = ["experiment=mnist", "profile=smoke", "task.download=false", "num_threads=1",
         "progress=false", "scheduler.T_max=2", "trainer.epochs=2"]  # fmt: skip


@pytest.fixture(scope="module")
def train(tmp_path_factory, fake_mnist):
    """``train(name, *overrides, ranks=1, folder=name)``: the weights of a smoke MNIST run (2
    epochs) in ``<tmp>/<folder>``; a name already trained is not trained again (tests share)."""
    root, done = tmp_path_factory.mktemp("runs"), {}

    def run(name, *overrides, ranks=1, folder=None):
        run_dir = root / (folder or name)
        if name not in done:
            launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"]
            where = [f"data_dir={fake_mnist}", f"hydra.run.dir={run_dir}"]
            run_script(*(launcher if ranks > 1 else []), "scripts/train.py", *SMOKE, *where,
                       *overrides)  # fmt: skip
            done[name] = torch.load(run_dir / "checkpoint.pt", weights_only=False)["model"]
        return done[name], run_dir

    return run


def test_two_ranks_with_one_cut_train_what_one_process_trains(train):
    one, _ = train("one")
    two, two_dir = train("same", ranks=2)
    assert one.keys() == two.keys()
    for name in one:  # the same steps, up to the rounding of a sum split in two
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-5, msg=name)
    run = json.loads((two_dir / "run.json").read_text())
    assert run["distributed"] == {"world_size": 2, "cuts": "same", "backend": "gloo"}
    assert (two_dir / "sweep.csv").is_file()  # rank 0 swept and wrote


@pytest.mark.parametrize("cuts", ["same", "per_rank"])
def test_a_resumed_two_rank_run_continues_as_an_uninterrupted_one(train, cuts):
    mode = [] if cuts == "same" else [f"+distributed.cuts={cuts}"]
    whole, _ = train(cuts, *mode, ranks=2)
    _, parts = train(f"{cuts}_parts", *mode, "trainer.epochs=1", ranks=2)  # stopped after 1
    assert torch.load(parts / "checkpoint.pt", weights_only=False)["epoch"] == 1
    resumed, _ = train(f"{cuts}_resumed", *mode, "resume=true", ranks=2, folder=f"{cuts}_parts")
    for name in whole:
        assert torch.equal(resumed[name], whole[name]), name
    if cuts == "per_rank":  # its ranks drew other cuts than one shared stream does
        same, _ = train("same", ranks=2)
        assert any(not torch.equal(same[k], whole[k]) for k in whole)


class OneOfTwoRanks(Distributed):
    """A rank of a two-process group, with the collectives left out: what ``train`` writes."""

    def average_gradients(self, parameters, loss, share):
        return loss.item()


@pytest.mark.parametrize("rank", [0, 1])
def test_only_rank_0_writes_the_checkpoint_and_each_rank_trains_its_slice(tmp_path, fake_mnist,
                                                                           rank):  # fmt: skip
    task = MnistTask(str(fake_mnist), download=False, batch_size=100, val_size=200)
    task.setup(torch.device("cpu"))
    sizes = []
    task_loss = task.loss
    task.loss = lambda model, batch: sizes.append(len(batch[0])) or task_loss(model, batch)
    model = TruncatableMLP(784, [16], 10, DropoutSpec(p=1.0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    checkpoint = tmp_path / "checkpoint.pt"
    settings = training.TrainerSettings(epochs=1)
    training.train(model, task, optimizer, None, settings, checkpoint_path=checkpoint,
                   config={"seed": 0}, progress=False,
                   distributed=OneOfTwoRanks(rank, 2, rank))  # fmt: skip
    assert checkpoint.is_file() == (rank == 0)
    assert set(sizes) == {50}  # half of every batch of 100


SLURM = {"SUBMITIT_EXECUTOR": "slurm", "SLURM_NTASKS": "2", "SLURM_PROCID": "1",
         "SLURM_LOCALID": "1", "SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "node1",
         "SLURM_NODEID": "0", "SLURM_JOB_NUM_NODES": "1"}  # fmt: skip


def test_a_slurm_task_finds_its_rank_and_a_bare_multi_task_job_is_an_error(monkeypatch):
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.setenv(key, "")  # recorded as it was, so that what submitit sets is undone
        monkeypatch.delenv(key)
    for key, value in SLURM.items():
        monkeypatch.setenv(key, value)
    joined = []
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group",
                        lambda backend, **kw: joined.append(backend))  # fmt: skip
    root, level = logging.getLogger(), logging.getLogger().level
    try:
        group = distributed.from_environment("per_rank")
        assert root.level == logging.WARNING  # one log: rank 0's
    finally:
        root.setLevel(level)
    assert (group.rank, group.world_size, group.local_rank, group.cuts) == (1, 2, 1, "per_rank")
    assert joined == ["gloo"] and os.environ["MASTER_ADDR"] == "node1"
    for key in ("WORLD_SIZE", "RANK"):
        monkeypatch.delenv(key)
    monkeypatch.delenv("SUBMITIT_EXECUTOR")
    with pytest.raises(RuntimeError, match="hydra/launcher=submitit_slurm"):
        distributed.from_environment()
    with pytest.raises(ValueError, match="distributed.cuts must be one of"):
        distributed.from_environment("sometimes")
