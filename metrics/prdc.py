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


def knn_radii(feats: np.ndarray, *ks: int) -> list[torch.Tensor]:
    """For each k, the distance of each point to its k-th nearest neighbour in the same set (itself
    excluded); one distance matrix for all ks."""
    nearest = _dist(feats, feats).topk(max(ks) + 1, dim=1, largest=False).values  # column 0: the point itself
    return [nearest[:, k] for k in ks]


def prdc(real: np.ndarray, fake: np.ndarray, k_pr: int = 3, k_dc: int = 5) -> dict[str, float]:
    """Precision and recall at k_pr, density and coverage at k_dc, sharing the distance matrices."""
    r_real_pr, r_real_dc = knn_radii(real, k_pr, k_dc)
    (r_fake,) = knn_radii(fake, k_pr)
    d = _dist(real, fake)  # (n_real, n_fake)
    return {"precision": (d <= r_real_pr[:, None]).any(0).double().mean().item(),
            "recall": (d <= r_fake[None, :]).any(1).double().mean().item(),
            "density": (d <= r_real_dc[:, None]).sum(0).double().mean().item() / k_dc,
            "coverage": (d.min(1).values <= r_real_dc).double().mean().item()}


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    m = prdc(real, fake, k_pr=k, k_dc=k)
    return m["precision"], m["recall"]


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
    m = prdc(real, fake, k_pr=k, k_dc=k)
    return m["density"], m["coverage"]
