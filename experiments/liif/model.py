"""LIIF (Chen et al., CVPR 2021) with a structural-dropout decoder.

An EDSR-style encoder turns the low-resolution (LR) image into a feature map; the colour at any
continuous coordinate is decoded by an MLP from the nearby features, the coordinate relative to
them and the size of the queried pixel (the "cell"). Only the decoder is truncatable.

A query is split in two: ``query_inputs`` (everything that does not depend on the decoder width:
the unfolded features gathered for each query, relative coordinates, cells and the local-ensemble
weights) and ``decode`` (the MLP and the weighted sum), so a width sweep runs the first once.

Coordinates are ``(row, column)`` in ``[-1, 1]``: pixel ``i`` of ``n`` has its centre at
``-1 + (2 i + 1) / n`` and the cell of an ``H x W`` grid is ``(2 / H, 2 / W)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from structural_dropout import DropoutSpec, TruncatableMLP

# The four corners of the local ensemble: each query is decoded from the LR feature to its upper
# left, upper right, lower left and lower right, then blended bilinearly.
CORNERS = ((-1, -1), (-1, 1), (1, -1), (1, 1))
_EPS = 1e-6  # nudges coordinates off exact pixel borders so nearest-pixel lookup is stable


def pixel_centers(
    height: int, width: int, device: torch.device | None = None, shave: int = 0
) -> Tensor:
    """Coordinates of the pixel centres of a ``height x width`` grid, ``[pixels, 2]`` in row-major
    order; ``shave`` leaves out that many pixels at each border."""
    rows = (torch.arange(shave, height - shave, device=device) * 2 + 1) / height - 1
    cols = (torch.arange(shave, width - shave, device=device) * 2 + 1) / width - 1
    return torch.cartesian_prod(rows, cols)


def cell_size(height: int, width: int, device: torch.device | None = None) -> Tensor:
    """The size ``[2]`` of one pixel of a ``height x width`` grid in ``[-1, 1]`` coordinates."""
    return torch.tensor([2 / height, 2 / width], device=device)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, res_scale: float):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
        )
        self.res_scale = res_scale

    def forward(self, x: Tensor) -> Tensor:
        return x + self.res_scale * self.body(x)


class EDSREncoder(nn.Module):
    """EDSR (Lim et al. 2017) without its upsampler: ``[B, 3, h, w]`` RGB in ``[0, 1]`` →
    ``[B, channels, h, w]``. The baseline is 16 blocks of 64 channels."""

    def __init__(self, channels: int = 64, blocks: int = 16, res_scale: float = 1.0):
        super().__init__()
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        self.body = nn.Sequential(
            *[ResidualBlock(channels, res_scale) for _ in range(blocks)],
            nn.Conv2d(channels, channels, 3, padding=1),
        )
        self.channels = channels

    def forward(self, image: Tensor) -> Tensor:
        x = self.head((image - 0.5) / 0.5)
        return x + self.body(x)


class LIIF(nn.Module):
    """EDSR encoder + local implicit image function with a truncatable decoder MLP.

    The decoder reads ``9 * channels + 4`` inputs: the 3x3-unfolded feature, the query's offset
    from that feature's pixel centre and the cell, both in LR pixel units. ``full_layers``: the
    decoder's first hidden layers that are never cut (``TruncatableMLP``).
    """

    def __init__(
        self,
        channels: int = 64,
        blocks: int = 16,
        hidden: tuple[int, ...] | list[int] = (256, 256, 256, 256),
        dropout: DropoutSpec | None = None,
        full_layers: int = 0,
    ):
        super().__init__()
        self.encoder = EDSREncoder(channels, blocks)
        self.decoder = TruncatableMLP(
            9 * channels + 4, list(hidden), 3, dropout, full_layers=full_layers
        )

    def encode(self, lr: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """``[B, 3, h, w]`` → the unfolded features ``[B, h * w, 9 * channels]`` and ``(h, w)``."""
        features = self.encoder(lr)
        batch, channels, height, width = features.shape
        unfolded = F.unfold(features, 3, padding=1)  # [B, 9C, h*w], zero-padded at borders
        return unfolded.transpose(1, 2), (height, width)

    @staticmethod
    def query_inputs(
        encoded: tuple[Tensor, tuple[int, int]], coord: Tensor, cell: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Decoder inputs ``[B, 4, Q, D]`` and ensemble weights ``[B, 4, Q]`` for queries at
        ``coord`` ``[B, Q, 2]`` with pixel size ``cell`` ``[B, Q, 2]``: none depends on the
        width."""
        features, (height, width) = encoded
        size = torch.tensor([height, width], device=coord.device, dtype=coord.dtype)
        inputs, areas = [], []
        for dy, dx in CORNERS:
            shift = torch.tensor([dy, dx], device=coord.device, dtype=coord.dtype) / size
            shifted = (coord + shift + _EPS).clamp(-1 + _EPS, 1 - _EPS)
            pixel = ((shifted + 1) / 2 * size).floor().clamp(min=0)
            pixel = torch.minimum(pixel, size - 1)  # the LR pixel each shifted query falls in
            index = (pixel[..., 0] * width + pixel[..., 1]).long()
            gathered = torch.gather(
                features, 1, index.unsqueeze(-1).expand(-1, -1, features.shape[-1])
            )
            offset = (coord - ((2 * pixel + 1) / size - 1)) * size
            inputs.append(torch.cat([gathered, offset, cell * size], dim=-1))
            areas.append((offset[..., 0] * offset[..., 1]).abs() + 1e-9)
        areas = torch.stack(areas, dim=1)
        # Bilinear blending: each corner is weighted by the area of the opposite corner's box.
        weights = areas.flip(1) / areas.sum(dim=1, keepdim=True)
        return torch.stack(inputs, dim=1), weights

    def decode(self, inputs: Tensor, weights: Tensor) -> Tensor:
        """RGB ``[B, Q, 3]`` (about ``[0, 1]``) at the decoder's current width."""
        return self.blend(self.decoder(inputs), weights)

    @staticmethod
    def blend(decoded: Tensor, weights: Tensor) -> Tensor:
        return (decoded * weights.unsqueeze(-1)).sum(dim=1) * 0.5 + 0.5

    def forward(self, lr: Tensor, coord: Tensor, cell: Tensor) -> Tensor:
        return self.decode(*self.query_inputs(self.encode(lr), coord, cell))

    @torch.no_grad()
    def upsample(self, lr: Tensor, height: int, width: int, chunk: int = 16384) -> Tensor:
        """Render ``lr`` ``[B, 3, h, w]`` at ``height x width`` (any size, any aspect), decoding
        ``chunk`` pixels at a time; returns ``[B, 3, height, width]`` clamped to ``[0, 1]``."""
        return self.render(self.encode(lr), height, width, chunk)

    @torch.no_grad()
    def render(self, encoded, height: int, width: int, chunk: int = 16384) -> Tensor:
        """``upsample`` from ``encode``'s output, so several widths can share one encoding."""
        batch = len(encoded[0])
        coord = pixel_centers(height, width, encoded[0].device).expand(batch, -1, -1)
        cell = cell_size(height, width, encoded[0].device).expand_as(coord)
        parts = []
        for i in range(0, coord.shape[1], chunk):
            part = slice(i, i + chunk)
            parts.append(self.decode(*self.query_inputs(encoded, coord[:, part], cell[:, part])))
        out = torch.cat(parts, dim=1)
        return out.clamp(0, 1).transpose(1, 2).reshape(batch, 3, height, width)
