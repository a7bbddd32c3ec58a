import math

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

from diffusion import samplers
from diffusion.process import config_loss, q_sample, sample_levels, target, to_x0_eps, training_loss
from diffusion.samplers import SAMPLERS, sample
from diffusion.schedule import make_schedule
from engine.config import DiffusionConfig


def test_linear_schedule_closed_form():
    s = make_schedule("linear", 1000, 1e-4, 0.02)
    betas = np.linspace(1e-4, 0.02, 1000)
    assert s.alpha_bar.dtype == torch.float64 and s.T == 1000 and s.alpha_bar[0] == 1
    np.testing.assert_allclose(s.alpha_bar[1:].numpy(), np.cumprod(1 - betas), rtol=1e-12)
    np.testing.assert_allclose(s.betas.numpy(), betas, rtol=1e-9)


def test_cosine_schedule_closed_form():
    T, eps = 1000, 0.008
    s = make_schedule("cosine", T)
    f = lambda t: math.cos((t / T + eps) / (1 + eps) * math.pi / 2) ** 2
    for t in (0, 1, 10, 500, 900, 990):  # the 0.999 beta clip only acts at the very last steps
        assert s.alpha_bar[t].item() == pytest.approx(f(t) / f(0), rel=1e-10)
    assert s.betas.max() <= 0.999 and (s.betas > 0).all()


def test_q_sample_mean_and_variance():
    s = make_schedule("linear", 1000)
    g = torch.Generator().manual_seed(0)
    n, t = 200_000, 300
    x0 = torch.full((n, 1), 0.5, dtype=torch.float64)
    xt = q_sample(s, x0, torch.full((n,), t), torch.randn(n, 1, generator=g, dtype=torch.float64))
    ab = s.alpha_bar[t].item()
    assert xt.mean().item() == pytest.approx(math.sqrt(ab) * 0.5, abs=4 * math.sqrt((1 - ab) / n))
    assert xt.var().item() == pytest.approx(1 - ab, rel=0.01)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_targets_round_trip(prediction):
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(64, generator=g, dtype=torch.float64), torch.randn(64, generator=g, dtype=torch.float64)
    ab = torch.rand(64, generator=g, dtype=torch.float64) * 0.98 + 0.01
    a, s = ab.sqrt(), (1 - ab).sqrt()
    x0_hat, eps_hat = to_x0_eps(prediction, target(prediction, x0, eps, a, s), a * x0 + s * eps, a, s)
    torch.testing.assert_close(x0_hat, x0, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(eps_hat, eps, rtol=1e-12, atol=1e-12)


def test_timestep_pairs():
    assert samplers.timestep_pairs(1000, 4) == [(1000, 750), (750, 500), (500, 250), (250, 0)]
    full = samplers.timestep_pairs(10, 10)
    assert full == [(t, t - 1) for t in range(10, 0, -1)]
    for steps in (1, 3, 7, 50):
        pairs = samplers.timestep_pairs(1000, steps)
        assert len(pairs) == steps and pairs[0][0] == 1000 and pairs[-1][1] == 0
        assert all(a > b for a, b in pairs) and all(p[1] == q[0] for p, q in zip(pairs, pairs[1:]))
    with pytest.raises(ValueError):
        samplers.timestep_pairs(10, 11)


def test_ddim_eta_one_uses_the_ddpm_posterior_variance():
    s = make_schedule("linear", 1000)
    ab, betas = s.alpha_bar, s.betas
    for t, t_prev in samplers.timestep_pairs(1000, 1000):
        posterior_var = (betas[t - 1] * (1 - ab[t_prev]) / (1 - ab[t])).item()
        sigma = samplers.ddim_step(torch.zeros(1), torch.zeros(1), ab[t].item(), ab[t_prev].item(), 1.0,
                                   torch.ones(1)).item()
        assert sigma ** 2 == pytest.approx(posterior_var, rel=1e-5, abs=1e-12)


def _alpha_bar_at(sched, t):
    """alpha_bar at fractional levels, interpolating log sigma linearly between integer levels."""
    ab = sched.alpha_bar[1:]
    log_sig = torch.from_numpy(np.interp(t.double().numpy(), np.arange(1, sched.T + 1),
                                         (0.5 * ((1 - ab) / ab).log()).numpy()))
    return 1 / (1 + (2 * log_sig).exp())


def _gaussian_denoiser(sched, mu, sd, prediction="eps"):
    """The exact network for data x0 ~ N(mu, sd^2): E[x0 | x_t] expressed as `prediction`."""
    def denoiser(x, t):
        ab = _alpha_bar_at(sched, t.cpu()).view(-1, *[1] * (x.dim() - 1)).to(x.dtype)
        a, s = ab.sqrt(), (1 - ab).sqrt()
        x0 = mu + a * sd ** 2 * (x - a * mu) / (ab * sd ** 2 + s ** 2)
        return target(prediction, x0, (x - a * x0) / s, a, s)
    return denoiser


def test_ddim_eta_one_equals_ddpm_step_for_step():
    s = make_schedule("linear", 100)
    den = _gaussian_denoiser(s, 0.3, 0.5)
    kw = dict(steps=100, clip_x0=False, dtype=torch.float64)
    a = samplers.sample(den, s, (500, 1), torch.Generator().manual_seed(3), sampler="ddim", eta=1.0, **kw)
    b = samplers.sample(den, s, (500, 1), torch.Generator().manual_seed(3), sampler="ddpm", **kw)
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_ddim_eta_zero_is_deterministic_for_a_seed():
    s = make_schedule("linear", 100)
    den = _gaussian_denoiser(s, 0.0, 0.5)
    draw = lambda seed: samplers.sample(den, s, (8, 1, 4, 4), torch.Generator().manual_seed(seed), steps=10)
    assert torch.equal(draw(5), draw(5))
    assert not torch.equal(draw(5), draw(6))


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
@pytest.mark.parametrize("sampler, steps, eta, sigmas", [
    ("ddpm", 1000, 0.0, "karras"), ("ddim", 200, 0.0, "karras"), ("ddim", 200, 1.0, "karras"),
    ("dpmpp_2m", 20, 0.0, "karras"), ("euler", 100, 0.0, "karras"), ("heun", 50, 0.0, "karras"),
    ("euler", 1000, 0.0, "discrete"), ("heun", 100, 0.0, "discrete")])
def test_samplers_recover_a_gaussian_with_the_exact_denoiser(sampler, steps, eta, sigmas, prediction):
    mu, sd = 0.3, 0.5
    s = make_schedule("linear", 1000)
    x = samplers.sample(_gaussian_denoiser(s, mu, sd, prediction), s, (20_000, 1), torch.Generator().manual_seed(0),
                        sampler=sampler, steps=steps, eta=eta, prediction=prediction, clip_x0=False,
                        sigmas=sigmas, spacing="uniform" if sigmas == "discrete" else "trailing", dtype=torch.float64)
    assert x.mean().item() == pytest.approx(mu, abs=0.02)
    assert x.std().item() == pytest.approx(sd, rel=0.04)


@pytest.mark.parametrize("sampler", samplers.SAMPLERS)
def test_evaluations_count_the_network_calls_and_steps_for_fills_a_budget(sampler):
    s = make_schedule("linear", 100)
    denoiser = _gaussian_denoiser(s, 0.0, 1.0)
    for steps in (1, 2, 7):
        calls = []
        counted = lambda x, t: calls.append(1) or denoiser(x, t)
        samplers.sample(counted, s, (3, 1), torch.Generator().manual_seed(0), sampler=sampler, steps=steps, eta=1.0)
        assert len(calls) == samplers.evaluations(sampler, steps)
    for budget in (1, 5, 10, 99, 100):
        steps = samplers.steps_for(sampler, budget)
        assert samplers.evaluations(sampler, steps) <= max(budget, 1) < samplers.evaluations(sampler, steps + 1)


def test_dpmpp_2m_with_zero_terminal_snr_and_v():
    mu, sd = -0.2, 0.6
    s = make_schedule("cosine", 1000, zero_snr=True)
    x = samplers.sample(_gaussian_denoiser(s, mu, sd, "v"), s, (20_000, 1), torch.Generator().manual_seed(1),
                        sampler="dpmpp_2m", steps=25, prediction="v", clip_x0=False, dtype=torch.float64)
    assert x.mean().item() == pytest.approx(mu, abs=0.02) and x.std().item() == pytest.approx(sd, rel=0.04)
    with pytest.raises(ValueError, match="zero_terminal_snr"):
        samplers.sample(_gaussian_denoiser(s, mu, sd, "v"), s, (2, 1), torch.Generator(), sampler="euler", steps=5,
                        prediction="v")


def test_training_loss_of_the_exact_denoiser_is_the_irreducible_error():
    """For Gaussian data the optimal eps-MSE is known: E_t[ ab sd^2 / (ab sd^2 + 1 - ab) ] per pixel."""
    mu, sd = 0.0, 0.5
    s = make_schedule("linear", 1000)
    g = torch.Generator().manual_seed(0)
    x0 = mu + sd * torch.randn(100_000, 1, generator=g, dtype=torch.float64)
    loss = training_loss(_gaussian_denoiser(s, mu, sd), s, x0, generator=g).item()
    ab = s.alpha_bar[1:]
    expected = (ab * sd ** 2 / (ab * sd ** 2 + 1 - ab)).mean().item()
    assert loss == pytest.approx(expected, rel=0.03)


def test_sigmoid_schedule_closed_form():
    T, start, end, tau = 1000, -3.0, 3.0, 1.0
    s = make_schedule("sigmoid", T)
    sig = lambda z: 1 / (1 + math.exp(-z))
    f = lambda u: (sig(end / tau) - sig((u * (end - start) + start) / tau)) / (sig(end / tau) - sig(start / tau))
    for t in (0, 1, 100, 500, 900):
        assert s.alpha_bar[t].item() == pytest.approx(f(t / T), rel=1e-10)
    assert (s.betas > 0).all() and s.betas.max() <= 0.999


@pytest.mark.parametrize("name", ["linear", "cosine", "sigmoid"])
def test_zero_terminal_snr(name):
    base, zsnr = make_schedule(name, 1000), make_schedule(name, 1000, zero_snr=True)
    assert zsnr.alpha_bar[-1].item() == 0.0 and zsnr.alpha_bar[0].item() == 1.0
    assert zsnr.alpha_bar[1].item() == pytest.approx(base.alpha_bar[1].item(), rel=1e-12)
    assert (zsnr.alpha_bar[1:] <= base.alpha_bar[1:] + 1e-15).all()
    # sqrt(alpha_bar) is an affine map of the original on t = 1..T
    a, b = base.alpha_bar[1:].sqrt(), zsnr.alpha_bar[1:].sqrt()
    slope = (b[0] - b[-1]) / (a[0] - a[-1])
    torch.testing.assert_close(b, b[-1] + slope * (a - a[-1]), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
def test_loss_weights_match_their_formulas(prediction):
    from diffusion.process import loss_weight

    snr = torch.tensor([0.01, 0.5, 1.0, 5.0, 20.0], dtype=torch.float64)
    per_x0 = {"eps": snr, "v": snr + 1, "x0": torch.ones_like(snr)}[prediction]
    assert torch.equal(loss_weight("uniform", prediction, snr), torch.ones_like(snr))
    torch.testing.assert_close(loss_weight("min_snr", prediction, snr, min_snr_gamma=5.0),
                               torch.minimum(snr, torch.tensor(5.0, dtype=torch.float64)) / per_x0)
    torch.testing.assert_close(loss_weight("p2", prediction, snr, p2_k=1.0, p2_gamma=0.5),
                               snr / (1 + snr) ** 0.5 / per_x0)
    if prediction == "eps":  # the published forms on the eps loss
        torch.testing.assert_close(loss_weight("min_snr", "eps", snr), torch.clamp(5.0 / snr, max=1.0))
        torch.testing.assert_close(loss_weight("p2", "eps", snr, p2_k=1.0, p2_gamma=1.0), 1 / (1 + snr))


def test_weighted_losses_agree_across_targets():
    """The same imperfect denoiser scores the same weighted x0 error whatever target it is expressed in."""
    s = make_schedule("linear", 1000)
    x0 = torch.randn(256, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    den = _gaussian_denoiser(s, 0.0, 0.7)  # wrong data variance: a real, non-zero error

    def as_target(prediction):
        def f(x, t):
            ab = s.alpha_bar[t.long()].view(-1, 1, 1, 1)
            a, sd = ab.sqrt(), (1 - ab).sqrt()
            eps = den(x, t)
            x0_hat = (x - sd * eps) / a
            return target(prediction, x0_hat, eps, a, sd)
        return f

    losses = {p: training_loss(as_target(p), s, x0, p, torch.Generator().manual_seed(1), "min_snr").item()
              for p in ("eps", "v", "x0")}
    assert losses["eps"] == pytest.approx(losses["v"], rel=1e-6) and losses["eps"] == pytest.approx(losses["x0"], rel=1e-6)


def test_lognormal_levels_have_edm_log_sigma_distribution():
    """log sigma of the drawn levels ~ N(p_mean, p_std^2), up to rounding to the nearest level."""
    s = make_schedule("linear", 1000)
    t = sample_levels(s, 200_000, torch.Generator().manual_seed(0), "lognormal", p_mean=-0.5, p_std=0.8)
    assert t.min() >= 1 and t.max() <= 1000 and t.dtype == torch.int64
    ab = s.alpha_bar[t]
    log_sigma = 0.5 * torch.log((1 - ab) / ab)
    assert log_sigma.mean().item() == pytest.approx(-0.5, abs=0.01)
    assert log_sigma.std().item() == pytest.approx(0.8, abs=0.01)
    # the nearest level: no level is closer in log sigma than the one drawn (checked on a few)
    all_log = 0.5 * torch.log((1 - s.alpha_bar[1:]) / s.alpha_bar[1:])
    z = torch.randn(5, generator=torch.Generator().manual_seed(1)) * 0.8 - 0.5
    got = sample_levels(s, 5, torch.Generator().manual_seed(1), "lognormal", p_mean=-0.5, p_std=0.8)
    assert torch.equal(got, (all_log[None, :] - z[:, None].double()).abs().argmin(1) + 1)


def test_uniform_levels_are_the_ddpm_draw():
    s = make_schedule("linear", 100)
    got = sample_levels(s, 1000, torch.Generator().manual_seed(3))
    assert torch.equal(got, torch.randint(1, 101, (1000,), generator=torch.Generator().manual_seed(3)))


class _Float64StaysOnTheCPU(TorchFunctionMode):
    """A stand-in for a float32-only device (Apple's mps): fails on any float64 tensor moved with a
    device argument (`.to(device)`, `.to(device, torch.float64)`), which on such a device would fail."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        names_device = any(isinstance(a, (torch.device, str)) for a in args[1:]) or "device" in kwargs
        if func is torch.Tensor.to and names_device and isinstance(out, torch.Tensor) and out.dtype == torch.float64:
            raise AssertionError(f"a float64 tensor was moved to a device: .to{args[1:]} {kwargs}")
        return out


def _float32_only(x, t, *rest, **kw):
    assert x.dtype == torch.float32 and t.dtype == torch.float32, (x.dtype, t.dtype)
    return 0.5 * x[:, :1]


@pytest.mark.parametrize("weighting", ["uniform", "min_snr", "p2"])
def test_no_float64_reaches_the_network_or_a_device(weighting):
    sched = make_schedule("linear", 100)
    d = DiffusionConfig(prediction="v", level_sampling="lognormal", level_uniform=0.5, self_cond=True,
                        loss_weighting=weighting)
    x0 = torch.rand(4, 1, 8, 8) * 2 - 1
    g = torch.Generator().manual_seed(0)
    with _Float64StaysOnTheCPU():
        loss = config_loss(_float32_only, sched, x0, d, g)
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        for sampler in SAMPLERS:
            x = sample(_float32_only, sched, (2, 1, 8, 8), g, sampler=sampler, steps=3, prediction="v", self_cond=True)
            assert x.dtype == torch.float32
    with pytest.raises(AssertionError, match="float64 tensor was moved"), _Float64StaysOnTheCPU():
        sched.alpha_bar.to("cpu")  # the stand-in itself: what the old _coef did
