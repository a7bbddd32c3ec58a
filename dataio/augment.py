"""Geometric jitter of whole training digits (before masking), for the completion tasks: every
digit is moved, turned and scaled a little, so the network sees more variants of each writer's
digits while its task stays the same (fill the hole of a digit)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def jitter_params(n: int, generator: torch.Generator, size: tuple[int, int], *, shift: int = 0,
                  rotate: float = 0.0, scale: float = 0.0) -> torch.Tensor | None:
    """Affine maps (n, 2, 3) for `apply`, one per image, or None when there is no jitter: a shift by
    whole pixels uniform in -shift..shift in x and in y, a rotation by an angle uniform in +-rotate
    degrees and a scaling by a factor uniform in 1 +- scale, about the image center. Drawn from the
    CPU `generator` alone."""
    if not (shift or rotate or scale):
        return None
    h, w = size
    dx = torch.randint(-shift, shift + 1, (n,), generator=generator).double()
    dy = torch.randint(-shift, shift + 1, (n,), generator=generator).double()
    angle = (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * math.radians(rotate)
    factor = 1 + (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * scale
    cos, sin = torch.cos(angle) / factor, torch.sin(angle) / factor
    # output pixel p samples the input at A p + t in normalised coordinates (one pixel = 2 / size)
    return torch.stack([torch.stack([cos, -sin * h / w, -2 * dx / w], 1),
                        torch.stack([sin * w / h, cos, -2 * dy / h], 1)], 1)


def apply(x: torch.Tensor, theta: torch.Tensor | None) -> torch.Tensor:
    """Images (B, C, H, W) in [-1, 1] (background -1) moved by `theta` (B, 2, 3) from jitter_params,
    bilinear; uncovered pixels become background. Whole-pixel shifts alone are exact."""
    if theta is None:
        return x
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1
