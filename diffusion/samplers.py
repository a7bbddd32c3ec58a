"""Reverse-process samplers: ancestral DDPM (Ho et al. 2020) and DDIM (Song et al. 2021, arXiv:2010.02502).

Each sampler is a pure function of (denoiser, schedule, shape, generator, options): it walks an
explicit list of (t, t_prev) pairs whose last pair lands on t = 0, and draws every random
number from the given torch.Generator (on the CPU, so a seed gives the same noise on any device).
"""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from diffusion.process import to_x0_eps
from diffusion.schedule import Schedule

SAMPLERS = ("ddim", "ddpm")


def timestep_pairs(T: int, steps: int) -> list[tuple[int, int]]:
    """`steps` evenly spaced jumps from t = T down to t = 0, e.g. T=1000, steps=4 ->
    [(1000, 750), (750, 500), (500, 250), (250, 0)]. steps = T visits every level."""
    if not 1 <= steps <= T:
        raise ValueError(f"steps must be in 1..{T}, got {steps}")
    ts = torch.linspace(T, 0, steps + 1, dtype=torch.float64).round().long().tolist()
    return list(zip(ts[:-1], ts[1:]))


def ddim_step(x0: torch.Tensor, eps: torch.Tensor, ab_t: float, ab_prev: float, eta: float,
              noise: torch.Tensor | None) -> torch.Tensor:
    """x_prev = sqrt(ab_prev) x0 + sqrt(1 - ab_prev - sigma^2) eps + sigma z, where
    sigma = eta sqrt((1 - ab_prev) / (1 - ab_t)) sqrt(1 - ab_t / ab_prev) (Song et al. eq. 12, 16).
    With eta = 1 sigma^2 is the DDPM posterior variance beta~ (Ho et al. eq. 7)."""
    sigma = eta * ((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)) ** 0.5
    x = ab_prev ** 0.5 * x0 + max(1 - ab_prev - sigma ** 2, 0.0) ** 0.5 * eps
    return x + sigma * noise if sigma > 0 else x


def ddpm_step(x0: torch.Tensor, x_t: torch.Tensor, ab_t: float, ab_prev: float, noise: torch.Tensor | None):
    """Ancestral step from the posterior q(x_prev | x_t, x0) with alpha = ab_t / ab_prev (Ho et al. eq. 6-7)."""
    alpha = ab_t / ab_prev
    beta = 1 - alpha
    mean = (ab_prev ** 0.5 * beta * x0 + alpha ** 0.5 * (1 - ab_prev) * x_t) / (1 - ab_t)
    var = beta * (1 - ab_prev) / (1 - ab_t)
    return mean + var ** 0.5 * noise if var > 0 else mean


@torch.inference_mode()
def sample(denoiser, sched: Schedule, shape, generator: torch.Generator, *, sampler: str = "ddim", steps: int = 50,
           eta: float = 0.0, prediction: str = "eps", clip_x0: bool = True, device="cpu", dtype=torch.float32,
           progress: bool = False) -> torch.Tensor:
    """Draw samples of `shape` from noise. `denoiser(x_t, t)` returns the network output for
    prediction target `prediction`; t is a float tensor of levels in 1..T."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    randn = lambda: torch.randn(shape, generator=generator, dtype=dtype).to(device)
    ab = sched.alpha_bar.tolist()
    x = randn()
    for t, t_prev in tqdm(timestep_pairs(sched.T, steps), desc="denoise", leave=False, disable=not progress):
        a, s = ab[t] ** 0.5, (1 - ab[t]) ** 0.5
        out = denoiser(x, torch.full((shape[0],), float(t), device=device)).to(dtype)
        x0, eps = to_x0_eps(prediction, out, x, a, s)
        if clip_x0:
            x0 = x0.clamp(-1, 1)
            eps = (x - a * x0) / s
        noise = randn() if t_prev > 0 and (sampler == "ddpm" or eta > 0) else None
        if sampler == "ddim":
            x = ddim_step(x0, eps, ab[t], ab[t_prev], eta, noise)
        else:
            x = ddpm_step(x0, x, ab[t], ab[t_prev], noise)
    return x
