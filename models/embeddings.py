"""Embeddings shared by the denoisers."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps, shape (B,) -> (B, dim)
    (Vaswani et al. 2017, as used for diffusion time by Ho et al. 2020)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    return F.pad(emb, (0, dim % 2))


def sincos_2d(width: int, grid: int) -> torch.Tensor:
    """Fixed 2D sin-cos position embedding (MAE/DiT style), (grid * grid, width); width % 4 == 0."""
    if width % 4:
        raise ValueError(f"sin-cos position embedding needs a width divisible by 4, got {width}")
    ys, xs = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64),
                            indexing="ij")
    quarter = width // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    parts = []
    for pos in (ys.flatten(), xs.flatten()):
        out = pos[:, None] * omega[None]
        parts += [out.sin(), out.cos()]
    return torch.cat(parts, dim=1).float()


def no_label(num_classes: int) -> int:
    """The label index that means "no label": the row after the classes in LabelEmbedding. Trained
    by label dropout, it gives the unconditional prediction that classifier-free guidance subtracts."""
    return num_classes


class LabelEmbedding(nn.Module):
    """Adds a learned class embedding to the conditioning vector. Index `num_classes` is the
    "no label" token used for classifier-free guidance (Ho & Salimans 2022, arXiv:2207.12598);
    y = None means no label for the whole batch. With num_classes = 0 it is the identity."""

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes + 1, dim) if num_classes else None

    def forward(self, cond: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if self.embed is None:
            return cond
        if y is None:
            y = torch.full((cond.shape[0],), no_label(self.num_classes), device=cond.device, dtype=torch.long)
        return cond + self.embed(y)
