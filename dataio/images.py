"""Image files: sample grids, PNG folders and npz archives of uint8 (N, 28, 28) digits."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from common.errors import UserError
from common.fileio import atomic_path


def grid(images: np.ndarray, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """uint8 (N, H, W) or (N, H, W, 3) -> one uint8 image with the images tiled row by row on a gray border."""
    n, h, w = images.shape[:3]
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    out = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, *images.shape[3:]), 128, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, nrow)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = img
    return out


def save_png(path: str | Path, image: np.ndarray, scale: int = 1) -> None:
    """Write a uint8 (H, W) or (H, W, 3) image atomically, optionally enlarged `scale` times (nearest)."""
    img = Image.fromarray(image)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def save_grid(path: str | Path, images: np.ndarray, nrow: int | None = None) -> None:
    save_png(path, grid(images, nrow), scale=3)


def displayable(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W) or (N, C, H, W) -> (N, H, W) for one channel, (N, H, W, 3) for RGB."""
    if images.ndim == 3:
        return images
    return images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)


def save_rows(path: str | Path, rows: list[np.ndarray]) -> None:
    """A panel with one row per uint8 (N, H, W) or (N, H, W, 3) array, e.g. inputs / completions / originals."""
    save_png(path, grid(np.concatenate(rows), nrow=len(rows[0])), scale=max(1, 84 // rows[0].shape[1]))


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
        _, arr = read_npz_images(path)
        if arr.ndim == 4 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 3 or arr.shape[1:] != (28, 28):
            raise UserError(f"{path}: images have shape {arr.shape}; expected (N, 28, 28)")
        if arr.dtype != np.uint8:
            raise UserError(f"{path}: images are {arr.dtype}; expected uint8 in 0..255")
        return arr
    raise UserError(f"samples {path} not found (expected a folder of PNGs or an .npz); run sample.py first")


def read_npz(path: Path, fix: str = "re-save it with numpy.savez") -> dict[str, np.ndarray]:
    """Every array of an npz file; an unreadable file is a UserError ending in `fix`."""
    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:
        raise UserError(f"{path} is not a readable npz file ({type(e).__name__}); {fix}") from None


def read_npz_images(path: Path) -> tuple[str, np.ndarray]:
    """(key, array) of an npz: the array under "images", or its only array; else a UserError."""
    arrays = read_npz(path)
    key = "images" if "images" in arrays else (next(iter(arrays)) if len(arrays) == 1 else None)
    if key is None:
        raise UserError(f"{path} has arrays {list(arrays)} but no 'images'; save the digits under the key images")
    return key, arrays[key]


def read_course_npz(path: Path) -> tuple[str, np.ndarray]:
    """(key, array) of a course-style npz of 28x28 digits in any of the layouts (N, 28, 28),
    (N, 1, 28, 28), (N, 28, 28, 1), (N, 784); uint8 (0..255) or float (0..1, or 0..255)."""
    if not path.is_file():
        raise UserError(f"{path} not found; pass an npz of 28x28 digits")
    key, arr = read_npz_images(path)
    if arr.ndim < 2 or arr.shape[1:] not in ((28, 28), (1, 28, 28), (28, 28, 1), (784,)):
        raise UserError(f"{path}: images have shape {arr.shape}; expected N x 28 x 28 (or N x 1 x 28 x 28, N x 784)")
    if not (arr.dtype == np.uint8 or np.issubdtype(arr.dtype, np.floating)):
        raise UserError(f"{path}: images are {arr.dtype}; expected uint8 (0..255) or float (0..1)")
    return key, arr


def value_scale(arr: np.ndarray) -> float:
    """255 for uint8 digits and floats in 0..255, 1 for floats in 0..1."""
    return 255.0 if arr.dtype == np.uint8 or float(arr.max(initial=0)) > 1.5 else 1.0
