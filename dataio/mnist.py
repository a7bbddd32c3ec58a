"""MNIST as uint8 tensors in memory, and a deterministic, resumable batch order."""
from __future__ import annotations

import functools
import gzip
import math
import struct
from pathlib import Path

import numpy as np
import torch

from common.errors import UserError

RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _read_idx(path: Path) -> np.ndarray:
    """An idx file (LeCun's MNIST format, optionally gzipped): 0, 0, type 0x08 (uint8), the number of
    dimensions, the dimensions as big-endian uint32, then the bytes."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    ndim = data[3] if len(data) > 4 else 0
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim]) if data[:3] == b"\0\0\x08" and ndim else None
    if shape is None or len(data) != 4 + 4 * ndim + math.prod(shape):
        raise UserError(f"{path} is not an MNIST idx file of uint8 (truncated or corrupt); replace it with the "
                        f"original file, or delete it to download it again")
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _find(raw: Path, name: str) -> Path | None:
    return next((p for p in (raw / name, raw / f"{name}.gz") if p.is_file()), None)


def load_mnist(root: str | Path, train: bool = True, download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 (N, 28, 28), labels int64 (N,)) of MNIST's training or test split, read from the
    original files in ROOT/MNIST/raw (as torchvision.datasets.MNIST lays them out; gzipped too).
    torchvision downloads them when they are missing; it is imported only then (it takes seconds)."""
    raw = Path(root) / "MNIST" / "raw"
    names = RAW_FILES[:2] if train else RAW_FILES[2:]
    if download and not all(_find(raw, n) for n in names):
        from torchvision.datasets import MNIST

        try:
            MNIST(root=str(root), train=train, download=True)
        except (RuntimeError, OSError) as e:
            raise UserError(f"MNIST not found under {raw} and it could not be downloaded "
                            f"({str(e).splitlines()[0][:80]}); put {', '.join(RAW_FILES)} (or their .gz) in "
                            f"{raw}, or set data.root") from None
    paths = [_find(raw, n) for n in names]
    if not all(paths):
        raise UserError(f"MNIST not found under {raw} and data.download is false; put {', '.join(RAW_FILES)} "
                        f"(or their .gz) in {raw}, or set data.root")
    images, labels = (_read_idx(p) for p in paths)
    if images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
        raise UserError(f"{paths[0]} and {paths[1]} do not hold 28 x 28 digits and one label each; replace them "
                        f"with the original MNIST files")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def to_model_range(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) in 0..255 -> float (N, 1, 28, 28) in [-1, 1]; (N, C, H, W) keeps its shape."""
    x = images_u8 if images_u8.dim() == 4 else images_u8.unsqueeze(1)
    return x.float().div(127.5).sub(1)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float (N, 1, H, W) in [-1, 1] -> uint8 (N, H, W), rounded; (N, C, H, W) with C > 1 keeps its shape."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).squeeze(1).cpu()


def batch_indices(n: int, batch_size: int, seed: int, index: int) -> torch.Tensor:
    """Indices of the `index`-th batch of an endless shuffled stream over n items: epoch e is
    randperm(n) drawn from seed + e, its last incomplete batch dropped. A pure function of its
    arguments, so training resumes at any batch without replaying the data order."""
    per_epoch = n // batch_size
    if per_epoch == 0:
        raise UserError(f"the training set has {n} images, fewer than one batch of {batch_size}")
    epoch, b = divmod(index, per_epoch)
    return _epoch_order(n, seed, epoch)[b * batch_size:(b + 1) * batch_size]


@functools.lru_cache(maxsize=2)
def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The permutation of epoch `epoch`, drawn once (read-only: callers only index with it)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


VAL_SEED = 2026  # fixed: the validation split must not move with train.seed


def validation_split(n: int, val_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(training indices, validation indices) of n training digits: the validation digits are the
    first val_size of a permutation drawn from VAL_SEED (the same whatever the run's seeds), the
    training indices all the others, in their original order."""
    if not 0 <= val_size < n:
        raise UserError(f"data.val_size must be in 0..{n - 1}, got {val_size}")
    val = torch.randperm(n, generator=torch.Generator().manual_seed(VAL_SEED))[:val_size]
    keep = torch.ones(n, dtype=torch.bool)
    keep[val] = False
    return keep.nonzero().flatten(), val


EVAL_SEED = 42  # seed 000's evaluation seed: which test digits an inpainting evaluation uses


def eval_indices(n: int, seed: int = EVAL_SEED, total: int = 10_000) -> torch.Tensor:
    """The MNIST test digits of an inpainting evaluation: the first n of a permutation drawn from
    `seed`, so a smaller evaluation is a prefix of a larger one."""
    if not 1 <= n <= total:
        raise UserError(f"the number of test digits must be in 1..{total}, got {n}")
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n]
