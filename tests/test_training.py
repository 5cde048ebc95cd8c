"""The shared training loop: exact resume after an interruption, atomic files, loud failures."""

import pytest
import torch
from test_configs import compose_train

from experiments.mnist.task import MnistTask
from structural_dropout import TruncatableMLP
from structural_dropout.io import atomic_write
from structural_dropout.lab.checkpoint import load_checkpoint
from structural_dropout.lab.provenance import seed_everything
from structural_dropout.lab.run import train_and_sweep
from structural_dropout.lab.training import TrainerSettings, train
from structural_dropout.spec import DropoutSpec


class Interrupted(Exception):
    pass


def run(fake_mnist, checkpoint, interrupt_after=None, resume=False):
    """Three epochs of a small MLP; optionally killed after ``interrupt_after`` steps."""
    seed_everything(0)
    task = MnistTask(str(fake_mnist), download=False, batch_size=100, val_size=200)
    task.setup(torch.device("cpu"))
    model = TruncatableMLP(784, [32, 32], 10, DropoutSpec(p=1.0), batch_norm=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 3)
    if interrupt_after is not None:
        batches, seen = task.train_batches, [0]

        def interrupting():
            for batch in batches():
                seen[0] += 1
                if seen[0] > interrupt_after:
                    raise Interrupted
                yield batch

        task.train_batches = interrupting
    state = load_checkpoint(checkpoint) if resume else None
    settings = TrainerSettings(epochs=3, val_widths=(None, 8))
    history = train(
        model,
        task,
        optimizer,
        scheduler,
        settings,
        checkpoint_path=checkpoint,
        config={"test": True},
        resume=state,
        progress=False,
    )
    return model, history


def test_killed_and_resumed_run_equals_uninterrupted(tmp_path, fake_mnist):
    reference, reference_history = run(fake_mnist, tmp_path / "a.pt")
    with pytest.raises(Interrupted):
        run(fake_mnist, tmp_path / "b.pt", interrupt_after=15)  # 10 steps an epoch: mid-epoch 2
    assert load_checkpoint(tmp_path / "b.pt")["epoch"] == 1
    resumed, history = run(fake_mnist, tmp_path / "b.pt", resume=True)
    for key, value in reference.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key

    def without_time(h):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in h]

    assert without_time(history) == without_time(reference_history)


def test_non_finite_loss_stops_and_keeps_last_checkpoint(tmp_path, fake_mnist):
    seed_everything(0)
    task = MnistTask(str(fake_mnist), download=False, batch_size=100, val_size=200)
    task.setup(torch.device("cpu"))
    model = TruncatableMLP(784, [16], 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    calls = [0]
    loss = task.loss

    def poisoned(model, batch):
        calls[0] += 1
        return loss(model, batch) * (float("nan") if calls[0] > 12 else 1.0)

    task.loss = poisoned
    with pytest.raises(FloatingPointError, match="non-finite loss nan at epoch 2, step 3"):
        train(
            model,
            task,
            optimizer,
            None,
            TrainerSettings(epochs=3),
            checkpoint_path=tmp_path / "c.pt",
            config={},
            progress=False,
        )
    state = load_checkpoint(tmp_path / "c.pt")
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_atomic_write_never_leaves_a_half_written_file(tmp_path):
    target = tmp_path / "results.csv"
    target.write_text("old complete content\n")

    def crash_midway(tmp):
        tmp.write_text("half of the new con")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, crash_midway)
    assert target.read_text() == "old complete content\n"
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind
    atomic_write(target, lambda tmp: tmp.write_text("new\n"))
    assert target.read_text() == "new\n"


def test_bad_trainer_settings_raise():
    with pytest.raises(ValueError, match="epochs=0"):
        TrainerSettings(epochs=0)
    with pytest.raises(ValueError, match="precision"):
        TrainerSettings(epochs=1, precision="fp8")


def test_same_seed_gives_bit_identical_weights(tmp_path, fake_mnist):
    first, first_history = run(fake_mnist, tmp_path / "a.pt")
    second, second_history = run(fake_mnist, tmp_path / "b.pt")
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key
    assert [r["val_accuracy@8"] for r in first_history] == [
        r["val_accuracy@8"] for r in second_history
    ]


def test_resume_auto_skips_finished_runs_and_continues_interrupted_ones(tmp_path, fake_mnist):
    """An interrupted grid (resume=auto) skips its finished jobs, continues a job killed after
    its checkpoint (same sweep, byte for byte), and refuses a folder of another config."""
    config = compose_train(
        "profile=smoke", f"data_dir={fake_mnist}", "task.download=false", "resume=auto",
        "trainer.epochs=2",
    )  # fmt: skip
    out = tmp_path / "job"
    first = train_and_sweep(config, out)
    sweep_bytes, run_json = (out / "sweep.csv").read_bytes(), (out / "run.json").read_bytes()
    again = train_and_sweep(config, out)  # finished: nothing is redone
    assert again["history"] == first["history"] and (out / "run.json").read_bytes() == run_json
    (out / "run.json").unlink()  # killed after training, before run.json: continue from there
    (out / "sweep.csv").unlink()
    resumed = train_and_sweep(config, out)
    assert resumed["resumed_from_epoch"] == 2 and (out / "sweep.csv").read_bytes() == sweep_bytes
    assert resumed["train_seconds"] == first["train_seconds"]  # no training redone or counted
    other = compose_train(
        "profile=smoke", f"data_dir={fake_mnist}", "task.download=false", "resume=auto",
        "trainer.epochs=2", "seed=1",
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"differs in \['seed'\]"):
        train_and_sweep(other, out)
