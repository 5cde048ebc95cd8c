"""A small decoder-only GPT whose blocks' feed-forward units (and optionally heads) are nested."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from structural_dropout import PLAIN, DropoutSpec, TransformerBlock, share_cuts


class CharGPT(nn.Module):
    """Token and learned position embeddings, ``layers`` pre-LN blocks, a final LayerNorm and a
    linear read-out (untied: the exported model stays a plain stack of torch.nn layers).

    ``ffn_hidden`` units per block (the model width axis) and ``heads`` heads, cut when
    ``nest_ffn`` / ``nest_heads``; with ``dropout.shared_cut`` one cut per step for all blocks
    (heads follow the feed-forward axis: ``ceil(w * heads / ffn_hidden)``). ``dropout.width_cap``
    builds the model ``export`` gives at that width, trained from scratch."""

    def __init__(
        self,
        vocab_size: int,
        context: int,
        d_model: int,
        layers: int,
        heads: int,
        ffn_hidden: int,
        dropout: DropoutSpec | None = PLAIN,
        nest_heads: bool = True,
        nest_ffn: bool = True,
        residual_dropout: float = 0.0,
    ):
        super().__init__()
        head_dim = d_model // heads
        if dropout is not None and dropout.width_cap is not None:  # export's shape at the cap
            cap = min(dropout.width_cap, ffn_hidden)
            heads = -(-cap * heads // ffn_hidden) if nest_heads else heads
            ffn_hidden = cap if nest_ffn else ffn_hidden
        self.context = context
        self.tokens = nn.Embedding(vocab_size, d_model)
        self.positions = nn.Embedding(context, d_model)
        self.blocks = nn.Sequential(
            *(
                TransformerBlock(d_model, heads, ffn_hidden, dropout, nest_heads, nest_ffn,
                                 residual_dropout=residual_dropout, head_dim=head_dim)
                for _ in range(layers)
            )
        )  # fmt: skip
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)
        self.apply(_init)
        if dropout is not None and dropout.shared_cut:
            share_cuts(self)

    def forward(self, idx: Tensor) -> Tensor:
        """Logits ``[batch, time, vocab]`` of the next character at every position."""
        if idx.shape[1] > self.context:
            raise ValueError(
                f"a sequence of {idx.shape[1]} is longer than the context {self.context}"
            )
        positions = torch.arange(idx.shape[1], device=idx.device)
        x = self.tokens(idx) + self.positions(positions)
        return self.head(self.norm(self.blocks(x)))


def _init(module: nn.Module) -> None:
    """GPT-2's initialisation: normal(0, 0.02) weights, zero biases."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)


@torch.no_grad()
def generate(model: nn.Module, prompt: Tensor, length: int, temperature: float = 1.0,
             generator: torch.Generator | None = None) -> Tensor:  # fmt: skip
    """``prompt`` ``[1, n]`` continued by ``length`` sampled characters (the model's last
    ``context`` characters as input at each step)."""
    ids = prompt
    context = model.context
    for _ in range(length):
        logits = model(ids[:, -context:])[:, -1] / temperature
        nxt = torch.multinomial(logits.softmax(-1), 1, generator=generator)
        ids = torch.cat([ids, nxt], dim=1)
    return ids
