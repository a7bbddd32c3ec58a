"""Reverse-process samplers, each a pure function of (denoiser, schedule, shape, generator, options).

- ddpm: ancestral sampling from the posterior q(x_prev | x_t, x0) (Ho et al. 2020, arXiv:2006.11239)
- ddim: DDIM with noise scale eta (Song et al. 2021, arXiv:2010.02502)
- dpmpp_2m: DPM-Solver++(2M), multistep data-prediction solver (Lu et al. 2022, arXiv:2211.01095)
- euler, heun: first/second-order ODE steps (Karras et al. 2022, arXiv:2206.00364) on the Karras sigma
  schedule, or (sigmas="discrete") on the sigmas of the training levels picked by the spacing, as
  diffusers' EulerDiscreteScheduler does by default (the two-moons seed's sampler)

ddpm, ddim and dpmpp_2m walk an explicit list of (t, t_prev) level pairs whose last pair lands on
t = 0 (clean data); euler and heun walk sigmas from sigma_max down to 0 and query the network at
the fractional level whose sigma matches. All random numbers come from the given CPU generator, or
with a list of generators, row i of every draw from generator i (per-sample seeds: a sample then
does not depend on the batch it is drawn in).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from tqdm.auto import tqdm

from diffusion.process import to_x0_eps
from diffusion.schedule import Schedule

SAMPLERS = ("ddim", "ddpm", "dpmpp_2m", "euler", "heun")
SPACINGS = ("trailing", "uniform", "leading")
SIGMAS = ("karras", "discrete")


def evaluations(sampler: str, steps: int) -> int:
    """Network evaluations of one sample: one per step, except Heun's two (Karras et al. 2022,
    Alg. 1), whose last step to sigma = 0 takes one."""
    return 2 * steps - 1 if sampler == "heun" else steps


def steps_for(sampler: str, nfe: int) -> int:
    """The most steps whose evaluations stay within a budget of `nfe` (at least one step)."""
    return max(1, (nfe + 1) // 2 if sampler == "heun" else nfe)


PER_SAMPLE_BLOCK = 32  # per-sample generators draw this many steps' noise at a time


def noise_source(shape, generator, dtype=torch.float32):
    """`draw() -> (shape) standard normal noise`: from one CPU generator, or (a list of shape[0]
    generators) row i from generator i. Each per-sample generator draws PER_SAMPLE_BLOCK draws at
    once (one call instead of one per step), so sample i's stream depends on its generator alone."""
    if isinstance(generator, torch.Generator):
        return lambda: torch.randn(shape, generator=generator, dtype=dtype)
    if len(generator) != shape[0]:
        raise ValueError(f"{len(generator)} generators for a batch of {shape[0]}")
    block: list[torch.Tensor] = []

    def draw():
        if not block:
            rows = [torch.randn((PER_SAMPLE_BLOCK, *shape[1:]), generator=g, dtype=dtype) for g in generator]
            block.extend(torch.stack(rows, 1).unbind(0)[::-1])
        return block.pop()
    return draw


def timestep_pairs(T: int, steps: int, spacing: str = "trailing") -> list[tuple[int, int]]:
    """`steps` jumps from high noise to t = 0. In diffusers' terms (its t = ours - 1):
    trailing: T, T - T/S, ..., T/S (diffusers "trailing"; always starts at pure-as-can-be noise t = T)
    uniform:  S levels evenly spaced from T down to 1 (diffusers "linspace")
    leading:  1 + k(S-1), ..., 1 + k, 1 with k = T // S (diffusers "leading"; never visits t = T)."""
    if not 1 <= steps <= T:
        raise ValueError(f"steps must be in 1..{T}, got {steps}")
    if spacing == "trailing":
        levels = np.round(T - np.arange(steps) * (T / steps)).astype(int)
    elif spacing == "uniform":
        levels = np.linspace(0, T - 1, steps).round()[::-1].astype(int) + 1
    elif spacing == "leading":
        levels = np.arange(steps)[::-1] * (T // steps) + 1
    else:
        raise ValueError(f"unknown spacing {spacing!r}; choose one of {', '.join(SPACINGS)}")
    ts = [int(t) for t in levels] + [0]
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


def _lam(ab: float) -> float:
    """log-SNR / 2 = log(alpha / sigma); -inf at ab = 0, +inf at ab = 1."""
    if ab <= 0:
        return -math.inf
    if ab >= 1:
        return math.inf
    return 0.5 * math.log(ab / (1 - ab))


def dpmpp_2m_step(x: torch.Tensor, x0: torch.Tensor, x0_prev: torch.Tensor | None, ab_t: float, ab_prev: float,
                  h_last: float | None):
    """One DPM-Solver++(2M) step (Lu et al. 2022, Algorithm 2) from level t to t_prev; returns
    (x_prev, h). x0_prev/h_last are the previous step's data prediction and step size (None on the
    first step: first order). The last step (to t = 0) is first order and returns x0."""
    if ab_prev >= 1:
        return x0, None
    h = _lam(ab_prev) - _lam(ab_t)
    d = x0 if x0_prev is None else x0 + (x0 - x0_prev) * (h / (2 * h_last))
    s_ratio = ((1 - ab_prev) / (1 - ab_t)) ** 0.5
    return s_ratio * x - ab_prev ** 0.5 * math.expm1(-h) * d, h


def karras_sigmas(sigma_min: float, sigma_max: float, steps: int, rho: float = 7.0) -> list[float]:
    """sigma_i = (max^(1/rho) + i/(S-1) (min^(1/rho) - max^(1/rho)))^rho, i = 0..S-1, then 0 (Karras eq. 5)."""
    ramp = np.linspace(0, 1, steps)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return [float(s) for s in (hi + ramp * (lo - hi)) ** rho] + [0.0]


def discrete_levels(T: int, steps: int, spacing: str) -> list[float]:
    """The levels euler/heun visit with sigmas="discrete": `uniform` is diffusers' "linspace" without
    rounding, S levels evenly spaced in [1, T] (fractional when S does not divide T - 1); trailing and
    leading are the integer levels of timestep_pairs."""
    if spacing == "uniform":
        if not 1 <= steps <= T:
            raise ValueError(f"steps must be in 1..{T}, got {steps}")
        return [float(t) for t in np.linspace(1, T, steps)[::-1]]
    return [float(t) for t, _ in timestep_pairs(T, steps, spacing)]


def sigma_to_level(sched: Schedule, sigma: float) -> float:
    """Fractional level t in [1, T] whose sigma = sqrt((1 - ab) / ab) is `sigma`, interpolating
    linearly in log sigma between integer levels (as diffusers' _sigma_to_t does)."""
    ab = sched.alpha_bar[1:].numpy()
    log_sigmas = 0.5 * np.log((1 - ab) / ab)
    return float(np.interp(math.log(max(sigma, 1e-10)), log_sigmas, np.arange(1, sched.T + 1)))


def euler_step(x_ve: torch.Tensor, eps: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    """x~_next = x~ + (sigma_next - sigma) d with d = (x~ - x0) / sigma = eps, in the variance-exploding
    variable x~ = x_t / sqrt(alpha_bar) (Karras et al. Algorithm 1 without churn)."""
    return x_ve + (sigma_next - sigma) * eps


def predictor(denoiser, shape, prediction: str, clip_x0: bool, self_cond: bool, device, dtype=torch.float32):
    """`predict(x_t, t, a, s) -> (x0_hat, eps_hat)` for x_t = a x0 + s eps at (fractional) level t:
    calls the denoiser, converts its target, optionally clamps x0 to [-1, 1] (and recomputes eps to
    match), and with self_cond feeds the last x0 estimate back as extra input channels."""
    estimate = torch.zeros(shape, dtype=dtype, device=device) if self_cond else None

    def predict(x, t: float, a: float, s: float):
        nonlocal estimate
        x_in = torch.cat([x, estimate], 1) if self_cond else x
        out = denoiser(x_in, torch.full((shape[0],), float(t), device=device)).to(dtype)
        x0, eps = to_x0_eps(prediction, out, x, a, s)
        if clip_x0:
            x0 = x0.clamp(-1, 1)
            eps = (x - a * x0) / s
        if self_cond:
            estimate = x0.clamp(-1, 1)
        return x0, eps
    return predict


@torch.inference_mode()
def sample(denoiser, sched: Schedule, shape, generator: torch.Generator | list[torch.Generator], *, sampler: str = "ddim", steps: int = 50,
           eta: float = 0.0, prediction: str = "eps", clip_x0: bool = True, spacing: str = "trailing",
           self_cond: bool = False, sigmas: str = "karras", device="cpu", dtype=torch.float32, progress: bool = False,
           callback=None) -> torch.Tensor:
    """Draw samples of `shape` from noise. `denoiser(x_t, t)` returns the network output for
    prediction target `prediction`; t is a float tensor of levels in [1, T]. With self_cond the
    denoiser gets [x_t, previous x0 estimate] stacked on dim 1 (zeros at the first call).
    `sigmas` picks the euler/heun noise levels (see discrete_levels). `callback(level, x_t)`, if
    given, sees the start and the state after each step (x_t = a x0 + s eps at that level)."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if sigmas not in SIGMAS:
        raise ValueError(f"unknown sigmas {sigmas!r}; choose one of {', '.join(SIGMAS)}")
    source = noise_source(shape, generator, dtype)
    draw = lambda: source().to(device)
    predict = predictor(denoiser, shape, prediction, clip_x0, self_cond, device, dtype)
    callback = callback or (lambda level, x: None)
    if sampler in ("euler", "heun"):
        return _sample_karras(predict, sched, draw, sampler, steps, sigmas, spacing, progress, callback)

    ab = sched.alpha_bar.tolist()
    pairs = timestep_pairs(sched.T, steps, spacing)
    x = draw()
    callback(float(pairs[0][0]), x)
    x0_prev = h_last = None
    for t, t_prev in tqdm(pairs, desc=sampler, leave=False, disable=not progress):
        x0, eps = predict(x, t, ab[t] ** 0.5, (1 - ab[t]) ** 0.5)
        if sampler == "dpmpp_2m":
            x, h_last = dpmpp_2m_step(x, x0, x0_prev, ab[t], ab[t_prev], h_last)
            x0_prev = x0
        else:
            noise = draw() if t_prev > 0 and (sampler == "ddpm" or eta > 0) else None
            if sampler == "ddim":
                x = ddim_step(x0, eps, ab[t], ab[t_prev], eta, noise)
            else:
                x = ddpm_step(x0, x, ab[t], ab[t_prev], noise)
        callback(float(t_prev), x)
    return x


def sigma_levels(sched: Schedule, steps: int, sigmas: str, spacing: str) -> list[tuple[float, float]]:
    """(sigma, level) pairs from sigma_max down to (0, 0) for euler/heun: Karras sigmas with the
    levels that match them, or the sigmas of discrete_levels (interpolated linearly in the level,
    as diffusers' interpolation_type="linear")."""
    ab = sched.alpha_bar[1:]
    sig = ((1 - ab) / ab).sqrt().numpy()
    if sigmas == "karras":
        pairs = [(s, sigma_to_level(sched, s)) for s in karras_sigmas(float(sig[0]), float(sig[-1]), steps)[:-1]]
    else:
        levels = discrete_levels(sched.T, steps, spacing)
        pairs = [(float(np.interp(t, np.arange(1, sched.T + 1), sig)), t) for t in levels]
    return pairs + [(0.0, 0.0)]


def _sample_karras(predict, sched: Schedule, draw, sampler: str, steps: int, sigmas: str, spacing: str,
                   progress: bool, callback) -> torch.Tensor:
    if sched.alpha_bar[-1] <= 0:
        raise ValueError(f"{sampler} needs a finite sigma_max; with zero_terminal_snr use ddim, ddpm or dpmpp_2m")
    pairs = sigma_levels(sched, steps, sigmas, spacing)
    scale = lambda sigma: 1 / math.sqrt(1 + sigma ** 2)  # x_t = x~ / sqrt(1 + sigma^2)

    def eps_at(x_ve, sigma, level):
        a = scale(sigma)
        return predict(x_ve * a, level, a, sigma * a)

    x = draw() / scale(pairs[0][0])
    callback(pairs[0][1], x * scale(pairs[0][0]))
    for (sigma, level), (sigma_next, level_next) in tqdm(list(zip(pairs[:-1], pairs[1:])), desc=sampler, leave=False,
                                                         disable=not progress):
        x0, eps = eps_at(x, sigma, level)
        if sigma_next == 0:
            x = x0  # the Euler step to sigma = 0 lands exactly on the data estimate
        elif sampler == "euler":
            x = euler_step(x, eps, sigma, sigma_next)
        else:
            x_euler = euler_step(x, eps, sigma, sigma_next)
            _, eps_next = eps_at(x_euler, sigma_next, level_next)
            x = euler_step(x, (eps + eps_next) / 2, sigma, sigma_next)
        callback(level_next, x * scale(sigma_next))
    return x
