"""Compose a trained network, its diffusion config and a sampler into uint8 digits (or 2D points)."""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from dataio.mnist import to_uint8
from diffusion import samplers
from diffusion.schedule import from_config
from common.progress import bar as progress_bar, live
from common.runtime import keyed_generator
from models.embeddings import no_label


def class_labels(n: int, digit: int, num_classes: int = 10) -> torch.Tensor:
    """digit -1: balanced classes 0, 1, ..., num_classes - 1, 0, 1, ...; otherwise the classes of `digit`,
    d, d + 10, d + 20, ... below num_classes, in turn (just d for 10 classes). Class c shows digit c % 10
    (data.labels=digits_kmeans numbers digit d's clusters d, d + 10, ...), so sample i is digit i % 10."""
    i = torch.arange(n)
    return i % num_classes if digit < 0 else digit + 10 * (i % max(1, num_classes // 10))


def classes_are_digits(num_classes: int | None, labels: str = "digits") -> bool:
    """Whether a model's classes ask for digits (class c shows digit c % 10): MNIST's labels, alone or each
    split into clusters (data.labels digits, digits_kmeans). Clusters of all digits (kmeans) name none,
    and an unconditional model (num_classes 0) takes no class."""
    return bool(num_classes) and labels != "kmeans"


def conditioning(cfg) -> dict:
    """What a model's class index means, as samples.json and the grader record it: its number of
    classes and what they are (data.labels); classes_are_digits reads the two."""
    return {"num_classes": cfg.model.num_classes, "labels": cfg.data.labels}


def digit_grid(columns: int) -> np.ndarray:
    """Indices (10, columns) into balanced samples (class_labels with digit -1): row d holds the
    first `columns` samples of digit d."""
    return np.arange(columns)[None, :] * 10 + np.arange(10)[:, None]


def guided(model: torch.nn.Module, y: torch.Tensor | None, w: float, num_classes: int,
           guide: torch.nn.Module | None = None, a: float = 0.0, levels: tuple[float, float] | None = None):
    """The denoiser (x, t) -> output for labels y (None: unconditional) with
      classifier-free guidance weight w (Ho & Salimans 2022): + w (cond - uncond), where uncond gets the
        "no label" index num_classes;
      autoguidance weight a (Karras et al. 2024, "Guiding a diffusion model with a bad version of
        itself", arXiv:2406.02507): + a (cond - guide's cond), the guide being an early, worse version
        of the same network, whose errors the difference points away from.
    Both 0: the plain (conditional) model, one network call per step; each weight adds one call.
    `levels` = (lo, hi): guide only at levels lo <= t <= hi, elsewhere the plain model at one call (the
    guidance interval of Kynkaanniemi et al. 2024, arXiv:2404.07724: guidance at the noisiest levels
    mostly costs variety); None: at every level."""
    def call(net, x, t, labels):
        return net(x, t) if labels is None else net(x, t, labels)
    if w == 0 and a == 0:
        return lambda x, t: call(model, x, t, y)
    null = torch.full_like(y, no_label(num_classes)) if w else None

    def denoiser(x, t):
        if levels is not None and not levels[0] <= float(t[0]) <= levels[1]:
            return call(model, x, t, y)
        if w:
            cond, uncond = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null])).chunk(2)
            out = cond + w * (cond - uncond)
        else:
            cond = out = call(model, x, t, y)
        return out + a * (cond - call(guide, x, t, y)) if a else out
    return denoiser


def generate(model: torch.nn.Module, cfg, n: int, *, seed: int, sampler: str, steps: int, eta: float,
             batch_size: int, device: torch.device, spacing: str | None = None, sigmas: str | None = None,
             guidance: float | None = None, digit: int | None = None, progress: bool = True,
             callback=None, indices: np.ndarray | None = None, shape: tuple[int, ...] | None = None,
             guide: torch.nn.Module | None = None, autoguidance: float | None = None,
             guidance_interval: list[float] | None = None) -> np.ndarray:
    """n digits as uint8 (n, 28, 28), or for the moons task n points as float32 (n, 2); with
    `indices`, only those of the n (a process's share). Sample i draws its noise from
    keyed_generator(seed, i), so it is a function of (weights, seed, i, sampler, steps, eta) alone.
    Class-conditional models get balanced labels (sample i is digit i % 10), or only `digit`,
    guided with weight `guidance`; with autoguidance > 0 also steered away from `guide`, both only inside
    `guidance_interval` (fractions of diffusion.timesteps; see guided).
    `callback(batch_start, level, x_t)` sees every intermediate state (see diffusion.samplers.sample)."""
    sched = from_config(cfg.diffusion)
    indices = np.arange(n) if indices is None else np.asarray(indices)
    conditional = cfg.model.num_classes > 0
    labels = class_labels(n, cfg.sample.digit if digit is None else digit, cfg.model.num_classes)[indices].to(device) \
        if conditional else None
    w = cfg.sample.guidance if guidance is None else guidance
    a = cfg.sample.autoguidance if autoguidance is None else autoguidance
    lo, hi = cfg.sample.guidance_interval if guidance_interval is None else guidance_interval
    levels = None if (lo, hi) == (0, 1) else (lo * cfg.diffusion.timesteps, hi * cfg.diffusion.timesteps)
    if a and guide is None:
        raise ValueError("autoguidance needs the guide network (train.guide_step keeps it in the checkpoint)")
    if shape is None:  # one sample's shape is the task's: (C, H, W) images, or (2,) points
        from tasks import for_config
        shape = for_config(cfg).sample_shape(cfg)
    points = len(shape) == 1
    model.eval()
    out = []
    start = 0
    with progress_bar(len(indices), f"{sampler} x{steps}", "points" if points else "images", enabled=progress) as bar:
        while start < len(indices):
            b = min(batch_size, len(indices) - start)
            gen = [keyed_generator(seed, int(i)) for i in indices[start:start + b]]
            denoiser = guided(model, labels[start:start + b] if conditional else None, w, cfg.model.num_classes, guide, a,
                              levels)
            step_hook = (lambda level, x, start=start: callback(start, level, x)) if callback else None
            try:
                x = samplers.sample(denoiser, sched, (b, *shape), gen, sampler=sampler, steps=steps,
                                    eta=eta, prediction=cfg.diffusion.prediction, clip_x0=cfg.sample.clip_x0,
                                    spacing=spacing or cfg.sample.spacing, sigmas=sigmas or cfg.sample.sigmas,
                                    self_cond=cfg.diffusion.self_cond, device=device, progress=live(progress),
                                    callback=step_hook)
            except torch.cuda.OutOfMemoryError:  # per-sample noise: a smaller batch gives the same samples
                if b == 1:
                    raise
                batch_size = b // 2
                torch.cuda.empty_cache()
                tqdm.write(f"out of GPU memory at batch {b}; continuing with batch {batch_size}")
                continue
            out.append(x.float().cpu().numpy() if points else to_uint8(x).numpy())
            bar.update(b)
            start += b
    return np.concatenate(out)
