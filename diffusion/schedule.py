"""Noise schedules in float64.

Convention: integer noise levels t = 0..T with alpha_bar[0] = 1 (clean data) and
alpha_bar[t] = prod_{s=1..t} (1 - beta_s). The network is trained on t = 1..T and every sampler
ends on t = 0. (diffusers indexes the same levels as t - 1.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def linear_betas(T: int, beta_start: float, beta_end: float) -> torch.Tensor:
    """Ho et al. 2020: betas linear in t, (T,)."""
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)


def cosine_alpha_bar(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal 2021 (arXiv:2102.09672): alpha_bar(t) = cos^2(((t/T + s) / (1 + s)) pi/2),
    with betas clipped at max_beta; returns alpha_bar for t = 0..T, (T + 1,)."""
    f = lambda u: math.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    betas = torch.tensor([min(1 - f(i / T) / f((i - 1) / T), max_beta) for i in range(1, T + 1)], dtype=torch.float64)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)])


def sigmoid_alpha_bar(T: int, start: float = -3.0, end: float = 3.0, tau: float = 1.0,
                      max_beta: float = 0.999) -> torch.Tensor:
    """Chen 2023 (arXiv:2301.10972, Algorithm 1): alpha_bar(u) = (s(end/tau) - s((u (end - start) + start) / tau))
    / (s(end/tau) - s(start/tau)) with s the logistic sigmoid, u = t/T; betas clipped at max_beta.
    Returns alpha_bar for t = 0..T, (T + 1,)."""
    s = lambda z: 1 / (1 + math.exp(-z))
    v_start, v_end = s(start / tau), s(end / tau)
    f = lambda u: (v_end - s((u * (end - start) + start) / tau)) / (v_end - v_start)
    betas = torch.tensor([min(1 - f(i / T) / f((i - 1) / T), max_beta) for i in range(1, T + 1)], dtype=torch.float64)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)])


def zero_terminal_snr(alpha_bar: torch.Tensor) -> torch.Tensor:
    """Lin et al. 2024 (arXiv:2305.08891, Algorithm 1): shift and scale sqrt(alpha_bar) over t = 1..T so the
    last level is pure noise (alpha_bar_T = 0) and the first keeps its value. Needs v or x0 prediction."""
    a = alpha_bar[1:].sqrt()
    a0, aT = a[0].clone(), a[-1].clone()
    a = (a - aT) * a0 / (a0 - aT)
    return torch.cat([alpha_bar[:1], a ** 2])


@dataclass(frozen=True)
class Schedule:
    """alpha_bar[t] for t = 0..T (float64). Immutable: samplers read it, nothing writes it."""

    alpha_bar: torch.Tensor

    @property
    def T(self) -> int:
        return len(self.alpha_bar) - 1

    @property
    def betas(self) -> torch.Tensor:
        """beta_t for t = 1..T, (T,)."""
        return 1 - self.alpha_bar[1:] / self.alpha_bar[:-1]


SCHEDULES = ("linear", "cosine", "sigmoid")


def make_schedule(name: str, T: int, beta_start: float = 1e-4, beta_end: float = 0.02,
                  zero_snr: bool = False) -> Schedule:
    if name == "linear":
        ab = torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - linear_betas(T, beta_start, beta_end), 0)])
    elif name == "cosine":
        ab = cosine_alpha_bar(T)
    elif name == "sigmoid":
        ab = sigmoid_alpha_bar(T)
    else:
        raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    return Schedule(zero_terminal_snr(ab) if zero_snr else ab)


def from_config(d) -> Schedule:
    """Build the schedule named by a DiffusionConfig."""
    return make_schedule(d.schedule, d.timesteps, d.beta_start, d.beta_end, d.zero_terminal_snr)
