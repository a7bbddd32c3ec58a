"""Two moons in 2D: scikit-learn's `make_moons`, rebuilt in numpy, and the continuous distribution
it discretises (for the sampling floor of metrics/two_sample.py)."""
from __future__ import annotations

import numpy as np

TARGET_SEED = 12345  # the 5,000-point evaluation target: make_moons(5000, noise, TARGET_SEED)
TARGET_SIZE = 5000


def make_moons(n: int, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """float64 (n, 2), identical to sklearn.datasets.make_moons(n, shuffle=True, noise=noise,
    random_state=seed)[0]: n // 2 points at evenly spaced angles on the upper half circle, the rest
    on the lower one shifted by (1, -0.5), shuffled, then N(0, noise^2) added to each coordinate."""
    n_out = n // 2
    n_in = n - n_out
    rng = np.random.RandomState(seed)
    outer = np.linspace(0, np.pi, n_out)
    inner = np.linspace(0, np.pi, n_in)
    x = np.stack([np.append(np.cos(outer), 1 - np.cos(inner)),
                  np.append(np.sin(outer), 1 - np.sin(inner) - 0.5)], axis=1)
    order = np.arange(n)
    rng.shuffle(order)
    x = x[order]
    return x + rng.normal(scale=noise, size=x.shape)


def sample_true(n: int, noise: float, seed: int) -> np.ndarray:
    """float64 (n, 2), n independent draws from the continuous two-moons law, as a perfect generator
    samples: each point on the upper or the lower moon with probability 1/2 (so the split is
    binomial, not make_moons' exact n // 2), at an angle uniform on [0, pi], plus the noise."""
    rng = np.random.default_rng(seed)
    upper = rng.random(n) < 0.5
    theta = rng.uniform(0, np.pi, n)
    x = np.where(upper[:, None], np.stack([np.cos(theta), np.sin(theta)], 1),
                 np.stack([1 - np.cos(theta), 1 - np.sin(theta) - 0.5], 1))
    return x + rng.normal(scale=noise, size=x.shape)


def target(noise: float = 0.05) -> np.ndarray:
    """The evaluation target every two-moons result is scored against."""
    return make_moons(TARGET_SIZE, noise, TARGET_SEED)
