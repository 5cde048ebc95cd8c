"""The character-level GPT experiment (#19): data split by position, the vocabulary, and a smoke
train + sweep whose widths and head counts export to the plain model they scored."""

import math

import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from conftest import CONFIGS
from experiments.shakespeare.data import Vocabulary, load_text, split_by_position
from experiments.shakespeare.model import CharGPT, generate
from structural_dropout import export, export_shape
from structural_dropout.lab.build import rebuild
from structural_dropout.lab.run import export_checkpoint, train_and_sweep

# A corpus with a pattern a model picks up in a few steps: a short verse, repeated.
VERSE = "Now is the winter of our discontent\nMade glorious summer by this sun of York;\n"


@pytest.fixture(scope="module")
def fake_text(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    (root / "tinyshakespeare").mkdir()
    (root / "tinyshakespeare" / "input.txt").write_text(VERSE * 600)
    return root


def compose_train(*overrides):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", ["experiment=shakespeare", "profile=smoke", *overrides])


def test_the_splits_are_consecutive_parts_of_the_text():
    ids = torch.arange(1000)
    splits = split_by_position(ids, val=0.05, test=0.1)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [850, 50, 100]
    assert torch.equal(torch.cat([splits["train"], splits["val"], splits["test"]]), ids)
    with pytest.raises(ValueError, match="must be fractions in"):
        split_by_position(ids, val=0.5, test=0.5)


def test_the_vocabulary_round_trips_and_refuses_unknown_characters():
    vocab = Vocabulary(VERSE)
    assert vocab.decode(vocab.encode(VERSE)) == VERSE
    assert vocab.chars == sorted(vocab.chars) and len(vocab) == len(set(VERSE))
    with pytest.raises(ValueError, match=r"outside the vocabulary: \['Q'\]"):
        vocab.encode("Queen")


def test_missing_text_and_a_wrong_vocabulary_size_are_clear_errors(tmp_path, fake_text):
    with pytest.raises(FileNotFoundError, match="tinyshakespeare/input.txt"):
        load_text(tmp_path, download=False)
    task = instantiate(compose_train(f"data_dir={fake_text}", "task.download=false").task)
    with pytest.raises(ValueError, match=r"has \d+ distinct characters, the config says"):
        task.setup(torch.device("cpu"))


def test_smoke_run_sweeps_widths_and_heads_that_export_to_what_they_scored(tmp_path, fake_text):
    vocab = len(set(VERSE))
    config = compose_train(f"data_dir={fake_text}", "task.download=false",
                           f"task.vocab_size={vocab}", "trainer.epochs=3",
                           "sweep.figures=true")  # fmt: skip
    info = train_and_sweep(config, tmp_path / "run")
    samples = (tmp_path / "run" / "samples.md").read_text()
    assert "## full width (" in samples and "## width 8 (" in samples
    assert (tmp_path / "run" / "loss_vs_width.png").stat().st_size > 1000
    widths = pd.read_csv(tmp_path / "run" / "sweep.csv").set_index("width")
    heads = pd.read_csv(tmp_path / "run" / "heads.csv").set_index("heads")
    assert widths.index.tolist() == [8, 40, 64] and heads.index.tolist() == [1, 2]  # from 8
    assert list(widths.columns) == ["params", "val_loss", "loss"]
    assert info["full_width"]["loss"] < math.log(vocab)  # below a uniform guess: it learned
    assert widths.loc[64, "loss"] == heads.loc[2, "loss"]  # both sweeps end at the full model
    assert widths["params"].is_monotonic_increasing and heads["params"].is_monotonic_increasing

    _, run = rebuild(tmp_path / "run" / "checkpoint.pt", torch.device("cpu"))
    model = run.model.eval()
    x, y = run.task.prepare_eval(model, "test")
    for dense, params, loss in (
        (export(model, 40), widths.loc[40, "params"], widths.loc[40, "loss"]),
        (export_shape(model, heads=1), heads.loc[1, "params"], heads.loc[1, "loss"]),
    ):
        assert sum(p.numel() for p in dense.parameters()) == params
        assert run.task.evaluate(dense, (x, y)) == pytest.approx(loss, abs=1e-5)

    # scripts/export.py's path, heads set apart: files that score what the sweep measured
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    summary = export_checkpoint(checkpoint, None, tmp_path / "export", heads=1)
    assert (summary["heads"], summary["params"]) == (1, heads.loc[1, "params"])
    assert max(summary["max_abs_diff"].values()) <= 1e-5
    reloaded = torch.export.load(summary["files"]["program"]["path"]).module()
    assert run.task.evaluate(reloaded, (x, y)) == pytest.approx(heads.loc[1, "loss"], abs=1e-5)
    with pytest.raises(ValueError, match="give width=33 or ffn/heads"):
        export_checkpoint(checkpoint, 33, tmp_path / "export2", heads=1)


def test_the_model_refuses_a_longer_sequence_and_generates_within_its_context():
    torch.manual_seed(0)
    gpt = CharGPT(vocab_size=7, context=8, d_model=16, layers=1, heads=2, ffn_hidden=32).eval()
    with pytest.raises(ValueError, match="longer than the context 8"):
        gpt(torch.zeros(1, 9, dtype=torch.long))
    out = generate(gpt, torch.zeros(1, 3, dtype=torch.long), 20)
    assert out.shape == (1, 23) and int(out.max()) < 7


def test_evaluation_windows_predict_the_next_character_and_tile_the_split(fake_text):
    vocab = len(set(VERSE))
    config = compose_train(f"data_dir={fake_text}", "task.download=false",
                           f"task.vocab_size={vocab}", "task.eval_windows=null")  # fmt: skip
    task = instantiate(config.task)
    task.setup(torch.device("cpu"))
    ids = task.splits["val"]
    x, y = task.prepare_eval(None, "val")
    assert x.shape[1] == task.context and len(x) == (len(ids) - 1) // task.context
    assert torch.equal(x.flatten(), ids[: x.numel()])  # consecutive, non-overlapping windows
    assert torch.equal(y.flatten(), ids[1 : x.numel() + 1])  # each position's next character
