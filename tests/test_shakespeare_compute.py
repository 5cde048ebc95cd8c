"""The GPT comparison's equal-compute parts: each many-widths rule trains for as many
multiply-adds as plain training's 3,000 steps (fewer steps, several widths each)."""

import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from torch.utils.flop_counter import FlopCounterMode

from conftest import CONFIGS
from structural_dropout import export

PARTS = ["structural", "sandwich", "matformer"]


def _config(part: str):
    """The first job of ``compare_shakespeare_<part>_equal_compute`` (seed aside, one job)."""
    params = {}
    for name in (f"compare_shakespeare_{part}", f"compare_shakespeare_{part}_equal_compute"):
        # the part's grid lists its parent in its defaults: Hydra merges the parent's sweep
        # params first and the part's after them (method before method.name)
        grid = yaml.safe_load((CONFIGS / "grid" / f"{name}.yaml").read_text())
        params.update(grid["hydra"]["sweeper"]["params"])
    overrides = []
    for key, value in params.items():  # each sweep's first value, as Hydra parses it
        value = str(value).lower() if isinstance(value, bool) else value
        (parsed,) = OverridesParser.create().parse_overrides([f"{key}={value}"])
        first = next(parsed.sweep_string_iterator()) if parsed.is_sweep_override() else None
        overrides.append(f"{key}={first}" if first is not None else f"{key}={value}")
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", overrides)


@pytest.fixture(scope="module")
def cost():
    """Forward multiply-adds of the exported GPT at a width, relative to the full width (training
    computes only the kept units, so a step's cost follows its widths')."""
    config = _config("sandwich")
    model = instantiate(config.model).eval()
    window = torch.randint(config.task.vocab_size, (1, config.task.context))

    def macs(width: int) -> int:
        with FlopCounterMode(display=False) as counter:
            export(model, width)(window)
        return counter.get_total_flops()

    full = macs(config.model.ffn_hidden)
    return lambda width: macs(width) / full


def _step_cost(config, cost) -> float:
    """A training step's multiply-adds relative to plain training's: the full width, the
    smallest, the fixed granularities and the random cuts its rule trains (a uniform cut costs
    its mean width's: the cost is affine in the width with every head kept)."""
    full, lower = config.model.ffn_hidden, config.dropout.lower_bound
    uniform = (cost(lower) + cost(full)) / 2
    rule = config.trainer.rule
    if rule is None:  # one cut per step, with probability p
        return config.dropout.p * uniform + (1 - config.dropout.p)
    return (rule.full + rule.smallest * cost(lower) + rule.random * uniform
            + sum(cost(w) for w in rule.fixed))  # fmt: skip


def test_the_cost_is_affine_in_the_width(cost):
    assert cost(256) == pytest.approx((cost(1) + cost(511)) / 2, rel=2e-3)


@pytest.mark.parametrize("part", PARTS)
def test_each_equal_compute_part_matches_plain_trainings_compute(part, cost):
    config = _config(part)
    assert config.method.name == f"{part}_equal_compute"
    steps = config.trainer.epochs * config.task.steps_per_epoch
    plain_steps = 6 * 500  # the cpu profile's 3,000 steps at full width
    assert steps * _step_cost(config, cost) == pytest.approx(plain_steps, rel=0.01)
