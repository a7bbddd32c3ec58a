"""Two-sample distances between point clouds (the two-moons test bed), all in float64.

Every function takes samples x (n, d) and y (m, d) and returns a float; 0 means "same sample".
- mmd: maximum mean discrepancy (Gretton et al. 2012, JMLR 13) with a sum of RBF kernels
  k(a, b) = mean_h exp(-|a - b|^2 / (2 h^2)), bandwidths h = median distance x (4, 2, 1, 1/2, 1/4)
  (the median heuristic over all pairs of the pooled sample). Reported as the square root of the
  biased (V-statistic) MMD^2, so identical sets score exactly 0.
- energy_distance: sqrt(2 E|X - Y| - E|X - X'| - E|Y - Y'|) over Euclidean distances (Szekely &
  Rizzo 2013), V-statistics: the square-root convention of scipy.stats.energy_distance, which
  it equals in 1D.
- sliced_wasserstein: the Wasserstein-1 distance of the two samples projected on 256 random unit
  directions (drawn from a fixed seed, so every result uses the same ones), averaged (Bonneel et
  al. 2015); each 1D distance is the area between the empirical CDFs, as scipy.stats.wasserstein_distance.
"""
from __future__ import annotations

import numpy as np
import torch

BANDWIDTH_FACTORS = (4.0, 2.0, 1.0, 0.5, 0.25)  # times the median distance; each half the last
PROJECTIONS = 256
PROJECTION_SEED = 0


def _t(a) -> torch.Tensor:
    a = torch.as_tensor(np.asarray(a), dtype=torch.float64)
    return a[:, None] if a.dim() == 1 else a


def _dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _median_pair_distance(dxx, dyy, dxy) -> float:
    """Median of |a - b| over all pairs of distinct points of the pooled sample."""
    upper = lambda d: d[torch.ones(d.shape, dtype=torch.bool).triu(1)]
    return float(np.median(torch.cat([upper(dxx), upper(dyy), dxy.flatten()]).numpy()))


def _mmd(dxx, dyy, dxy) -> float:
    median = _median_pair_distance(dxx, dyy, dxy)

    def k_mean(d):
        """Mean over pairs of the multi-bandwidth kernel. The bandwidths halve from the widest,
        so each RBF is the previous one to the 4th power: one exp per matrix."""
        k = torch.exp(d.pow(2) / (-2 * (BANDWIDTH_FACTORS[0] * median) ** 2))
        total = k.mean()
        for _ in BANDWIDTH_FACTORS[1:]:
            k = k.square().square()
            total = total + k.mean()
        return total / len(BANDWIDTH_FACTORS)
    mmd2 = (k_mean(dxx) + k_mean(dyy) - 2 * k_mean(dxy)).item()
    return max(mmd2, 0.0) ** 0.5


def _energy(dxx, dyy, dxy) -> float:
    return max((2 * dxy.mean() - dxx.mean() - dyy.mean()).item(), 0.0) ** 0.5


def _pairwise(x, y):
    x, y = _t(x), _t(y)
    return _dist(x, x), _dist(y, y), _dist(x, y)


def mmd(x, y) -> float:
    return _mmd(*_pairwise(x, y))


def energy_distance(x, y) -> float:
    return _energy(*_pairwise(x, y))


def projections(dim: int, n: int = PROJECTIONS, seed: int = PROJECTION_SEED) -> torch.Tensor:
    """(n, dim) unit vectors, uniform on the sphere."""
    g = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return g / g.norm(dim=1, keepdim=True)


def wasserstein_1d(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """W1 between the empirical laws of each row of u (P, n) and v (P, m): the integral of
    |F_u - F_v| over the pooled sorted values, row by row. Returns (P,)."""
    u, v = u.sort(dim=1).values, v.sort(dim=1).values
    pooled = torch.cat([u, v], dim=1).sort(dim=1).values
    widths = pooled.diff(dim=1)
    left = pooled[:, :-1].contiguous()
    cdf_u = torch.searchsorted(u, left, right=True).double() / u.shape[1]  # float64, not the default float32
    cdf_v = torch.searchsorted(v, left, right=True).double() / v.shape[1]
    return ((cdf_u - cdf_v).abs() * widths).sum(dim=1)


def sliced_wasserstein(x, y, n_proj: int = PROJECTIONS, seed: int = PROJECTION_SEED) -> float:
    x, y = _t(x), _t(y)
    dirs = projections(x.shape[1], n_proj, seed)
    return wasserstein_1d(dirs @ x.T, dirs @ y.T).mean().item()


METRICS = ("mmd", "energy", "sw1")


def distances(x, y) -> dict[str, float]:
    """All three, sharing the pairwise distance matrices."""
    d = _pairwise(x, y)
    return {"mmd": _mmd(*d), "energy": _energy(*d), "sw1": sliced_wasserstein(x, y)}
