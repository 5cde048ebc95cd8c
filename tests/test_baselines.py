"""The seed papers' baselines: Dropout Compaction and Drop Pruning."""

import pytest
import torch
from hydra import compose, initialize_config_dir

from conftest import CONFIGS
from structural_dropout import DropoutSpec, TruncatableCNN, TruncatableMLP, count_params, export
from structural_dropout.baselines.compaction import DropoutCompaction, RetentionGate
from structural_dropout.baselines.pruning import DropPruning, count_nonzero_params
from structural_dropout.lab.build import rebuild
from structural_dropout.lab.run import sweep_checkpoint, train_and_sweep


def test_retention_gate_drops_at_its_rate_and_learns_it():
    torch.manual_seed(0)
    gate = RetentionGate(4, init=0.5)
    with torch.no_grad():
        gate.logit.copy_(torch.logit(torch.tensor([0.1, 0.5, 0.9, 0.99])))
    x = torch.ones(20000, 4, requires_grad=True)
    mask = gate(x)
    assert torch.allclose(mask, mask.round(), atol=1e-6)  # hard 0/1 masks in the forward pass
    assert torch.allclose(mask.mean(0), gate.retention, atol=0.02)
    mask.sum().backward()
    assert (gate.logit.grad > 0).all()  # keeping more units raises the output: theta gets pushed
    gate.eval()
    assert torch.allclose(gate(torch.ones(3, 4)), gate.retention.expand(3, 4))
    assert torch.allclose(gate(torch.ones(3, 2)), gate.retention[:2].expand(3, 2))  # a prefix


def test_compaction_removes_rarely_kept_units_and_keeps_the_function():
    torch.manual_seed(0)
    model = TruncatableMLP(6, [8, 5], 3, DropoutSpec(p=0.0, rescale=False), batch_norm=True)
    compaction = DropoutCompaction(threshold=0.5)
    compaction.prepare(model)
    x = torch.randn(32, 6)
    model.train()
    with torch.no_grad():
        model(x)  # BatchNorm statistics off their defaults
    theta = [
        torch.tensor([0.9, 1e-9, 0.7, 0.95, 1e-9, 0.6, 1e-9, 0.8]),
        torch.tensor([1e-9, 0.99, 0.51, 1e-9, 0.75]),
    ]
    with torch.no_grad():
        for block, t in zip(model.blocks, theta, strict=True):
            block.gate.logit.copy_(torch.logit(t.double()).float())
    model.eval()
    small = compaction.finalize(model).eval()
    assert small.hidden == [5, 3]
    with torch.no_grad():  # removed units had theta ~ 0: the function is unchanged
        assert torch.allclose(small(x), model(x), atol=1e-5)
    # units are ordered by retention: the first kept unit of layer 1 is the 0.95 one (index 3)
    assert torch.equal(small.blocks[0].linear.weight[0], model.blocks[0].linear.weight[3])
    with pytest.raises(ValueError, match="compacts it"):
        export(model, 4)


def test_compaction_of_a_cnn_removes_channels_and_keeps_the_function():
    torch.manual_seed(0)
    spec = DropoutSpec(p=0.0, rescale=False)
    model = TruncatableCNN((1, 16, 16), [4, 6], [5], 3, spec, kernel_size=3, batch_norm=True)
    assert model.positions == 4  # 2 x 2 per channel: the flatten maps channels to columns
    compaction = DropoutCompaction(threshold=0.5)
    compaction.prepare(model)
    x = torch.randn(16, 1, 16, 16)
    model.train()
    with torch.no_grad():
        model(x)  # BatchNorm statistics off their defaults
    theta = [
        torch.tensor([0.9, 1e-9, 0.7, 0.95]),
        torch.tensor([1e-9, 0.99, 0.51, 1e-9, 0.75, 0.6]),
        torch.tensor([0.8, 1e-9, 0.9, 0.55, 1e-9]),
    ]
    with torch.no_grad():
        for block, t in zip([*model.convs, *model.fcs], theta, strict=True):
            block.gate.logit.copy_(torch.logit(t.double()).float())
    model.eval()
    small = compaction.finalize(model).eval()
    assert (small.channels, small.hidden) == ([3, 4], [3])
    with torch.no_grad():  # removed channels had theta ~ 0: the function is unchanged
        torch.testing.assert_close(small(x), model(x), atol=1e-5, rtol=1e-5)
    # channels are ordered by retention: the first kept channel of conv 1 is the 0.95 one
    assert torch.equal(small.convs[0].conv.weight[0], model.convs[0].conv.weight[3])
    with pytest.raises(ValueError, match="compacts it"):
        export(model, 4)


def test_drop_pruning_schedule_and_masks():
    torch.manual_seed(0)
    model = TruncatableMLP(50, [40, 30], 10, DropoutSpec(p=0.0))
    pruning = DropPruning(sparsity=0.8, start=0.1, end=0.5, interval=10, drop_back=0.2)
    pruning.prepare(model)
    total = 200
    targets = [pruning.target(step, total) for step in range(total + 1)]
    assert targets[20] == 0 and targets[100] == pytest.approx(0.8) and targets[-1] == 0.8
    assert all(a <= b for a, b in zip(targets, targets[1:], strict=False))
    layers = [model.blocks[0].linear, model.blocks[1].linear, model.head]
    history, restored, final = [], 0, []
    for step in range(1, total + 1):
        before = [layer.weight_mask.clone() for layer in layers]
        if step == 100:  # the last update is deterministic: the same under any random state
            for seed in (1, 2):
                torch.manual_seed(seed)
                pruning.after_step(model, step, total)
                final.append([layer.weight_mask.clone() for layer in layers])
                for layer, b in zip(layers, before, strict=True):
                    layer.weight_mask.copy_(b)
            assert all(torch.equal(a, b) for a, b in zip(*final, strict=True))
        pruning.after_step(model, step, total)
        after = [layer.weight_mask for layer in layers]
        if any(not torch.equal(b, a) for b, a in zip(before, after, strict=True)):
            history.append(step)
            for a in after:  # each update reaches its target share
                assert 1 - a.mean().item() == pytest.approx(pruning.target(step, total), abs=0.02)
        restored += sum(
            int(((b == 0) & (a == 1)).sum()) for b, a in zip(before, after, strict=True)
        )
    assert restored > 0  # drop back: pruned weights do come back
    assert history[0] == 30 and history[-1] == 100  # target(20) is 0; nothing after `end`
    assert set(history) <= set(range(30, 101, 10))
    for layer in layers:  # exactly the target share at the end
        assert 1 - layer.weight_mask.mean().item() == pytest.approx(
            0.8, abs=1 / layer.weight.numel()
        )
    pruning.finalize(model)
    zeros = sum(int((layer.weight == 0).sum()) for layer in layers)
    assert zeros == sum(round(0.8 * layer.weight.numel()) for layer in layers)
    assert count_nonzero_params(model) == count_params(model) - zeros


def test_drop_pruning_global_scope_ranks_all_weights_together():
    """scope=global: one threshold over every matrix, so the layers end at different shares
    (the head's large weights survive) and the total share is exact."""
    torch.manual_seed(0)
    model = TruncatableMLP(50, [40, 30], 10, DropoutSpec(p=0.0))
    with torch.no_grad():
        model.head.weight.mul_(10)  # one layer of much larger weights
    pruning = DropPruning(sparsity=0.8, start=0.0, end=0.5, interval=10, scope="global")
    pruning.prepare(model)
    for step in range(1, 101):
        pruning.after_step(model, step, 100)
    layers = [model.blocks[0].linear, model.blocks[1].linear, model.head]
    masks = torch.cat([layer.weight_mask.flatten() for layer in layers])
    assert int((masks == 0).sum()) == round(0.8 * masks.numel())
    shares = [1 - layer.weight_mask.mean().item() for layer in layers]
    assert shares[2] < 0.5 < shares[0]  # not the same share for every layer
    with pytest.raises(ValueError, match="scope must be"):
        DropPruning(scope="model")


@pytest.mark.parametrize("method", ["compaction", "drop_pruning"])
def test_baselines_report_params_of_the_model_they_produce(method, tmp_path, fake_mnist):
    overrides = {
        "compaction": [
            "method.training.strength=2.0",
            "method.training.init=0.501",
        ],  # units cross at once
        "drop_pruning": ["method.training.sparsity=0.7"],
    }[method]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        config = compose(
            "train",
            [
                "profile=smoke",
                f"method={method}",
                f"data_dir={fake_mnist}",
                "task.download=false",
                "trainer.epochs=3",
                "progress=false",
                *overrides,
            ],
        )
    info = train_and_sweep(config, tmp_path / "run")
    row = info["full_width"]
    model = rebuild(tmp_path / "run" / "checkpoint.pt", torch.device("cpu"))[1].model
    nonzero = sum(int(p.count_nonzero()) for p in model.parameters())
    assert row["params"] == nonzero
    if method == "compaction":  # kept units only: every weight of the smaller model counts
        assert row["params"] == sum(p.numel() for p in model.parameters()) < 269_322
        assert row["width"] == max(model.hidden) < 256
    else:
        weights = sum(m.weight.numel() for m in model.modules() if hasattr(m, "weight"))
        assert row["params"] < 0.35 * weights + 600  # 70% of weights pruned; biases stay

    # Re-swept from the checkpoint alone (scripts/sweep.py's path): the method's hooks come from
    # the checkpoint's config, so the table is byte for byte the one training wrote.
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        sweep_config = compose("sweep", [f"checkpoint={tmp_path / 'run' / 'checkpoint.pt'}"])
    sweep_config.progress = False
    sweep_checkpoint(sweep_config.checkpoint, sweep_config, tmp_path / "resweep")
    trained = (tmp_path / "run" / "sweep.csv").read_bytes()
    assert (tmp_path / "resweep" / "sweep.csv").read_bytes() == trained
