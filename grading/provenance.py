"""Did these samples come from this checkpoint? Regenerate a few and compare.

Sample i of sample.py is a function of (weights, seed, i, sampler, steps, eta, guidance, digit)
alone (tasks.generation.generate), all recorded in samples.json. The grader draws K indices with
its own seed, regenerates them from the submitted checkpoint and compares them with the submitted
images. An image matches when its mean absolute difference is at most TOLERANCE gray levels (of
255); the set is verified when all K match.

Tolerance: on one CPU the regeneration is bit-exact whatever the thread count or batch size.
Other hardware computes in other orders and precisions; emulated here by rounding every weight to
TF32's 10-bit mantissa (the precision of a GPU's TF32 matmuls) and to bfloat16's 7 bits, the mean
absolute differences stayed below 0.17 and 0.94 gray levels (64 digits each, DPM-Solver++ x10 and
DDPM x100), while two different samples of the default model differed by at least 17. TOLERANCE
sits at twice the bfloat16 figure.

A set with m of N images replaced passes only if none of the K drawn indices is replaced:
C(N-m, K) / C(N, K) <= (1 - m/N)^K; for K = 64 and N = 5,000, 3.7% when 5% are replaced and
0.11% when 10% are (`pass_probability`).
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from engine import checkpoint
from common.errors import UserError
from tasks import for_config
from tasks.generate import generate_from, settings_of

TOLERANCE = 2.0  # mean absolute difference per image, gray levels of 255
CHECKED = 64  # indices regenerated per set


def pass_probability(n: int, replaced: int, k: int = CHECKED) -> float:
    """Chance that a set of n images with `replaced` foreign ones passes a check of k distinct indices."""
    return math.comb(n - replaced, k) / math.comb(n, k) if k <= n - replaced else 0.0


def check_indices(n: int, k: int, seed: int) -> np.ndarray:
    """The k sorted indices of a set of n that the grader's seed picks for regeneration."""
    return np.sort(np.random.default_rng(seed).choice(n, min(k, n), replace=False))


def verify(ckpt_path, meta: dict, images: np.ndarray, *, k: int = CHECKED, seed: int = 0,
           device: torch.device = torch.device("cpu"), tolerance: float = TOLERANCE, regen=None) -> dict:
    """Regenerate k indices (drawn by `seed`) of `images` (uint8 (N, 28, 28)) from the checkpoint with
    the settings of `meta` (samples.json) and compare. `regen(indices)`, when given, regenerates them
    elsewhere (a student's network in grading.sandbox's child); by default here. Returns verified,
    matched, checked, the largest mean absolute difference and the seconds it took."""
    try:
        settings_of(meta)
    except ValueError as e:
        raise UserError(f"samples.json: {e}; regenerate the samples with sample.py") from None
    if meta["num_samples"] != len(images):
        raise UserError(f"samples.json records {meta['num_samples']} samples but the set holds {len(images)}")
    start = time.perf_counter()
    indices = check_indices(len(images), k, seed)
    k = len(indices)
    if regen is not None:
        again = regen(indices)
    else:
        ckpt, cfg, model = checkpoint.load_model(ckpt_path, ema=meta.get("ema", True), device=device)
        task = for_config(cfg)
        if not task.makes_digits:
            raise UserError(f"{ckpt_path} is not a digit-generating checkpoint (a {task.name} model)")
        try:
            again = generate_from(model, cfg, meta, batch_size=k, device=device, indices=indices,
                                  guide=checkpoint.load_guide(ckpt, cfg, ckpt_path, device))
        except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as e:  # hand-edited or foreign settings
            raise UserError(f"the settings in samples.json do not run with this checkpoint ({str(e)[:80]})") from None
    diff = np.abs(again.astype(np.int16) - images[indices].astype(np.int16)).reshape(k, -1).mean(1)
    matched = int((diff <= tolerance).sum())
    return {"verified": matched == k, "matched": matched, "checked": k, "max_mean_abs_diff": float(diff.max()),
            "tolerance": tolerance, "seconds": round(time.perf_counter() - start, 2)}
