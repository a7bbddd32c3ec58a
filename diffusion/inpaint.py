"""Inpainting by DDIM with data consistency and RePaint-style resampling.

Works with any denoiser: an unconditional one (training-free inpainting) or one that also sees
the masked image (conditional inpainting; see tasks/completion.py). At each denoising step the
known pixels of x_t are replaced by the observation noised to the same level,
    x_t <- m * x_t + (1 - m) * (sqrt(ab_t) y + sqrt(1 - ab_t) z)         (m = 1 on the hole),
then a DDIM step (eta) goes one level down. RePaint (Lugmayr et al. 2022, arXiv:2201.09865)
harmonises hole and context by jumping back up: after every `jump_length` steps the sample is
re-noised by q(x_hi | x_lo) to where the block began and the block is denoised again, `repeats`
times in all. `jump_length=1, repeats=2` is seed 000's `dc_repeats=2`; `repeats=1` is plain DDIM+DC.

`stop_at` ends the walk early and returns the denoiser's clean estimate at that level (Tweedie's
formula; Efron 2011) instead of a finished sample. For a denoiser that sees the observation
(conditional inpainting) that estimate is E[x0 | x_t, y], which has the posterior mean E[x0 | y] as
its expectation, like a finished sample, but has already averaged over the rest of the walk: the
mean of K of them is a Rao-Blackwellised, lower-variance version of the mean of K completions. An
unconditional denoiser sees y only through the noised x_t, so its estimate leans toward the prior.
"""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from diffusion.samplers import ddim_step, noise_source, predictor, timestep_pairs
from diffusion.schedule import Schedule


def repaint_moves(n: int, jump_length: int = 1, repeats: int = 1) -> list[tuple[int, int]]:
    """Moves (i, j) between positions 0..n of the level list (0 = noisiest, n = clean): j = i + 1
    denoises one step; j = i - jump_length re-noises. Each block of jump_length steps that ends
    before n is walked `repeats` times; the last block once. Denoising steps: about n * repeats."""
    if jump_length < 1 or repeats < 1:
        raise ValueError(f"jump_length and repeats must be >= 1, got {jump_length} and {repeats}")
    moves, jumps, i = [], {}, 0
    while i < n:
        moves.append((i, i + 1))
        i += 1
        if i < n and i % jump_length == 0 and i >= jump_length and jumps.get(i, 0) < repeats - 1:
            jumps[i] = jumps.get(i, 0) + 1
            moves.append((i, i - jump_length))
            i -= jump_length
    return moves


@torch.inference_mode()
def inpaint(denoiser, sched: Schedule, y: torch.Tensor, mask: torch.Tensor, generator: torch.Generator, *,
            steps: int = 50, eta: float = 0.0, prediction: str = "eps", clip_x0: bool = True,
            spacing: str = "trailing", self_cond: bool = False, repeats: int = 1, jump_length: int = 1,
            fixed_z: bool = False, init_from_y: bool = False, stop_at: int = 0,
            progress: bool = False) -> torch.Tensor:
    """Complete y (model range, (N, C, H, W)) on mask (bool, True = hole). fixed_z noises the
    observation with one draw z for all levels instead of fresh noise each time; init_from_y starts
    from the observation noised to level T instead of pure noise; stop_at > 0 returns the clean
    estimate at the first level t <= stop_at instead. Known pixels of the result are y's exactly.
    All randomness comes from the CPU `generator`."""
    shape, device, dtype = y.shape, y.device, y.dtype
    source = noise_source(shape, generator, dtype)
    randn = lambda: source().to(device)
    predict = predictor(denoiser, shape, prediction, clip_x0, self_cond, device, dtype)
    ab = sched.alpha_bar.tolist()
    pairs = timestep_pairs(sched.T, steps, spacing)
    levels = [t for t, _ in pairs] + [0]
    z = randn() if fixed_z else None

    def observed(t: int) -> torch.Tensor:
        return ab[t] ** 0.5 * y + (1 - ab[t]) ** 0.5 * (z if fixed_z else randn())

    x = observed(levels[0]) if init_from_y else randn()
    for i, j in tqdm(repaint_moves(steps, jump_length, repeats), desc="inpaint", leave=False, disable=not progress):
        t, t_next = levels[i], levels[j]
        if j > i:
            x = torch.where(mask, x, observed(t))
            x0, eps = predict(x, t, ab[t] ** 0.5, (1 - ab[t]) ** 0.5)
            if t <= stop_at:
                return torch.where(mask, x0, y)
            noise = randn() if eta > 0 and t_next > 0 else None
            x = ddim_step(x0, eps, ab[t], ab[t_next], eta, noise)
        else:
            r = ab[t_next] / ab[t]  # q(x_hi | x_lo) = N(sqrt(r) x_lo, (1 - r) I)
            x = r ** 0.5 * x + (1 - r) ** 0.5 * randn()
    return torch.where(mask, x, y)
