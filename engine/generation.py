"""Compose a trained network, its diffusion config and a sampler into uint8 digits."""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from dataio.mnist import to_uint8
from diffusion import samplers
from diffusion.schedule import from_config
from engine.errors import UserError

IMAGE_SHAPE = (1, 28, 28)


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


def class_labels(n: int, digit: int) -> torch.Tensor:
    """digit -1: balanced classes 0, 1, ..., 9, 0, 1, ...; otherwise n copies of `digit`."""
    return torch.arange(n) % 10 if digit < 0 else torch.full((n,), digit)


def guided(model: torch.nn.Module, y: torch.Tensor, w: float, num_classes: int):
    """The denoiser (x, t) -> output for labels y with classifier-free guidance weight w
    (Ho & Salimans 2022): cond + w (cond - uncond), where uncond gets the "no label" index
    num_classes; w = 0 is the plain conditional model."""
    if w == 0:
        return lambda x, t: model(x, t, y)
    null = torch.full_like(y, num_classes)

    def denoiser(x, t):
        cond, uncond = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null])).chunk(2)
        return cond + w * (cond - uncond)
    return denoiser


def generate(model: torch.nn.Module, cfg, n: int, *, seed: int, sampler: str, steps: int, eta: float,
             batch_size: int, device: torch.device, spacing: str | None = None, guidance: float | None = None,
             digit: int | None = None, progress: bool = True) -> np.ndarray:
    """n digits as uint8 (n, 28, 28). Batches draw their noise from one CPU generator seeded
    with `seed`, so the result is a function of (weights, seed, sampler, steps, eta, batch_size).
    Class-conditional models get balanced labels, or only `digit`, guided with weight `guidance`."""
    sched = from_config(cfg.diffusion)
    gen = torch.Generator().manual_seed(seed)
    conditional = cfg.model.num_classes > 0
    labels = class_labels(n, cfg.sample.digit if digit is None else digit).to(device) if conditional else None
    w = cfg.sample.guidance if guidance is None else guidance
    model.eval()
    out = []
    with tqdm(total=n, desc=f"{sampler} x{steps}", unit="img", disable=not progress) as bar:
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            denoiser = guided(model, labels[start:start + b], w, cfg.model.num_classes) if conditional else model
            x = samplers.sample(denoiser, sched, (b, *IMAGE_SHAPE), gen, sampler=sampler, steps=steps, eta=eta,
                                prediction=cfg.diffusion.prediction, clip_x0=cfg.sample.clip_x0,
                                spacing=spacing or cfg.sample.spacing, self_cond=cfg.diffusion.self_cond,
                                device=device, progress=progress)
            out.append(to_uint8(x).numpy())
            bar.update(b)
    return np.concatenate(out)
