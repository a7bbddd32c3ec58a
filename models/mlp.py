"""An MLP denoiser for low-dimensional data (the two-moons test bed): a sinusoidal time embedding
through a time MLP, then residual blocks that each add a projection of it. No normalisation
layers: with 2D inputs the magnitude of x_t carries the signal (at high noise eps ~ x_t), and a
LayerNorm would divide it out."""
from __future__ import annotations

import torch
from torch import nn

from models.embeddings import LabelEmbedding, timestep_embedding


class Block(nn.Module):
    """h + W2 SiLU(W1 SiLU(h) + P temb), W2 zero-initialised so every block starts as the identity."""

    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.fc1, self.temb = nn.Linear(width, width), nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.drop = nn.Dropout(dropout)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        return h + self.fc2(self.drop(nn.functional.silu(self.fc1(nn.functional.silu(h)) + self.temb(temb))))


class MLPDenoiser(nn.Module):
    """(x (B, in_channels), t (B,) levels in [1, T], y (B,) or None) -> (B, image_channels).
    image_channels is the data dimension (2 for two moons); width and depth as in the config."""

    def __init__(self, image_channels: int = 2, in_channels: int | None = None, width: int = 128, depth: int = 3,
                 dropout: float = 0.0, num_classes: int = 0):
        super().__init__()
        self.width = width
        self.time = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.label = LabelEmbedding(num_classes, width)
        self.inp = nn.Linear(in_channels or image_channels, width)
        self.blocks = nn.ModuleList(Block(width, dropout) for _ in range(depth))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(width, image_channels))

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        temb = nn.functional.silu(self.label(self.time(timestep_embedding(t, self.width)), y))
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, temb)
        return self.out(h)
