"""k-NN manifold metrics on features.

Precision and recall: Kynkaanniemi et al. 2019 (arXiv:1904.06991), k = 3. A sample is "in" the
real manifold if it lies within the k-NN radius of some real point (precision), and vice versa.
Density and coverage: Naeem et al. 2020 (arXiv:2002.09797), k = 5.
"""
from __future__ import annotations

import numpy as np
import torch


def _dist(a: np.ndarray, b: np.ndarray) -> torch.Tensor:
    return torch.cdist(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64))


def knn_radii(feats: np.ndarray, k: int) -> torch.Tensor:
    """Distance of each point to its k-th nearest neighbour in the same set (itself excluded)."""
    return _dist(feats, feats).kthvalue(k + 1, dim=1).values


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    r_real, r_fake = knn_radii(real, k), knn_radii(fake, k)
    d = _dist(real, fake)  # (n_real, n_fake)
    precision = (d <= r_real[:, None]).any(0).double().mean().item()
    recall = (d <= r_fake[None, :]).any(1).double().mean().item()
    return precision, recall


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
    r_real = knn_radii(real, k)
    d = _dist(real, fake)
    density = (d <= r_real[:, None]).sum(0).double().mean().item() / k
    coverage = (d.min(1).values <= r_real).double().mean().item()
    return density, coverage
