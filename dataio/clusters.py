"""Labels without labels: k-means clusters of the training images, of equal size.

A class-conditional network trained on cluster indices instead of digit labels can be guided (classifier-free
guidance) without any human label: Hu et al. 2023, "Self-Guided Diffusion Models" (arXiv:2210.06462), with
k-means on self-supervised features; here on the pixels. The clusters are made equal in size, so that the
sampler's balanced indices 0, 1, ..., k - 1, 0, ... draw them as often as the training set holds them: the
sampled digits then follow the data's own distribution and nothing about the clusters need be stored.
"""
from __future__ import annotations

import torch


def balanced_assign(d: torch.Tensor) -> torch.Tensor:
    """Each of N points to one of k clusters, every cluster receiving N // k or N // k + 1 points, from
    the distances d (N, k): in rounds, every unassigned point proposes to its nearest cluster that still
    has room, and each cluster keeps the closest proposals that fit. Deterministic (ties by index)."""
    n, k = d.shape
    room = torch.full((k,), n // k, dtype=torch.long)
    room[:n % k] += 1
    out = torch.full((n,), -1, dtype=torch.long)
    while (out < 0).any():
        todo = (out < 0).nonzero().flatten()
        choice = d[todo].masked_fill(room == 0, float("inf")).argmin(1)
        for c in choice.unique().tolist():
            mine = todo[choice == c]
            keep = mine[d[mine, c].argsort(stable=True)[:room[c]]]
            out[keep] = c
            room[c] -= len(keep)
    return out


def kmeans_labels(images: torch.Tensor, k: int, seed: int, iters: int = 20, dims: int = 50) -> torch.Tensor:
    """Balanced k-means cluster index (N,) of each image (uint8 or float, (N, ...)): the images' first
    `dims` principal components, k-means++ seeding from `seed`, then `iters` Lloyd steps whose assignment
    step is balanced_assign (equal-size k-means). A function of (images, k, seed, iters, dims) alone."""
    x = images.reshape(len(images), -1).double()
    x = x - x.mean(0)
    _, _, v = torch.linalg.svd(x[::max(1, len(x) // 10_000)], full_matrices=False)  # components from a subsample
    x = (x @ v[:dims].T).float()
    g = torch.Generator().manual_seed(seed)
    centres = x[torch.randint(len(x), (1,), generator=g)]
    for _ in range(k - 1):  # k-means++ (Arthur & Vassilvitskii 2007): far points are likelier next centres
        d2 = torch.cdist(x, centres).min(1).values ** 2
        centres = torch.cat([centres, x[torch.multinomial(d2 / d2.sum(), 1, generator=g)]])
    for _ in range(iters):
        labels = balanced_assign(torch.cdist(x, centres))
        centres = torch.stack([x[labels == c].mean(0) for c in range(k)])
    return labels
