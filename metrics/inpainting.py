"""Completion metrics on the hole and on the whole image: MSE, L1, PSNR and SSIM.

Images are float tensors (N, C, H, W) in [0, 1]; masks are bool (N, 1, H, W), True on the hole.
Everything is differentiable, so the SSIM here is also the completion network's loss term.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dataio.mnist import EVAL_SEED


def gaussian_window(size: int = 7, sigma: float = 1.5, dtype=torch.float64) -> torch.Tensor:
    """Normalised 1D Gaussian taps at offsets -(size // 2)..size // 2 (scipy.ndimage's kernel)."""
    x = torch.arange(size, dtype=dtype) - size // 2
    w = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return w / w.sum()


def _symmetric_pad(x: torch.Tensor, p: int) -> torch.Tensor:
    """Pad H and W by p mirroring the edge pixel too (d c b a | a b c d | d c b a), which is
    scipy.ndimage's mode "reflect" that scikit-image's SSIM uses."""
    def idx(n):
        return torch.cat([torch.arange(p - 1, -1, -1), torch.arange(n), torch.arange(n - 1, n - 1 - p, -1)])
    return x[..., idx(x.shape[-2]), :][..., idx(x.shape[-1])]


def _blur(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    c, p = x.shape[1], len(w) // 2
    x = _symmetric_pad(x, p)
    x = F.conv2d(x, w.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, w.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def ssim_map(a: torch.Tensor, b: torch.Tensor, window: int = 7, sigma: float = 1.5, data_range: float = 1.0,
             k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Per-pixel SSIM (Wang et al. 2004, eq. 13) with a window x window Gaussian of std sigma and
    population (weighted) moments; same shape as the inputs. Equals scikit-image's
    structural_similarity(gaussian_weights=True, use_sample_covariance=False, full=True) map when
    its filter has the same taps (it uses 11 for sigma 1.5; this default of 7 follows seed 002)."""
    w = gaussian_window(window, sigma, a.dtype).to(a.device)
    mu_a, mu_b = _blur(a, w), _blur(b, w)
    var_a = _blur(a * a, w) - mu_a ** 2
    var_b = _blur(b * b, w) - mu_b ** 2
    cov = _blur(a * b, w) - mu_a * mu_b
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    return (2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))


def interior_mean(s_map: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Per-image mean of an SSIM map over the pixels at least window // 2 from the border (scikit-image's mean)."""
    p = window // 2
    return s_map[..., p:-p, p:-p].flatten(1).mean(1)


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 7, sigma: float = 1.5) -> torch.Tensor:
    """Per-image mean SSIM, averaged like scikit-image (see interior_mean)."""
    return interior_mean(ssim_map(a, b, window, sigma), window)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-image mean of x over the True pixels of mask (broadcast over channels)."""
    m = mask.expand_as(x).to(x.dtype)
    return (x * m).flatten(1).sum(1) / m.flatten(1).sum(1)


def psnr(mse: torch.Tensor, floor: float = 1e-10) -> torch.Tensor:
    """10 log10(1 / mse) for data in [0, 1]; an exact match (mse 0) counts as 100 dB."""
    return 10 * torch.log10(1 / mse.clamp(min=floor))


def per_image(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image metrics in float64: hole_* over the hole pixels only, whole_* over all pixels
    (whole_ssim as scikit-image averages it). PSNR is per image, from that image's MSE."""
    pred, target = pred.double(), target.double()
    err = pred - target
    s_map = ssim_map(pred, target)
    hole_mse = masked_mean(err ** 2, mask)
    whole_mse = err.pow(2).flatten(1).mean(1)
    return {
        "hole_mse": hole_mse, "hole_l1": masked_mean(err.abs(), mask), "hole_psnr": psnr(hole_mse),
        "hole_ssim": masked_mean(s_map, mask),
        "whole_mse": whole_mse, "whole_l1": err.abs().flatten(1).mean(1), "whole_psnr": psnr(whole_mse),
        "whole_ssim": interior_mean(s_map),
    }


def paired_difference(a, b) -> tuple[float, float]:
    """Mean and standard error of a - b over the same images (e.g. two methods' hole MSEs): far
    tighter than the two means' own errors, since most of their spread is which digits are hard."""
    d = torch.as_tensor(a, dtype=torch.float64) - torch.as_tensor(b, dtype=torch.float64)
    return float(d.mean()), float(d.std() / math.sqrt(len(d))) if len(d) > 1 else 0.0


def scored_on(result: dict) -> tuple:
    """(mask, seed, n_eval) of an inpainting result (results/NAME_inpaint.json): the mask and test digits
    it was scored on. Results are ranked together, and paired digit by digit, only when these agree.
    Files written before the seed was recorded used EVAL_SEED."""
    return result["mask"], result.get("seed", EVAL_SEED), result["n_eval"]


def summarize(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """Mean of each per-image metric, plus the standard error of the hole MSE's mean."""
    out = {k: float(v.mean()) for k, v in values.items()}
    mse = values["hole_mse"]
    out["hole_mse_sem"] = float(mse.std() / math.sqrt(len(mse))) if len(mse) > 1 else 0.0
    return out
