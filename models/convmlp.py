"""A fast one-pass completion network: a small strided-conv encoder, then an MLP that writes the image.

Not a diffusion model (task.name: complete). The encoder sees the masked image, the mask and the
coordinate channels at 28 x 28, halves the size twice with stride-2 convolutions (28 -> 14 -> 7) and
the MLP maps the flattened 7 x 7 features to every pixel of the image at once. A hole in the middle
of a digit depends on strokes anywhere in the image; a fully connected layer relates any two
positions in one step, where a UNet needs depth or attention, and its matrix products are what a
CPU does fastest. Training on the course mask here (log.tsv's images/s, one thread each, two runs side
by side) it averaged 441 images/s against 78 for the UNet of configs/course.yaml; but the MLP
over flattened positions has no translation equivariance, and it overfits: 0.0348 against 0.0275
validation hole MSE after the same 6,000 steps (docs/inpainting.md).
"""
from __future__ import annotations

import torch
from torch import nn


class ConvMLP(nn.Module):
    """(inputs (B, in_channels, S, S), t ignored) -> image (B, image_channels, S, S), S divisible by 4.
    channels: width of the first conv stage (the second has twice as many); width: hidden units of
    the MLP; depth: hidden layers of the MLP; dropout: before each hidden layer's output projection."""

    def __init__(self, image_channels: int = 1, in_channels: int = 4, image_size: int = 28, channels: int = 32,
                 width: int = 1024, depth: int = 1, dropout: float = 0.0):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size={image_size} must be divisible by 4 (two stride-2 stages)")
        c, s = channels, image_size // 4
        self.out_shape = (image_channels, image_size, image_size)
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, c, 3, padding=1), nn.SiLU(),
            nn.Conv2d(c, c, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.SiLU(),
            nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1), nn.SiLU(), nn.Flatten())
        layers, n = [], 2 * c * s * s
        for _ in range(depth):
            layers += [nn.Linear(n, width), nn.SiLU(), nn.Dropout(dropout)]
            n = width
        self.mlp = nn.Sequential(*layers, nn.Linear(n, image_channels * image_size * image_size))

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None, y=None) -> torch.Tensor:
        return self.mlp(self.encoder(x)).view(len(x), *self.out_shape)
