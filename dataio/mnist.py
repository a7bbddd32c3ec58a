"""MNIST as uint8 tensors in memory, and a deterministic, resumable batch order."""
from __future__ import annotations

import functools
from pathlib import Path

import torch

from engine.errors import UserError

RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def load_mnist(root: str | Path, train: bool = True, download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 (N, 28, 28), labels int64 (N,)) from torchvision's MNIST under `root`."""
    from torchvision.datasets import MNIST

    try:
        ds = MNIST(root=str(root), train=train, download=download)
    except (RuntimeError, OSError) as e:
        raw = Path(root) / "MNIST" / "raw"
        how = "it could not be downloaded" if download else "data.download is false"
        raise UserError(f"MNIST not found under {raw} and {how} ({str(e).splitlines()[0][:80]}); put "
                        f"{', '.join(RAW_FILES)} (or their .gz) in {raw}, or set data.root") from None
    return ds.data.clone(), ds.targets.clone()


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


EVAL_SEED = 42  # seed 000's evaluation seed: which test digits an inpainting evaluation uses


def eval_indices(n: int, seed: int = EVAL_SEED, total: int = 10_000) -> torch.Tensor:
    """The MNIST test digits of an inpainting evaluation: the first n of a permutation drawn from
    `seed`, so a smaller evaluation is a prefix of a larger one."""
    if not 1 <= n <= total:
        raise UserError(f"the number of test digits must be in 1..{total}, got {n}")
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n]
