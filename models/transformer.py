"""A DiT-style denoiser (Peebles & Xie 2023, arXiv:2212.09748).

Patchify (a p x p conv with stride p), add a sin-cos or learned position embedding, run transformer
blocks conditioned on the timestep (plus an optional class label) through adaLN-Zero (per-block shift/scale/gate regressed from the
conditioning, gates initialised to zero so every block starts as the identity), then a modulated
linear head and unpatchify back to (B, C, 28, 28).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.embeddings import LabelEmbedding, sincos_2d, timestep_embedding


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class DiTBlock(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float, mlp_ratio: int = 4):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(approximate="tanh"), nn.Dropout(dropout),
                                 nn.Linear(mlp_ratio * width, width))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))
        nn.init.zeros_(self.ada[-1].weight)
        nn.init.zeros_(self.ada[-1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c).chunk(6, dim=1)
        b, n, w = x.shape
        q, k, v = self.qkv(modulate(self.norm1(x), shift1, scale1)).view(b, n, 3, self.heads, w // self.heads) \
            .permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, w)
        x = x + gate1[:, None] * self.proj(attn)
        return x + gate2[:, None] * self.mlp(modulate(self.norm2(x), shift2, scale2))


class DiT(nn.Module):
    def __init__(self, image_channels: int = 1, image_size: int = 28, patch_size: int = 4, width: int = 192,
                 depth: int = 6, num_heads: int = 4, dropout: float = 0.0, pos_embed: str = "sincos",
                 in_channels: int | None = None, num_classes: int = 0):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"model.patch_size={patch_size} must divide the image size {image_size}")
        if width % num_heads:
            raise ValueError(f"model.width={width} must be divisible by model.num_heads={num_heads}")
        self.c, self.p, self.grid, self.width = image_channels, patch_size, image_size // patch_size, width
        self.patchify = nn.Conv2d(in_channels or image_channels, width, patch_size, stride=patch_size)
        pos = sincos_2d(width, self.grid)[None]
        if pos_embed == "learned":
            self.pos = nn.Parameter(pos.clone())
        else:
            self.register_buffer("pos", pos, persistent=False)
        self.time_mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.label = LabelEmbedding(num_classes, width)
        self.blocks = nn.ModuleList(DiTBlock(width, num_heads, dropout) for _ in range(depth))
        self.norm_out = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.head = nn.Linear(width, patch_size * patch_size * image_channels)
        for layer in (self.ada_out[-1], self.head):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.patchify(x).flatten(2).transpose(1, 2) + self.pos  # (B, N, W)
        c = self.label(self.time_mlp(timestep_embedding(t, self.width)), y)
        for block in self.blocks:
            h = block(h, c)
        shift, scale = self.ada_out(c).chunk(2, dim=1)
        return self.unpatchify(self.head(modulate(self.norm_out(h), shift, scale)))

    def unpatchify(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N, p*p*C) with N = grid^2 in row-major order -> (B, C, grid*p, grid*p)."""
        g, p = self.grid, self.p
        return tokens.view(-1, g, g, p, p, self.c).permute(0, 5, 1, 3, 2, 4).reshape(-1, self.c, g * p, g * p)
