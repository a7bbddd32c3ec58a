"""Image files: sample grids, PNG folders and npz archives of uint8 (N, 28, 28) digits."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from engine.fileio import atomic_path


def grid(images: np.ndarray, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """uint8 (N, H, W) -> one uint8 image with the digits tiled row by row on a gray border."""
    n, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    out = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad), 128, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, nrow)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = img
    return out


def save_png(path: str | Path, image: np.ndarray, scale: int = 1) -> None:
    """Write a uint8 (H, W) image atomically, optionally enlarged `scale` times (nearest)."""
    img = Image.fromarray(image, mode="L")
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def save_grid(path: str | Path, images: np.ndarray, nrow: int | None = None) -> None:
    save_png(path, grid(images, nrow), scale=3)


def write_png_folder(folder: Path, images: np.ndarray) -> None:
    """00000.png, 00001.png, ... into an existing (fresh) folder."""
    for i, img in enumerate(images):
        Image.fromarray(img, mode="L").save(folder / f"{i:05d}.png")


def save_npz(path: str | Path, **arrays) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
