"""Masks, hole metrics, the inpainting sampler and the inpainting tasks' losses."""
import functools

import numpy as np
import pytest
import torch

from dataio import masks
from dataio.mnist import to_model_range, to_uint8
from diffusion.inpaint import inpaint, repaint_moves
from diffusion.schedule import from_config
from engine import config
from tasks import completion, for_config
from common.errors import UserError
from metrics import inpainting as im
from tasks import build_network
from tests.conftest import TINY


def test_center_masks_are_the_course_and_seed_boxes():
    m8 = masks.make("center8", 2)
    ref = torch.zeros(2, 1, 28, 28, dtype=torch.bool)
    ref[..., 10:18, 10:18] = True  # the course: image[10:18, 10:18] = 0
    assert torch.equal(m8, ref)
    assert torch.equal(masks.make("center", 2, size=8), ref)
    m12 = masks.make("center12", 1)[0, 0]
    assert m12.sum() == 144 and m12[8:20, 8:20].all()


def test_random_masks_have_the_right_pixels():
    g = torch.Generator().manual_seed(0)
    box = masks.make("box", 50, size=6, generator=g)
    for m in box[:, 0]:
        rows, cols = m.any(1).nonzero().flatten(), m.any(0).nonzero().flatten()
        assert m.sum() == 36 and len(rows) == 6 and len(cols) == 6 and rows[-1] - rows[0] == 5
    half = masks.make("half", 40, generator=g)[:, 0]
    assert (half.flatten(1).sum(1) == 392).all()
    sides = {(bool(m[0].all()), bool(m[-1].all()), bool(m[:, 0].all()), bool(m[:, -1].all())) for m in half}
    assert len(sides) == 4, "top, bottom, left and right halves all occur"
    pix = masks.make("pixels", 200, fraction=0.3, generator=g)
    assert abs(pix.float().mean().item() - 0.3) < 0.01
    assert torch.equal(masks.make("box", 5, size=6, generator=torch.Generator().manual_seed(3)),
                       masks.make("box", 5, size=6, generator=torch.Generator().manual_seed(3)))


@pytest.mark.parametrize("kind,size,fraction,word", [("center", 0, 0.5, "no hole"), ("box", 28, 0.5, "no context"),
                                                     ("pixels", 8, 1.0, "no context"), ("pixels", 8, 0.0, "no hole"),
                                                     ("ring", 8, 0.5, "center, box")])
def test_masks_without_hole_or_context_are_refused(kind, size, fraction, word):
    with pytest.raises(UserError, match=word):
        masks.make(kind, 1, size=size, fraction=fraction)


def test_apply_and_paste():
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    m = masks.make("center8", 2)
    y = masks.apply(x, m)
    assert (y[m] == -1).all() and torch.equal(y[~m], x[~m])
    assert torch.equal(masks.paste(x, torch.zeros_like(x), m)[m], torch.zeros(int(m.sum())))


def test_hole_metrics_match_hand_computed_values():
    target = torch.zeros(1, 1, 28, 28, dtype=torch.float64)
    pred = target.clone()
    mask = masks.make("center", 1, size=2)  # rows/cols 13:15
    pred[0, 0, 13, 13], pred[0, 0, 13, 14] = 0.5, -0.25  # two hole pixels wrong
    pred[0, 0, 0, 0] = 1.0  # a context pixel wrong: only the whole-image metrics see it
    v = im.per_image(pred, target, mask)
    assert v["hole_mse"].item() == pytest.approx((0.25 + 0.0625) / 4)
    assert v["hole_l1"].item() == pytest.approx(0.75 / 4)
    assert v["hole_psnr"].item() == pytest.approx(10 * np.log10(4 / 0.3125))
    assert v["whole_mse"].item() == pytest.approx((0.25 + 0.0625 + 1) / 784)
    assert v["whole_l1"].item() == pytest.approx(1.75 / 784)
    same = im.per_image(target, target, mask)
    assert same["hole_mse"].item() == 0 and same["hole_psnr"].item() == pytest.approx(100)
    assert same["hole_ssim"].item() == pytest.approx(1) and same["whole_ssim"].item() == pytest.approx(1)
    s = im.summarize({k: torch.cat([v[k], same[k]]) for k in v})
    assert s["hole_mse"] == pytest.approx(0.3125 / 8)
    assert s["hole_mse_sem"] == pytest.approx(torch.tensor([0.3125 / 4, 0.0], dtype=torch.float64).std().item()
                                              / np.sqrt(2))


@pytest.mark.parametrize("window", [7, 11])
def test_ssim_matches_scikit_image(window, monkeypatch):
    import skimage.metrics._structural_similarity as skm  # test-only dependency (requirements-dev.txt)
    if window == 7:  # scikit-image fixes truncate=3.5 (11 taps at sigma 1.5); truncate 2 gives its 7-tap window
        original = skm.gaussian
        monkeypatch.setattr(skm, "gaussian", lambda img, sigma, truncate, mode, **kw:
                            original(img, sigma=sigma, truncate=2.0, mode=mode, **kw))
    rng = np.random.default_rng(0)
    a = rng.random((28, 28))
    b = np.clip(a + 0.3 * rng.standard_normal((28, 28)), 0, 1)
    mean, full = skm.structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                           data_range=1.0, full=True, win_size=window)
    ta, tb = (torch.from_numpy(v)[None, None] for v in (a, b))
    assert np.abs(im.ssim_map(ta, tb, window)[0, 0].numpy() - full).max() < 1e-12
    assert im.ssim(ta, tb, window).item() == pytest.approx(mean, abs=1e-12)


def test_paired_difference_is_the_mean_and_standard_error_of_differences():
    mean, sem = im.paired_difference([0.3, 0.5, 0.4], [0.1, 0.2, 0.4])  # differences 0.2, 0.3, 0.0
    assert mean == pytest.approx(0.5 / 3) and sem == pytest.approx(np.std([0.2, 0.3, 0.0], ddof=1) / 3 ** 0.5)


def test_repaint_moves():
    assert repaint_moves(3) == [(0, 1), (1, 2), (2, 3)]
    moves = repaint_moves(6, jump_length=2, repeats=3)
    pos = 0
    for i, j in moves:
        assert i == pos and j in (i + 1, i - 2)
        pos = j
    assert pos == 6
    downs = [i for i, j in moves if j == i + 1]
    assert sum(1 for i in downs if i < 4) == 4 * 3 and sum(1 for i in downs if i >= 4) == 2


def _gaussian_denoiser(sched, cov):
    """The exact eps-prediction for data x ~ N(0, cov) on 2 pixels: E[x0 | x_t] = a cov C^-1 x_t."""
    def den(x, t):
        ab = sched.alpha_bar[int(t[0].round())].double()
        a, s = ab.sqrt(), (1 - ab).sqrt()
        xs = x.reshape(-1, 2).double()
        x0 = a * xs @ torch.linalg.solve(ab * cov + (1 - ab) * torch.eye(2, dtype=torch.float64), cov)
        return ((xs - a * x0) / s).reshape(x.shape).float()
    return den


def test_repaint_pulls_toward_the_exact_conditional_of_gaussian_data():
    """x ~ N(0, [[1, .9], [.9, 1]]), pixel 0 observed as 1: pixel 1 | y ~ N(0.9, 0.19). Replacing the
    known pixel alone (DC) ignores the correlation early on; RePaint's resampling fixes most of it."""
    cfg = config.Config()
    sched = from_config(cfg.diffusion)
    den = _gaussian_denoiser(sched, torch.tensor([[1, 0.9], [0.9, 1]], dtype=torch.float64))
    y = torch.zeros(2000, 1, 1, 2)
    y[..., 0] = 1.0
    mask = torch.zeros_like(y, dtype=torch.bool)
    mask[..., 1] = True
    run = functools.partial(inpaint, den, sched, y, mask, steps=50, eta=1.0, clip_x0=False)
    dc = run(torch.Generator().manual_seed(0))
    rp = run(torch.Generator().manual_seed(0), repeats=5)
    assert torch.equal(dc[..., 0], y[..., 0]) and torch.equal(rp[..., 0], y[..., 0])
    assert abs(dc[..., 1].mean().item() - 0.9) > 0.2
    assert abs(rp[..., 1].mean().item() - 0.9) < 0.1 and abs(rp[..., 1].var().item() - 0.19) < 0.06


def test_clean_estimates_mid_walk_have_the_posterior_mean_with_less_spread():
    """Pixel 1 | y ~ N(0.9, 0.19) as above, now with the exact denoiser of a model that sees y. Stopped
    at level T/2, its estimates E[x1 | x_t, y] still average to 0.9, but spread far less than the
    finished samples (Rao-Blackwell), so their mean over K draws is the better posterior-mean estimate."""
    cfg = config.Config()
    sched = from_config(cfg.diffusion)
    mu, var = 0.9, 0.19

    def den(x, t):
        ab = sched.alpha_bar[int(t[0].round())]
        a, s = ab.sqrt(), (1 - ab).sqrt()
        x0 = mu + a * var / (ab * var + s ** 2) * (x - a * mu)  # E[x1 | x_t, y] for x1 | y ~ N(mu, var)
        return (x - a * x0) / s

    y = torch.zeros(4000, 1, 1, 2)
    y[..., 0] = 1.0
    mask = torch.zeros_like(y, dtype=torch.bool)
    mask[..., 1] = True
    run = functools.partial(inpaint, den, sched, y, mask, steps=50, clip_x0=False)
    done = run(torch.Generator().manual_seed(0))
    mid = run(torch.Generator().manual_seed(0), stop_at=sched.T // 2)
    assert torch.equal(mid[..., 0], y[..., 0]) and torch.equal(done[..., 0], y[..., 0])
    done, mid = done[..., 1], mid[..., 1]
    assert abs(done.mean().item() - mu) < 0.03 and abs(done.var().item() - var) < 0.03
    assert abs(mid.mean().item() - mu) < 0.03 and mid.var().item() < var / 10


@pytest.mark.parametrize("task", ["generate", "inpaint", "complete"])
def test_completions_keep_every_known_pixel(task):
    overrides = [o for o in TINY if not o.startswith("data.")] + [f"task.name={task}", "task.coord_conv=true"]
    cfg = config.Config()
    config.apply_overrides(cfg, overrides)
    torch.manual_seed(0)
    model = build_network(cfg)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    m = masks.make("box", 5, size=9, generator=g)
    draws = {"generate": [(1, 0.0), (3, 0.0)], "inpaint": [(1, 0.0), (3, 0.0), (3, 0.5)], "complete": [(1, 0.0)]}
    for mean_of, mean_at in draws[task]:
        cfg.inpaint.mean_of, cfg.inpaint.mean_at = mean_of, mean_at
        out = completion.complete(model, cfg, images, m, 0, batch_size=2, device="cpu", progress=False)
        assert out.shape == (5, 28, 28) and out.dtype == np.uint8
        assert np.array_equal(out[~m[:, 0].numpy()], images.numpy()[~m[:, 0].numpy()])


@pytest.mark.parametrize("task, mean_of", [("generate", 1), ("inpaint", 2)])
def test_completions_do_not_depend_on_the_batch_size(task, mean_of):
    """Completion r of image i draws from keyed_generator(seed, i, draw, r): batches of 7 and of 50 give
    the same digits; another seed or draw gives others."""
    cfg = config.Config()
    config.apply_overrides(cfg, [o for o in TINY if not o.startswith("data.")] + [f"task.name={task}", "sample.eta=1",
                                                                                 f"inpaint.mean_of={mean_of}"])
    torch.manual_seed(0)
    model = build_network(cfg)
    images = torch.randint(0, 256, (12, 28, 28), dtype=torch.uint8)
    m = masks.make("box", 12, size=9, generator=torch.Generator().manual_seed(0))
    run = lambda batch, seed=3, draw=0: completion.complete(model, cfg, images, m, seed, batch_size=batch, device="cpu",
                                                            mean_of=mean_of, draw=draw, progress=False)
    seven = run(7)
    assert np.array_equal(seven, run(50))  # two batches of 7 and 5, against one of 12
    assert not np.array_equal(seven, run(7, seed=4)) and not np.array_equal(seven, run(7, draw=1))
    from common.runtime import keyed_generator  # completions draw apart from generation's (seed, i) streams
    first = lambda g: torch.randn(8, generator=g)
    assert not torch.equal(first(completion.completion_generators(3, range(5, 6), 0, 1)[0]), first(keyed_generator(3, 5)))
    members = [completion.completion_generators(3, range(5, 6), 0, 1, m)[0] for m in (0, 1)]
    assert not torch.equal(first(members[0]), first(members[1])), "ensemble members draw their own noise"


def test_uint8_round_trip_is_exact_and_rounds():
    u = torch.arange(256, dtype=torch.uint8).view(1, 16, 16)
    assert torch.equal(to_uint8(to_model_range(u)), u)
    assert to_uint8(torch.tensor([[[[10.6 / 127.5 - 1]]]])).item() == 11, "rounded, not truncated"


@pytest.mark.parametrize("task,extra", [("inpaint", ["diffusion.prediction=v", "diffusion.self_cond=true",
                                                     "task.hole_weight=5"]),
                                        ("complete", ["task.loss_l1=0.8", "task.loss_ssim=0.2", "task.loss_mse=0"])])
def test_a_tiny_model_lowers_the_hole_loss(task, extra):
    cfg = config.Config()
    config.apply_overrides(cfg, [o for o in TINY if not o.startswith("data.")]
                           + [f"task.name={task}", "task.coord_conv=true", "model.dropout=0", *extra])
    torch.manual_seed(0)
    model = build_network(cfg)
    sched = from_config(cfg.diffusion)
    x0 = torch.rand(8, 1, 28, 28) * 2 - 1
    x0[..., :, 14:] = x0[..., :, :14].flip(-1)  # a mirror-symmetric image: the hole is predictable from context
    m = masks.make("box", 8, size=8, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def eval_loss():
        torch.manual_seed(1)
        with torch.no_grad():
            return for_config(cfg).masked_loss(model, cfg, sched, x0, m)[0].item()
    before = eval_loss()
    for _ in range(50):
        loss, parts = for_config(cfg).masked_loss(model, cfg, sched, x0, m)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert eval_loss() < 0.7 * before
    if task == "complete":
        assert set(parts) == {"mse", "l1", "ssim"}


def test_hole_mse_pools_per_image_then_over_images_which_is_the_course_formula_for_equal_holes():
    """The course's MSE sums the squared errors of every hole pixel of every image over N x (hole pixels);
    hole_mse averages each image's hole, then the images: the same when every hole has the same size
    (the course's 8x8 center), a different number when holes differ (random pixel masks)."""
    g = torch.Generator().manual_seed(0)
    target = torch.rand(50, 1, 28, 28, generator=g, dtype=torch.float64)
    pred = (target + 0.2 * torch.randn(target.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    course = lambda m: float(((pred - target) ** 2)[m.expand_as(pred)].sum() / m.sum())
    center = masks.make("center", 50, size=8)
    assert im.summarize(im.per_image(pred, target, center))["hole_mse"] == pytest.approx(course(center), rel=1e-12)
    ragged = masks.make("pixels", 50, fraction=0.3, generator=g)
    ragged[:25] &= masks.make("center", 25, size=8)  # half the images with far smaller holes
    assert im.summarize(im.per_image(pred, target, ragged))["hole_mse"] != pytest.approx(course(ragged), rel=1e-3)


def test_hole_ssim_is_scikit_images_ssim_map_averaged_over_the_hole_pixels(monkeypatch):
    """hole_ssim: the SSIM map of windows centred on hole pixels, whose 7 x 7 windows also cover known
    pixels (equal in both images), averaged over the hole; checked against scikit-image's full map."""
    import skimage.metrics._structural_similarity as skm

    original = skm.gaussian  # truncate 2: scikit-image's window at 7 taps, as test_ssim_matches_scikit_image
    monkeypatch.setattr(skm, "gaussian", lambda img, sigma, truncate, mode, **kw:
                        original(img, sigma=sigma, truncate=2.0, mode=mode, **kw))
    rng = np.random.default_rng(1)
    target = rng.random((28, 28))
    hole = np.zeros((28, 28), bool)
    hole[10:18, 10:18] = True
    pred = np.where(hole, rng.random((28, 28)), target)  # known pixels pasted back, as every completion
    _, full = skm.structural_similarity(pred, target, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                        data_range=1.0, full=True, win_size=7)
    tp, tt, tm = (torch.from_numpy(v)[None, None] for v in (pred, target, hole))
    assert im.per_image(tp, tt, tm)["hole_ssim"].item() == pytest.approx(full[hole].mean(), abs=1e-12)
    core = np.zeros_like(hole)
    core[13:15, 13:15] = True  # the only windows that see no known pixel: 2 x 2 at the hole's centre
    assert full[hole].mean() > full[core].mean(), "windows that cover known pixels score higher"
