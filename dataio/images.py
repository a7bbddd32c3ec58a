"""Image files: sample grids, PNG folders and npz archives of uint8 (N, 28, 28) digits."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from engine.errors import UserError
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


def load_digits(path: str | Path) -> np.ndarray:
    """uint8 (N, 28, 28) from a folder of PNG files (sorted by name) or an npz with key `images`
    (or a single array). Anything else is a one-line UserError naming the file."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.png"))
        if not files:
            raise UserError(f"no .png files in {path}; run sample.py first or pass --samples FOLDER_OR_NPZ")
        out = np.empty((len(files), 28, 28), np.uint8)
        for i, f in enumerate(files):
            try:
                with Image.open(f) as img:
                    img.load()
                    if img.size != (28, 28) or img.mode != "L":
                        raise UserError(f"{f} is {img.size[0]}x{img.size[1]} mode {img.mode}; samples must be "
                                        "28x28 grayscale (mode L) PNGs")
                    out[i] = np.asarray(img)
            except UserError:
                raise
            except Exception as e:
                raise UserError(f"{f} is not a readable PNG ({type(e).__name__}); regenerate or remove it") from None
        return out
    if path.suffix == ".npz" and path.is_file():
        try:
            with np.load(path) as z:
                key = "images" if "images" in z.files else (z.files[0] if len(z.files) == 1 else None)
                if key is None:
                    raise UserError(f"{path} has arrays {z.files} but no 'images'; save the digits under the key images")
                arr = z[key]
        except UserError:
            raise
        except Exception as e:
            raise UserError(f"{path} is not a readable npz file ({type(e).__name__}); re-save it with numpy.savez") from None
        if arr.ndim == 4 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 3 or arr.shape[1:] != (28, 28):
            raise UserError(f"{path}: images have shape {arr.shape}; expected (N, 28, 28)")
        if arr.dtype != np.uint8:
            raise UserError(f"{path}: images are {arr.dtype}; expected uint8 in 0..255")
        return arr
    raise UserError(f"samples {path} not found (expected a folder of PNGs or an .npz); run sample.py first")
