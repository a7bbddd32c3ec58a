"""Generate a hand-in's digits from its checkpoint, in the grader's process or in the sandbox's child.

With samples.json (`meta`), the settings are the ones recorded there: grading.provenance regenerates a
few of the handed-in samples to compare. Without it, the grader makes the set itself: the sample.*
settings of the handed-in config (the checkpoint's own when none was handed in), balanced over the
digits for a class-conditional model, with the grader's seed, so a student cannot choose the noise.
"""
from __future__ import annotations

import numpy as np
import torch

from engine import checkpoint, config
from tasks import for_config
from tasks.generate import generate_from, settings_of
from tasks.generation import conditioning


def grader_settings(cfg, seed: int, n: int) -> dict:
    """The settings the grader samples a hand-in with: its config's sample.*, every digit, its seed."""
    s = cfg.sample
    return {"sampler": s.sampler, "steps": s.steps, "eta": s.eta, "seed": seed, "spacing": s.spacing,
            "sigmas": s.sigmas, "guidance": s.guidance, "autoguidance": s.autoguidance,
            "guidance_interval": list(s.guidance_interval), "digit": -1, "num_samples": n,
            "batch_size": s.batch_size}


def regenerate(ckpt_path, config_path, meta: dict | None, *, seed: int, n: int, indices=None,
               device: torch.device = torch.device("cpu")) -> tuple[np.ndarray, dict]:
    """(uint8 digits: all n, or only `indices` of them; the settings that made them), from the
    checkpoint's EMA weights."""
    ckpt, cfg, model = checkpoint.load_model(ckpt_path, ema=True, device=device)
    if not for_config(cfg).makes_digits:
        raise ValueError(f"{ckpt_path} is a {for_config(cfg).name} model, not a digit generator")
    if meta:
        settings = {**settings_of(meta), "batch_size": cfg.sample.batch_size}
    else:
        if config_path:
            cfg.sample = config.load(config_path, migrate=True).sample  # the student's choice of sampler and guidance
        settings = grader_settings(cfg, seed, n)
    images = generate_from(model, cfg, settings, device=device, guide=checkpoint.load_guide(ckpt, cfg, ckpt_path, device),
                           indices=None if indices is None else np.asarray(indices))
    return images, {**settings, **conditioning(cfg)}
