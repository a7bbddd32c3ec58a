"""Inpainting masks, one definition for training, sampling and evaluation.

A mask is a bool tensor (N, 1, H, W) that is True on the hole (unknown pixels) and False on the
context (known pixels). Masked inputs show the hole as black, as in the course task
(`image[10:18, 10:18] = 0`).
"""
from __future__ import annotations

import torch

from common.errors import UserError

PRESETS = {"center8": ("center", 8), "center12": ("center", 12)}  # the course task, and seed 000's center_box
MASKS = ("center", "box", "half", "pixels", *PRESETS)


def resolve(kind: str, size: int) -> tuple[str, int]:
    """A preset name -> (kind, size); other kinds are returned unchanged."""
    return PRESETS.get(kind, (kind, size))


def check(kind: str, size: int, fraction: float, hw: tuple[int, int] = (28, 28)) -> None:
    """Refuse masks that leave no hole or no context, with a one-line UserError."""
    kind, size = resolve(kind, size)
    if kind not in MASKS:
        raise UserError(f"mask {kind!r} is not valid; choose one of {', '.join(MASKS)}")
    if kind in ("center", "box") and not 1 <= size < min(hw):
        raise UserError(f"mask size {size} leaves no {'hole' if size < 1 else 'context'} in a {hw[0]}x{hw[1]} "
                        f"image; use 1..{min(hw) - 1} (8 is the course task, 12 seed 000's center_box)")
    if kind == "pixels" and not 0 < fraction < 1:
        raise UserError(f"mask fraction {fraction} leaves no {'hole' if fraction <= 0 else 'context'}; "
                        "use a share of hidden pixels strictly between 0 and 1")


def make(kind: str, n: int, *, size: int = 12, fraction: float = 0.5, hw: tuple[int, int] = (28, 28),
         generator: torch.Generator | None = None) -> torch.Tensor:
    """n masks (True = hole) of one kind (or a preset of PRESETS):
      center: the size x size square at the center, rows/cols [(H - size) // 2, + size); size 8 on
              28x28 is exactly the course's [10:18, 10:18];
      box:    a size x size square at a uniformly random position inside the image;
      half:   a random one of the top, bottom, left and right halves;
      pixels: each pixel hidden independently with probability `fraction`.
    Random kinds draw from `generator` (the global RNG if None)."""
    check(kind, size, fraction, hw)
    kind, size = resolve(kind, size)
    h, w = hw
    m = torch.zeros(n, 1, h, w, dtype=torch.bool)
    if kind == "center":
        top, left = (h - size) // 2, (w - size) // 2
        m[..., top:top + size, left:left + size] = True
    elif kind == "box":
        tops = torch.randint(0, h - size + 1, (n,), generator=generator)
        lefts = torch.randint(0, w - size + 1, (n,), generator=generator)
        for i, (top, left) in enumerate(zip(tops.tolist(), lefts.tolist())):
            m[i, :, top:top + size, left:left + size] = True
    elif kind == "half":
        for i, side in enumerate(torch.randint(0, 4, (n,), generator=generator).tolist()):
            rows = slice(0, h // 2) if side == 0 else slice(h // 2, h) if side == 1 else slice(None)
            cols = slice(0, w // 2) if side == 2 else slice(w // 2, w) if side == 3 else slice(None)
            m[i, :, rows, cols] = True
    else:
        m = torch.rand(n, 1, h, w, generator=generator) < fraction
        m.view(n, -1)[m.view(n, -1).all(1), 0] = False  # keep at least one known pixel
        m.view(n, -1)[~m.view(n, -1).any(1), 0] = True  # and at least one hidden one
    return m


def apply(x: torch.Tensor, mask: torch.Tensor, fill: float = -1.0) -> torch.Tensor:
    """The masked input: known pixels of x, `fill` (black in model range [-1, 1]) on the hole."""
    return x.masked_fill(mask, fill)


def paste(known_from: torch.Tensor, hole_from: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Known pixels from `known_from`, hole pixels from `hole_from`."""
    return torch.where(mask, hole_from, known_from)
