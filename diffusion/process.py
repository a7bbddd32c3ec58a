"""The forward process q(x_t | x_0), prediction targets and the training loss (Ho et al. 2020)."""
from __future__ import annotations

import torch

from diffusion.schedule import Schedule


def _on_device(table: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """table[t] for a float64 CPU table of the levels 0..T: cast to like's dtype on the CPU first, so
    no float64 tensor reaches a device (Apple's mps has no float64), then gathered on like's device."""
    return table.to(like.dtype).to(like.device)[t.long()]


def _coef(sched: Schedule, t: torch.Tensor, like: torch.Tensor):
    """sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t) at integer levels t, broadcast to `like` (computed in
    float64, then cast)."""
    shape = (-1,) + (1,) * (like.dim() - 1)
    ab = sched.alpha_bar
    return _on_device(ab.sqrt(), t, like).view(shape), _on_device((1 - ab).sqrt(), t, like).view(shape)


def q_sample(sched: Schedule, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps."""
    a, s = _coef(sched, t, x0)
    return a * x0 + s * noise


TARGETS = ("eps", "x0", "v")


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


WEIGHTINGS = ("uniform", "min_snr", "p2")
LEVEL_SAMPLINGS = ("uniform", "lognormal")


def sample_levels(sched: Schedule, n: int, generator: torch.Generator | None = None, how: str = "uniform",
                  p_mean: float = -1.2, p_std: float = 1.2, uniform_share: float = 0.0) -> torch.Tensor:
    """n training levels t in 1..T (int64, on the CPU).

    uniform:   t ~ U{1..T} (Ho et al. 2020).
    lognormal: log sigma ~ N(p_mean, p_std^2) with sigma = sqrt((1 - alpha_bar) / alpha_bar), the
               noise-level distribution of EDM (Karras et al. 2022, arXiv:2206.00364, Table 1), mapped
               to the integer level whose log sigma is nearest, clamped to the schedule's range. It
               puts the training signal on the middle levels, where the denoiser's error shapes the
               samples, instead of spending most of it near pure noise and near clean data.
    uniform_share: that share of the n levels (each by a coin flip drawn after the lognormal draws) is
               replaced by t ~ U{1..T}. Log-normal levels alone almost never reach the noisiest levels
               (with the linear schedule, t >= 700 is log sigma more than 3 p_std above p_mean), yet the
               samplers start there: a trailing 10-step walk evaluates t = 1000, 900, 800 and 700."""
    if how == "uniform":
        return torch.randint(1, sched.T + 1, (n,), generator=generator)
    if how != "lognormal":
        raise ValueError(f"unknown level sampling {how!r}; choose one of {', '.join(LEVEL_SAMPLINGS)}")
    ab = sched.alpha_bar[1:]
    log_sigma = (0.5 * torch.log((1 - ab) / ab)).float()  # increasing in t
    z = torch.randn(n, generator=generator) * p_std + p_mean
    i = torch.searchsorted(log_sigma, z).clamp(1, sched.T - 1)  # log_sigma[i - 1] < z <= log_sigma[i]
    nearer_below = (z - log_sigma[i - 1]) < (log_sigma[i] - z)
    levels = i + 1 - nearer_below.long()  # level = index + 1
    if uniform_share > 0:
        coin = torch.rand(n, generator=generator) < uniform_share
        levels = torch.where(coin, torch.randint(1, sched.T + 1, (n,), generator=generator), levels)
    return levels


def config_levels(sched: Schedule, n: int, d, generator: torch.Generator | None = None) -> torch.Tensor:
    """sample_levels with the level sampling of a DiffusionConfig `d`."""
    return sample_levels(sched, n, generator, d.level_sampling, d.p_mean, d.p_std, d.level_uniform)


def loss_weight(weighting: str, prediction: str, snr: torch.Tensor, min_snr_gamma: float = 5.0, p2_k: float = 1.0,
                p2_gamma: float = 1.0) -> torch.Tensor:
    """Per-sample weight on the MSE of `prediction`'s target.

    Errors of the three targets are proportional: ||eps err||^2 = snr ||x0 err||^2 and
    ||v err||^2 = (snr + 1) ||x0 err||^2, so each scheme is fixed as a weight on the x0 error and
    divided by that factor, and means the same thing for every target:
      uniform: no weighting of the chosen target (the "simple" loss of Ho et al. 2020);
      min_snr: x0 weight min(snr, gamma) (Hang et al. 2023, arXiv:2303.09556), i.e. min(snr, gamma) / snr
               on eps and min(snr, gamma) / (snr + 1) on v;
      p2:      eps weight 1 / (k + snr)^gamma (Choi et al. 2022, arXiv:2204.00227), i.e. x0 weight
               snr / (k + snr)^gamma.
    """
    if weighting == "uniform":
        return torch.ones_like(snr)
    per_x0 = {"eps": snr, "v": snr + 1, "x0": torch.ones_like(snr)}[prediction]
    if weighting == "min_snr":
        w_x0 = snr.clamp(max=min_snr_gamma)
    elif weighting == "p2":
        w_x0 = snr / (p2_k + snr) ** p2_gamma
    else:
        raise ValueError(f"unknown loss weighting {weighting!r}; choose one of {', '.join(WEIGHTINGS)}")
    return w_x0 / per_x0


def training_loss(denoiser, sched: Schedule, x0: torch.Tensor, prediction: str = "eps",
                  generator: torch.Generator | None = None, weighting: str = "uniform", *, self_cond: bool = False,
                  labels: torch.Tensor | None = None, pixel_weight: torch.Tensor | None = None,
                  t: torch.Tensor | None = None, noise: torch.Tensor | None = None, **weight_args) -> torch.Tensor:
    """Weighted MSE: t ~ U{1..T} (unless given), eps ~ N(0, I), w(t) || f(x_t, t) - target ||^2 averaged, each
    pixel's squared error times `pixel_weight` if given (e.g. a hole weight for inpainting).

    self_cond (Chen et al. 2022, arXiv:2208.04202): the network also sees a clean-image estimate as
    extra channels: zeros, or for half of the batches its own estimate from a first pass without
    gradient. labels are passed on as `y` (class conditioning). `t` and `noise`, when given, are
    used instead of drawing them from `generator`."""
    if t is None:
        t = torch.randint(1, sched.T + 1, (x0.shape[0],), generator=generator).to(x0.device)
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator).to(x0.device, x0.dtype)
    a, s = _coef(sched, t, x0)
    x_t = a * x0 + s * noise
    kw = {} if labels is None else {"y": labels}
    if self_cond:
        estimate = torch.zeros_like(x_t)
        if torch.rand((), generator=generator) < 0.5:
            with torch.no_grad():
                first = denoiser(torch.cat([x_t, estimate], 1), t.float(), **kw)
                estimate = to_x0_eps(prediction, first.to(x_t.dtype), x_t, a, s)[0].clamp(-1, 1)
        x_t = torch.cat([x_t, estimate], 1)
    out = denoiser(x_t, t.float(), **kw)
    sq_err = (out.float() - target(prediction, x0, noise, a, s).float()).pow(2)
    if pixel_weight is not None:
        sq_err = sq_err * pixel_weight
    per_sample = sq_err.flatten(1).mean(1)
    if weighting != "uniform":
        ab = sched.alpha_bar[1:]  # levels 1..T: the weight of level 0 (snr = inf) is never used
        table = torch.cat([torch.zeros(1, dtype=ab.dtype), loss_weight(weighting, prediction, ab / (1 - ab),
                                                                       **weight_args)])
        per_sample = per_sample * _on_device(table, t, per_sample)
    return per_sample.mean()


def config_loss(denoiser, sched: Schedule, x0: torch.Tensor, d, generator: torch.Generator | None = None,
                labels: torch.Tensor | None = None, pixel_weight: torch.Tensor | None = None,
                t: torch.Tensor | None = None, noise: torch.Tensor | None = None):
    """training_loss with the target, weighting, level sampling and self-conditioning of a DiffusionConfig `d`."""
    if t is None:
        t = config_levels(sched, x0.shape[0], d, generator).to(x0.device)
    return training_loss(denoiser, sched, x0, d.prediction, generator, d.loss_weighting, self_cond=d.self_cond,
                         labels=labels, pixel_weight=pixel_weight, t=t, noise=noise, min_snr_gamma=d.min_snr_gamma,
                         p2_k=d.p2_k, p2_gamma=d.p2_gamma)
