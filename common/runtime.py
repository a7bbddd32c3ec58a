"""Devices, seeds and versions: what a run needs from the machine it runs on."""
from __future__ import annotations

import datetime
import importlib.metadata
import platform
import random

import numpy as np
import torch

from common.errors import UserError


def pick_device(name: str = "auto") -> torch.device:
    """auto: cuda > mps > cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())}
    if not available[name]:
        raise UserError(f"device {name!r} is not available on this machine; use --device auto or train.device=cpu")
    return torch.device(name)


def keyed_generator(seed: int, *index: int) -> torch.Generator:
    """A CPU generator that is a pure function of (seed, index...): sample `index` of a run draws its
    noise from one (so it is the same whatever the batch size or the number of processes), and so
    do training batch `index` (engine.trainer) and the completions of tasks.completion, under keys
    of their own."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, *index]).generate_state(1, np.uint64)[0]))


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (dropout and other unkeyed draws)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def versions() -> dict:
    """The versions that made a file: recorded in checkpoints, samples.json and results."""
    try:  # from the package metadata: importing torchvision takes seconds
        vision = importlib.metadata.version("torchvision")
    except importlib.metadata.PackageNotFoundError:
        vision = "not installed"
    return {"python": platform.python_version(), "torch": str(torch.__version__), "torchvision": vision,
            "numpy": str(np.__version__)}


def timing(device, seconds: float, n: int) -> dict:
    """How long n images took where: recorded beside samples and completions."""
    return {"device": str(device), "seconds": round(seconds, 2), "images_per_s": round(n / seconds, 2),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "versions": versions()}
