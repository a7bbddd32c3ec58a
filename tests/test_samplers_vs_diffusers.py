"""Each sampler step against the diffusers schedulers on identical inputs (diffusers is a test-only
dependency). diffusers indexes noise levels from 0; ours are its t + 1, with 0 = clean data."""
import math

import pytest
import torch

from diffusers import (DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler,
                       HeunDiscreteScheduler)

from diffusion import samplers
from diffusion.process import to_x0_eps
from diffusion.schedule import make_schedule

T = 1000
COMMON = dict(num_train_timesteps=T, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")
PRED = {"eps": "epsilon", "v": "v_prediction", "x0": "sample"}
SCHED = make_schedule("linear", T)
AB = SCHED.alpha_bar.tolist()


def _rand(seed, shape=(4, 1, 8, 8)):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _ours(prediction, out, x, t):
    a, s = AB[t] ** 0.5, (1 - AB[t]) ** 0.5
    return to_x0_eps(prediction, out.double(), x.double(), a, s)


@pytest.mark.parametrize("spacing, theirs", [("trailing", "trailing"), ("uniform", "linspace"), ("leading", "leading")])
@pytest.mark.parametrize("steps", [7, 10, 50])
def test_spacings_match_diffusers(spacing, theirs, steps):
    d = DDIMScheduler(**COMMON, timestep_spacing=theirs)
    d.set_timesteps(steps)
    ours = [t for t, _ in samplers.timestep_pairs(T, steps, spacing)]
    assert ours == [int(t) + 1 for t in d.timesteps]


@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
@pytest.mark.parametrize("eta", [0.0, 0.7])
def test_ddim_step_matches_diffusers(prediction, eta):
    d = DDIMScheduler(**COMMON, clip_sample=False, set_alpha_to_one=True, prediction_type=PRED[prediction],
                      timestep_spacing="leading")
    d.set_timesteps(10)
    for t_d in d.timesteps.tolist():
        x, out, z = _rand(1), _rand(2), _rand(3)
        theirs = d.step(out, t_d, x, eta=eta, variance_noise=z).prev_sample
        prev = t_d - T // 10
        x0, eps = _ours(prediction, out, x, t_d + 1)
        ours = samplers.ddim_step(x0, eps, AB[t_d + 1], AB[prev + 1] if prev >= 0 else 1.0, eta, z.double())
        torch.testing.assert_close(ours.float(), theirs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
def test_ddpm_step_matches_diffusers(prediction):
    d = DDPMScheduler(**COMMON, clip_sample=False, variance_type="fixed_small", prediction_type=PRED[prediction])
    d.set_timesteps(20)
    for t_d in d.timesteps.tolist():
        x, out = _rand(4), _rand(5)
        theirs = d.step(out, t_d, x, generator=torch.Generator().manual_seed(6)).prev_sample
        prev = t_d - T // 20
        x0, _ = _ours(prediction, out, x, t_d + 1)
        z = torch.randn(x.shape, generator=torch.Generator().manual_seed(6)).double()
        ours = samplers.ddpm_step(x0, x.double(), AB[t_d + 1], AB[prev + 1] if prev >= 0 else 1.0, z)
        torch.testing.assert_close(ours.float(), theirs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_dpmpp_2m_steps_match_diffusers(prediction):
    d = DPMSolverMultistepScheduler(**COMMON, algorithm_type="dpmsolver++", solver_order=2,
                                    prediction_type=PRED[prediction], final_sigmas_type="zero")
    d.set_timesteps(8)
    levels = [int(t) + 1 for t in d.timesteps] + [0]
    x = _rand(7)
    x0_prev = h = None
    for i, t_d in enumerate(d.timesteps.tolist()):  # every step from the same input x
        out = _rand(10 + i)
        theirs = d.step(out, t_d, x).prev_sample
        x0, _ = _ours(prediction, out, x, levels[i])
        ours, h = samplers.dpmpp_2m_step(x.double(), x0, x0_prev, AB[levels[i]], AB[levels[i + 1]], h)
        x0_prev = x0
        torch.testing.assert_close(ours.float(), theirs, rtol=1e-5, atol=1e-5)
        x = theirs


def test_karras_sigmas_and_levels_match_diffusers():
    d = EulerDiscreteScheduler(**COMMON, use_karras_sigmas=True)
    d.set_timesteps(12)
    ab = d.alphas_cumprod.double()  # diffusers' float32 table, so the formula is compared, not the rounding
    sig = ((1 - ab) / ab).sqrt()
    ours = samplers.karras_sigmas(sig[0].item(), sig[-1].item(), 12)
    torch.testing.assert_close(torch.tensor(ours, dtype=torch.float64), d.sigmas.double(), rtol=1e-5, atol=1e-6)
    levels = [samplers.sigma_to_level(SCHED, s) for s in d.sigmas[:-1].tolist()]
    torch.testing.assert_close(torch.tensor(levels, dtype=torch.float64), d.timesteps.double() + 1, rtol=0, atol=2e-3)


def test_euler_step_matches_diffusers():
    d = EulerDiscreteScheduler(**COMMON, use_karras_sigmas=True)
    d.set_timesteps(10)
    x = _rand(20) * d.init_noise_sigma
    for i, t_d in enumerate(d.timesteps):
        eps = _rand(30 + i)
        sigma, sigma_next = d.sigmas[i].item(), d.sigmas[i + 1].item()
        theirs = d.step(eps, t_d, x).prev_sample
        torch.testing.assert_close(samplers.euler_step(x.double(), eps.double(), sigma, sigma_next).float(), theirs,
                                   rtol=1e-5, atol=1e-5)
        x = theirs


def test_heun_step_matches_diffusers():
    """diffusers splits a Heun step into two calls (Euler predictor, then trapezoid corrector)."""
    d = HeunDiscreteScheduler(**COMMON, use_karras_sigmas=True)
    d.set_timesteps(6)
    x = _rand(40) * 10.0
    sigmas = d.sigmas.tolist()  # sigma_0, then each inner sigma twice, then 0
    sigma, sigma_next = sigmas[0], sigmas[1]
    eps1, eps2 = _rand(41), _rand(42)
    x_euler = d.step(eps1, d.timesteps[0], x).prev_sample
    theirs = d.step(eps2, d.timesteps[1], x_euler).prev_sample
    ours_euler = samplers.euler_step(x.double(), eps1.double(), sigma, sigma_next)
    torch.testing.assert_close(ours_euler.float(), x_euler, rtol=1e-5, atol=1e-5)
    ours = samplers.euler_step(x.double(), (eps1.double() + eps2.double()) / 2, sigma, sigma_next)
    torch.testing.assert_close(ours.float(), theirs, rtol=1e-5, atol=1e-5)
    assert math.isclose(samplers.sigma_to_level(SCHED, sigma_next), d.timesteps[1].item() + 1, abs_tol=2e-3)


@pytest.mark.parametrize("steps", [1000, 37])
def test_discrete_euler_sigmas_match_diffusers(steps):
    """sigmas="discrete" with uniform spacing is EulerDiscreteScheduler's default ("linspace",
    linear interpolation): the same sigmas at the same (possibly fractional) levels."""
    d = EulerDiscreteScheduler(**COMMON)
    d.set_timesteps(steps)
    pairs = samplers.sigma_levels(SCHED, steps, "discrete", "uniform")
    torch.testing.assert_close(torch.tensor([s for s, _ in pairs]), d.sigmas, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.tensor([t for _, t in pairs[:-1]], dtype=torch.float64),
                               d.timesteps.double() + 1, rtol=0, atol=1e-3)


@pytest.mark.parametrize("steps", [50, 37])
def test_discrete_euler_sampling_matches_the_diffusers_loop(steps):
    """The whole seed-004 loop (scale_model_input, model, step) against samplers.sample on a fixed
    eps-denoiser, from the same initial noise."""
    f = lambda x, t: torch.tanh(x) * torch.as_tensor(t).reshape(-1, 1) / T + 0.1 * x  # smooth in (input, level)
    d = EulerDiscreteScheduler(**COMMON)
    d.set_timesteps(steps)
    shape = (64, 2)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)) * d.init_noise_sigma
    for t_d in d.timesteps:
        x = d.step(f(d.scale_model_input(x, t_d), t_d + 1), t_d, x).prev_sample
    ours = samplers.sample(f, SCHED, shape, torch.Generator().manual_seed(0), sampler="euler", steps=steps,
                           sigmas="discrete", spacing="uniform", clip_x0=False)
    torch.testing.assert_close(ours, x, rtol=1e-4, atol=1e-4)
