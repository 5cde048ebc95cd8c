"""BatchNorm recalibration per width: the statistics are re-estimated at that width, exactly."""

import pytest
import torch
import torch.nn.functional as F

from structural_dropout import DropoutSpec, TruncatableMLP, recalibrated_norms, set_width


def test_recalibration_holds_the_calibration_datas_statistics_at_the_width():
    torch.manual_seed(0)
    mlp = TruncatableMLP(6, [12, 10], 3, DropoutSpec(rescale=False), batch_norm=True).eval()
    for block in mlp.blocks:  # shared statistics that fit no width
        block.norm.running_mean.fill_(5.0)
        block.norm.running_var.fill_(7.0)
    x = torch.randn(200, 6)
    set_width(mlp, 4)
    with recalibrated_norms(mlp, lambda: mlp(x)):
        first, second = mlp.blocks
        h1 = first.linear(x, 4)
        assert torch.allclose(first.norm.running_mean[:4], h1.mean(0), atol=1e-6)
        assert torch.allclose(first.norm.running_var[:4], h1.var(0), atol=1e-5)
        # the second layer's input: the first one's units normalised by the batch's statistics
        a1 = F.relu(F.batch_norm(h1, None, None, first.norm.weight[:4], first.norm.bias[:4], True))
        h2 = second.linear(a1, 4)
        assert torch.allclose(second.norm.running_mean[:4], h2.mean(0), atol=1e-5)
        assert torch.allclose(second.norm.running_var[:4], h2.var(0), atol=1e-5)
        assert not first.norm.training  # evaluation inside the block uses the new statistics
    for block in mlp.blocks:  # the shared ones are back on exit
        assert torch.all(block.norm.running_mean == 5.0) and torch.all(block.norm.running_var == 7)


def test_recalibration_averages_several_calibration_batches():
    torch.manual_seed(1)
    mlp = TruncatableMLP(6, [8], 3, DropoutSpec(rescale=False), batch_norm=True).eval()
    x = torch.randn(100, 6)
    set_width(mlp, 5)
    with recalibrated_norms(mlp, lambda: [mlp(x[:50]), mlp(x[50:])]):
        h = mlp.blocks[0].linear(x, 5)
        # equal batches: the plain average of the two batch means is the mean of all
        assert torch.allclose(mlp.blocks[0].norm.running_mean[:5], h.mean(0), atol=1e-6)


def test_a_model_without_batch_norm_cannot_be_recalibrated():
    with pytest.raises(ValueError, match="no width-dependent BatchNorm"):
        with recalibrated_norms(TruncatableMLP(6, [8], 3), lambda: None):
            pass
