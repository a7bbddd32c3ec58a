"""Seed 002's folder-pair dataset: occluded_images/occluded_NAME and original_images/NAME.

Pairs are matched by name after removing the `occluded_` prefix; each pair is resized to a square
`size` and the mask is where the two differ by more than `mask_thresh` (in [0, 1] units, in any
channel). Everything is loaded into memory as uint8, like MNIST.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common.errors import UserError

PREFIX = "occluded_"
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def _images(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise UserError(f"image folder {folder} not found; set data.occluded_dir and data.original_dir")
    return {p.name: p for p in sorted(folder.iterdir()) if p.suffix.lower() in EXTENSIONS}


def pair_names(occluded_dir: Path, original_dir: Path) -> list[tuple[Path, Path]]:
    """(occluded, original) paths matched by name; unmatched files are a UserError naming them."""
    occluded, original = _images(Path(occluded_dir)), _images(Path(original_dir))
    bare = {name.removeprefix(PREFIX): p for name, p in occluded.items()}
    unmatched = sorted(set(bare) ^ set(original))
    if unmatched:
        raise UserError(f"{len(unmatched)} files have no partner between {occluded_dir} and {original_dir} "
                        f"(e.g. {', '.join(unmatched[:3])}); occluded_NAME must pair with NAME")
    if not bare:
        raise UserError(f"no images ({', '.join(EXTENSIONS)}) in {occluded_dir}")
    return [(bare[name], original[name]) for name in sorted(bare)]


def _load(path: Path, size: int, channels: int) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB").resize((size, size), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except Exception as e:
        raise UserError(f"{path} is not a readable image ({type(e).__name__}); replace or remove it") from None
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def load_pairs(occluded_dir, original_dir, size: int, channels: int, mask_thresh: float):
    """(originals uint8 (N, C, size, size), masks bool (N, 1, size, size)) of every pair."""
    occluded, original = [], []
    for occ, orig in pair_names(occluded_dir, original_dir):
        occluded.append(_load(occ, size, channels))
        original.append(_load(orig, size, channels))
    occ, orig = torch.from_numpy(np.stack(occluded)), torch.from_numpy(np.stack(original))
    mask = ((occ.float() - orig.float()).abs() / 255 > mask_thresh).any(1, keepdim=True)
    return orig, mask


def write_pairs(folder: Path, images: np.ndarray, masks: np.ndarray, fill: int = 0) -> None:
    """Write a folder pair: original_images/NNNNN.png and occluded_images/occluded_NNNNN.png with
    the hole painted `fill`. images uint8 (N, H, W) or (N, H, W, 3); masks bool (N, H, W)."""
    occ_dir, orig_dir = Path(folder) / "occluded_images", Path(folder) / "original_images"
    occ_dir.mkdir(parents=True, exist_ok=True)
    orig_dir.mkdir(parents=True, exist_ok=True)
    for i, (img, m) in enumerate(zip(images, masks)):
        Image.fromarray(img).save(orig_dir / f"{i:05d}.png")
        hidden = img.copy()
        hidden[m] = fill
        Image.fromarray(hidden).save(occ_dir / f"{PREFIX}{i:05d}.png")
