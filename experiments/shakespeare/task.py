"""Next-character prediction on Tiny Shakespeare: the Task the shared loops train and sweep.

The metric is the mean cross-entropy in nats per character (``loss``: lower is better; bits per
character are ``loss / ln 2``) over non-overlapping windows of ``context`` characters covering
the split (each window predicts its characters from the ones before it in the window).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from structural_dropout import count_params, set_shape, set_width
from structural_dropout.io import atomic_write
from structural_dropout.lab.reports.plots import sweep_figures
from structural_dropout.lab.sweep import sweep as width_sweep
from structural_dropout.layers.transformer import nested_parts, shape_params

from .data import Vocabulary, load_text, split_by_position
from .model import generate


class ShakespeareTask:
    """Random windows of the training split (``steps_per_epoch`` batches of ``batch_size``);
    validation and test are the next ``val`` and the last ``test`` fractions of the text.
    ``vocab_size`` must be the text's number of distinct characters (65), so the model's
    embedding can be sized in the config. ``eval_windows``: score only the first N windows of an
    evaluation split (smoke tests); ``text_limit``: keep the first N characters of the corpus.
    ``samples`` (``prompt``, ``length``, ``widths``, ``seed``, ``temperature``): the text the
    model writes at those widths, drawn after the sweep into ``samples.md``."""

    metric = "loss"

    def __init__(
        self,
        data_dir: str,
        download: bool = True,
        vocab_size: int = 65,
        context: int = 128,
        batch_size: int = 32,
        steps_per_epoch: int = 500,
        eval_batch_size: int = 64,
        val: float = 0.05,
        test: float = 0.05,
        eval_windows: int | None = None,
        text_limit: int | None = None,
        samples: Mapping | None = None,
    ):
        if min(context, batch_size, steps_per_epoch, eval_batch_size) < 1:
            raise ValueError(
                f"context={context}, batch_size={batch_size}, steps_per_epoch={steps_per_epoch} "
                f"and eval_batch_size={eval_batch_size} must be >= 1"
            )
        self.data_dir, self.download, self.vocab_size = data_dir, download, vocab_size
        self.context, self.batch_size, self._steps = context, batch_size, steps_per_epoch
        self.eval_batch_size, self.fractions = eval_batch_size, (val, test)
        self.eval_windows, self.text_limit = eval_windows, text_limit
        self.samples = dict(samples) if samples else None
        self.splits: dict[str, Tensor] = {}
        self.vocab: Vocabulary | None = None

    def setup(self, device: torch.device) -> None:
        text = load_text(self.data_dir, self.download)
        self.vocab = Vocabulary(text)  # of the whole corpus: a character set, not a choice
        if len(self.vocab) != self.vocab_size:
            raise ValueError(
                f"the text has {len(self.vocab)} distinct characters, the config says "
                f"vocab_size={self.vocab_size}"
            )
        ids = self.vocab.encode(text[: self.text_limit])
        self.splits = {k: v.to(device) for k, v in split_by_position(ids, *self.fractions).items()}
        short = [k for k, v in self.splits.items() if len(v) <= self.context]
        if short:
            raise ValueError(f"splits {short} hold no window of context={self.context} + 1")

    @property
    def steps_per_epoch(self) -> int:
        return self._steps

    def train_batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        ids = self.splits["train"]
        offsets = torch.arange(self.context + 1, device=ids.device)
        for _ in range(self._steps):
            starts = torch.randint(len(ids) - self.context, (self.batch_size,)).to(ids.device)
            window = ids[starts[:, None] + offsets]
            yield window[:, :-1], window[:, 1:]

    def example_inputs(self) -> tuple[Tensor]:
        return (self.splits["test"][: 2 * self.context].view(2, self.context),)

    def predict(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        return model(batch[0])

    def criterion(self, logits: Tensor, batch: tuple[Tensor, Tensor]) -> Tensor:
        return F.cross_entropy(logits.flatten(0, 1), batch[1].flatten())

    def distill_loss(self, logits: Tensor, teacher_logits: Tensor) -> Tensor:
        """Cross-entropy against the teacher's next-character probabilities."""
        target = teacher_logits.flatten(0, 1).softmax(-1)
        return F.cross_entropy(logits.flatten(0, 1), target)

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        return self.criterion(self.predict(model, batch), batch)

    def prepare_eval(self, model: nn.Module, split: str) -> tuple[Tensor, Tensor]:
        """The split's non-overlapping windows (inputs and next characters), in order."""
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}; choose from {sorted(self.splits)}")
        ids = self.splits[split]
        n = (len(ids) - 1) // self.context
        if self.eval_windows is not None:
            n = min(n, self.eval_windows)
        x = ids[: n * self.context].view(n, self.context)
        y = ids[1 : n * self.context + 1].view(n, self.context)
        return x, y

    def evaluate(self, model: nn.Module, prepared: tuple[Tensor, Tensor]) -> float:
        x, y = prepared
        total = 0.0
        for i in range(0, len(x), self.eval_batch_size):
            logits = model(x[i : i + self.eval_batch_size])
            target = y[i : i + self.eval_batch_size]
            total += F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="sum").item()
        return total / y.numel()

    def sweep(self, model: nn.Module, sweep: Mapping, progress: bool = True,
              count=count_params) -> dict[str, list[dict]]:  # fmt: skip
        """``sweep.csv``: the loss at every model width of the sweep (feed-forward units; nested
        heads follow the axis); ``heads.csv`` when heads are nested: the loss at each head count
        with every feed-forward unit kept."""
        rows = width_sweep(model, self, sweep.widths, sweep.step, sweep.split,
                           sweep.get("val_split"), progress=progress, start=sweep.start,
                           count=count)  # fmt: skip
        tables = {"sweep.csv": rows}
        attentions, _ = nested_parts(model)
        if attentions:
            heads = attentions[0].heads
            splits = {"val_loss": sweep.get("val_split"), "loss": sweep.split}
            prepared = {k: self.prepare_eval(model, s) for k, s in splits.items() if s}
            tables["heads.csv"] = []
            with torch.inference_mode():
                for h in range(1, heads + 1):
                    set_shape(model, heads=h)
                    scores = {k: self.evaluate(model, data) for k, data in prepared.items()}
                    params = shape_params(model, heads=h)
                    tables["heads.csv"].append({"heads": h, "params": params, **scores})
            set_shape(model)
        return tables

    def figures(self, out_dir: Path, model: nn.Module | None = None) -> list[Path]:
        """The sweep's figures; with ``model`` and ``samples`` set, also ``samples.md``."""
        paths = sweep_figures(out_dir / "sweep.csv")
        if model is not None and self.samples is not None:
            paths.append(self.write_samples(model, out_dir / "samples.md"))
        return paths

    @torch.no_grad()
    def write_samples(self, model: nn.Module, path: Path) -> Path:
        """Text continued from ``samples.prompt`` at each of ``samples.widths`` (null: full), the
        same random draws at every width, as a Markdown file."""
        settings = self.samples
        prompt = self.vocab.encode(settings["prompt"]).view(1, -1)
        device = next(model.parameters()).device
        lines = [f"Prompt `{settings['prompt']!r}`, {settings['length']} characters, temperature "
                 f"{settings['temperature']}, seed {settings['seed']} (the same draws at every "
                 "width).", ""]  # fmt: skip
        model.eval()
        for width in settings["widths"]:
            set_width(model, width)
            generator = torch.Generator(device=device).manual_seed(int(settings["seed"]))
            ids = generate(model, prompt.to(device), int(settings["length"]),
                           float(settings["temperature"]), generator)  # fmt: skip
            name = "full width" if width is None else f"width {width}"
            lines += [f"## {name} ({count_params(model, width):,} parameters)", "", "```text",
                      self.vocab.decode(ids[0]), "```", ""]  # fmt: skip
        set_width(model, None)
        atomic_write(path, lambda tmp: Path(tmp).write_text("\n".join(lines)))
        return path
