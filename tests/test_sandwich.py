"""The sandwich rule: which widths a training step trains, and how their losses combine."""

import copy

import pytest
import torch
import torch.nn.functional as F

from structural_dropout import TruncatableMLP, fixed_cut
from structural_dropout.layers.dropout import cuts_per_copy, structural_layers
from structural_dropout.rules import Sandwich, sandwich_loss
from structural_dropout.spec import DropoutSpec


class RecordingTask:
    """A regression task that records the width each forward pass kept."""

    def __init__(self):
        self.widths: list[int] = []

    def predict(self, model, batch):
        prediction = model(batch[0])
        layers = structural_layers(model)  # none in a frozen teacher
        if layers:
            self.widths.append(layers[0].active_width())
        return prediction

    def criterion(self, prediction, batch):
        return F.mse_loss(prediction, batch[1])

    def distill_loss(self, prediction, teacher):
        return F.l1_loss(prediction, teacher)

    def loss(self, model, batch):
        return self.criterion(self.predict(model, batch), batch)


def setup(hidden=(32, 32), **spec):
    torch.manual_seed(0)
    model = TruncatableMLP(6, list(hidden), 3, DropoutSpec(**spec)).train()
    return model, (torch.randn(5, 6), torch.randn(5, 3))


def test_each_step_trains_full_smallest_and_random_widths():
    model, batch = setup(lower_bound=4, step=4)
    rule = Sandwich(full=True, smallest=True, random=2)
    for _ in range(20):
        task = RecordingTask()
        sandwich_loss(model, task, batch, rule)
        assert len(task.widths) == rule.widths == 4
        assert task.widths[:2] == [32, 4]
        assert all(w in range(4, 33, 4) for w in task.widths[2:])
    assert not any(layer.pinned for layer in structural_layers(model))  # random cuts again


def at_width(model, width, x):
    """The model's output at ``width``, with the mode (train/eval) it is in."""
    with fixed_cut(model, width):
        return model(x)


def test_loss_is_the_mean_of_the_widths_losses():
    model, batch = setup(hidden=(16,))
    task = RecordingTask()
    loss = sandwich_loss(model, task, batch, Sandwich(smallest=True, random=0))
    assert task.widths == [16, 1]
    expected = sum(F.mse_loss(at_width(model, w, batch[0]), batch[1]) for w in task.widths) / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_distillation_learns_the_full_widths_prediction_without_moving_it():
    model, batch = setup(hidden=(16,))
    rule = Sandwich(smallest=True, random=0, distill=True)
    sandwich_loss(model, RecordingTask(), batch, rule).backward()
    got = [p.grad.clone() for p in model.parameters()]

    model.zero_grad()
    teacher = at_width(model.train(), 16, batch[0])
    student = at_width(model.train(), 1, batch[0])
    # The teacher is detached in the student's term: that term must not pull the full width.
    expected = (F.mse_loss(teacher, batch[1]) + F.l1_loss(student, teacher.detach())) / 2
    expected.backward()
    for g, p in zip(got, model.parameters(), strict=True):
        assert torch.allclose(g, p.grad, atol=1e-6)


def test_fixed_widths_train_every_step_as_matformer_does():
    model, batch = setup()
    rule = Sandwich(full=True, random=0, fixed=[8, 16])  # a list, as a config gives it
    assert rule.fixed == (8, 16) and rule.widths == 3
    for _ in range(3):
        task = RecordingTask()
        loss = sandwich_loss(model, task, batch, rule)
        assert task.widths == [32, 8, 16]
    expected = sum(F.mse_loss(at_width(model, w, batch[0]), batch[1]) for w in (32, 8, 16)) / 3
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match="sandwich fixed must list widths >= 1"):
        Sandwich(fixed=(0,))
    with pytest.raises(ValueError, match="outside 1..32"):
        sandwich_loss(model, RecordingTask(), batch, Sandwich(fixed=(64,)))


@pytest.mark.parametrize("teach_full", [False, True])
def test_a_frozen_teacher_adds_its_term_to_the_narrower_widths(teach_full):
    model, batch = setup()
    teacher = TruncatableMLP(6, [64], 3, dropout=None).eval()
    rule = Sandwich(full=True, random=0, fixed=(8,), teacher=0.5, teach_full=teach_full)
    loss = sandwich_loss(model, RecordingTask(), batch, rule, teacher)
    loss.backward()
    x, y = batch
    target = teacher(x).detach()
    full, narrow = at_width(model, 32, x), at_width(model, 8, x)
    expected = F.mse_loss(full, y) + F.mse_loss(narrow, y) + 0.5 * F.l1_loss(narrow, target)
    expected = (expected + (0.5 * F.l1_loss(full, target) if teach_full else 0)) / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert all(p.grad is None for p in teacher.parameters())  # frozen: nothing flows into it
    with pytest.raises(ValueError, match="goes with a sandwich teacher weight > 0"):
        sandwich_loss(model, RecordingTask(), batch, Sandwich(), teacher)
    with pytest.raises(ValueError, match="goes with a sandwich teacher weight > 0"):
        sandwich_loss(model, RecordingTask(), batch, rule)
    with pytest.raises(ValueError, match="teach_full needs a teacher weight"):
        Sandwich(teach_full=True)


def test_bad_rules_are_rejected():
    with pytest.raises(ValueError, match="at least one width"):
        Sandwich(full=False, smallest=False, random=0)
    with pytest.raises(ValueError, match="random"):
        Sandwich(random=-1)
    with pytest.raises(ValueError, match="full"):
        Sandwich(full=False, distill=True)
    with pytest.raises(TypeError, match="sandwich"):  # the rule is the trainer's, not the layer's
        DropoutSpec(sandwich={"full": True, "random": 2})
    model = TruncatableMLP(6, [8], 2, dropout=None)
    with pytest.raises(ValueError, match="no StructuralDropout"):
        sandwich_loss(model, RecordingTask(), (torch.randn(2, 6), None), Sandwich())
    model, batch = setup()
    with pytest.raises(ValueError, match="cannot train a distilled"):
        sandwich_loss(model, object(), batch, Sandwich(distill=True))


def test_full_weight_weights_the_full_widths_loss():
    model, batch = setup(hidden=(16,))
    loss = sandwich_loss(
        model, RecordingTask(), batch, Sandwich(smallest=True, random=0, full_weight=3)
    )
    full, small = (F.mse_loss(at_width(model, w, batch[0]), batch[1]) for w in (16, 1))
    assert loss.item() == pytest.approx(((3 * full + small) / 4).item(), rel=1e-6)
    with pytest.raises(ValueError, match="full_weight"):
        Sandwich(full_weight=0)


@pytest.mark.parametrize("distill", [False, True])
def test_batched_sandwich_equals_one_pass_per_width(distill):
    """Copies of the batch cut at fixed widths in one pass give the separate passes' gradients."""
    model, batch = setup(hidden=(16, 16), per_sample=True, shared_cut=False, lower_bound=3)
    grads = []
    for batched in (False, True):
        model.zero_grad()
        rule = Sandwich(smallest=True, random=0, distill=distill, batched=batched)
        sandwich_loss(model, RecordingTask(), batch, rule).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_batched_sandwich_with_batch_norm_differs_only_by_its_batch_statistics():
    """With BatchNorm in training mode the batched pass normalizes each width-dependent unit over
    all copies stacked (every width pooled) instead of over each width's own batch, and moves
    the running statistics once per step instead of once per width: the gradients differ (as
    Sandwich's docstring says). With the statistics frozen (BatchNorm in eval mode) they match."""
    torch.manual_seed(0)
    spec = DropoutSpec(per_sample=True, shared_cut=False, lower_bound=3)
    model = TruncatableMLP(6, [16, 16], 3, spec, batch_norm=True).train()
    batch = torch.randn(8, 6), torch.randn(8, 3)

    def step(batched: bool, frozen: bool):
        trial = copy.deepcopy(model)
        for module in trial.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.train(not frozen)
        rule = Sandwich(smallest=True, random=0, distill=True, batched=batched)
        sandwich_loss(trial, RecordingTask(), batch, rule).backward()
        grads = torch.cat([p.grad.flatten() for p in trial.parameters()])
        tracked = [
            m.num_batches_tracked.item()
            for m in trial.modules()
            if hasattr(m, "num_batches_tracked")
        ]
        return grads, tracked

    (separate, tracked_separate), (batched, tracked_batched) = step(False, False), step(True, False)
    assert (separate - batched).abs().max() > 1e-3
    assert set(tracked_separate) == {2} and set(tracked_batched) == {1}  # per width vs per step
    frozen = [step(b, True)[0] for b in (False, True)]
    assert torch.allclose(*frozen, atol=1e-6)


def test_batched_random_copies_draw_their_own_cuts_and_the_first_keeps_full_width():
    model, batch = setup(hidden=(16,), per_sample=True, shared_cut=False, rescale=False)
    task = RecordingTask()
    sandwich_loss(model, task, batch, Sandwich(random=1, distill=True, batched=True))
    assert len(task.widths) == 1  # one forward pass
    copies = torch.cat([batch[0]] * 2)
    torch.manual_seed(1)
    hidden = model.blocks[0]
    with cuts_per_copy(model, [16, None]):
        masked = hidden(copies)
    full = F.relu(hidden.linear(batch[0]))
    assert torch.equal(masked[:5], full)  # the first copy is not cut
    kept = (masked[5:] != 0).sum(1)
    assert (kept < 16).any()  # the second copy's rows are cut, each at its own cut
    with pytest.raises(ValueError, match="per-sample"):
        sandwich_loss(*setup(hidden=(8,))[:1], RecordingTask(), batch, Sandwich(batched=True))


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("distill", [False, True])
def test_trunk_grad_scales_only_what_narrower_widths_send_into_the_trunk(batched, distill):
    """With trunk_grad=g, a layer before the MLP gets (full + g * narrower) / 2 of the widths'
    gradients, the MLP itself all of them; the loss is unchanged."""
    torch.manual_seed(0)
    spec = DropoutSpec(lower_bound=3, per_sample=True, shared_cut=False)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), TruncatableMLP(6, [16, 16], 3, spec))
    batch = (torch.randn(5, 4), torch.randn(5, 3))

    def grads(trunk_grad):
        model.zero_grad()
        rule = Sandwich(
            smallest=True, random=0, distill=distill, batched=batched, trunk_grad=trunk_grad
        )
        loss = sandwich_loss(model, RecordingTask(), batch, rule)
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters()]

    (loss_1, all_widths), (loss_0, full_only), (loss_g, scaled) = map(grads, (1.0, 0.0, 0.25))
    assert loss_1 == pytest.approx(loss_0) == pytest.approx(loss_g)
    trunk = slice(0, 2)  # the Linear's weight and bias
    for a, f, g in zip(all_widths[trunk], full_only[trunk], scaled[trunk], strict=True):
        assert not torch.allclose(a, f)  # the narrow width does reach the trunk at 1
        assert torch.allclose(g, f + 0.25 * (a - f), atol=1e-6)
    for a, f, g in zip(all_widths[2:], full_only[2:], scaled[2:], strict=True):
        assert torch.allclose(a, f) and torch.allclose(a, g)  # the MLP's own weights: all widths
    for handle_dict in (m._forward_pre_hooks for m in model.modules()):
        assert not handle_dict  # the hooks are gone after the step
    with pytest.raises(ValueError, match="trunk_grad"):
        Sandwich(trunk_grad=1.5)
    with pytest.raises(ValueError, match="full"):
        Sandwich(full=False, smallest=True, trunk_grad=0.5)
