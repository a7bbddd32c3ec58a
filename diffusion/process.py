"""The forward process q(x_t | x_0), prediction targets and the training loss (Ho et al. 2020)."""
from __future__ import annotations

import torch

from diffusion.schedule import Schedule


def _coef(sched: Schedule, t: torch.Tensor, like: torch.Tensor):
    """sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t) at integer levels t, broadcast to `like`."""
    ab = sched.alpha_bar.to(like.device)[t.long()]
    shape = (-1,) + (1,) * (like.dim() - 1)
    return ab.sqrt().to(like.dtype).view(shape), (1 - ab).sqrt().to(like.dtype).view(shape)


def q_sample(sched: Schedule, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps."""
    a, s = _coef(sched, t, x0)
    return a * x0 + s * noise


def target(prediction: str, x0: torch.Tensor, noise: torch.Tensor, a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """What the network is trained to output: eps, x0, or v = a eps - s x0 (Salimans & Ho 2022)."""
    if prediction == "eps":
        return noise
    if prediction == "x0":
        return x0
    if prediction == "v":
        return a * noise - s * x0
    raise ValueError(f"unknown prediction {prediction!r}; choose eps, x0 or v")


def to_x0_eps(prediction: str, out: torch.Tensor, x_t: torch.Tensor, a: torch.Tensor, s: torch.Tensor):
    """Invert `target`: from the network output at x_t = a x0 + s eps, return (x0_hat, eps_hat)."""
    if prediction == "eps":
        return (x_t - s * out) / a, out
    if prediction == "x0":
        return out, (x_t - a * out) / s
    if prediction == "v":
        return a * x_t - s * out, s * x_t + a * out
    raise ValueError(f"unknown prediction {prediction!r}; choose eps, x0 or v")


def training_loss(denoiser, sched: Schedule, x0: torch.Tensor, prediction: str = "eps",
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Simple MSE loss: t ~ U{1..T}, eps ~ N(0, I), || f(x_t, t) - target ||^2 averaged."""
    t = torch.randint(1, sched.T + 1, (x0.shape[0],), generator=generator).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device, x0.dtype)
    a, s = _coef(sched, t, x0)
    out = denoiser(a * x0 + s * noise, t.float())
    return (out.float() - target(prediction, x0, noise, a, s).float()).pow(2).mean()
