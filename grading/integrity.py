"""Checks that a sample set is a model's own work: copies of training digits and near-duplicates.

Both checks measure Euclidean distances in pixel space (28 x 28 pixels in [0, 1]), where a copied
digit is at distance 0 whatever a feature network makes of it; feature space would also call two
different writers' similar 1s "close". Each threshold is calibrated once on held-out test digits,
so a set of real test digits scores about 1% on either check by construction (calibrated on the
first 5,000 test digits, about 10 s here, and cached beside the FID statistics):

- copy: a sample closer to its nearest training digit than 99% of test digits are to theirs;
- near-duplicate: a sample closer to its nearest other sample than 99% of 5,000 test digits are to
  their nearest other test digit (an all-black set, or one image repeated, is 100% near-duplicates).

- test copy: a sample closer to its nearest *test* digit than 99% of 5,000 training digits are to
  theirs (a model trained on the test digits, or test digits handed in as samples);
- memorised test digit (Gu et al. 2023, "On Memorization in Diffusion Models", arXiv:2310.02664): the
  sample's nearest test digit is under a third of the distance to its second nearest.

A set is flagged when more than FLAG_SHARE of it is copies, near-duplicates, test copies or memorised
test digits, whatever its FID or precision say; and when its FID lies below the floor by more than
twice their combined spread (real test digits' own statistics are the only way to get there).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dataio.mnist import load_mnist
from common.fileio import write_json

PERCENTILE = 1.0  # thresholds: the 1st percentile of held-out test digits' distances
FLAG_SHARE = 0.05  # five times what held-out test digits reach by construction
SET_SIZE = 5000  # calibrated on the first 5,000 test digits: as many as a ranked set holds


def _pixels(images_u8) -> torch.Tensor:
    return torch.as_tensor(np.asarray(images_u8)).reshape(len(images_u8), -1).float().div(255)


def _squared_distances(a: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    return torch.addmm(b_sq, a, b.T, alpha=-2).add_((a * a).sum(1, keepdim=True)).clamp_min_(0)


@torch.inference_mode()
def two_nearest(queries_u8, pool_u8, chunk: int = 1000) -> np.ndarray:
    """(N, 2): each query's distances to its nearest and second-nearest image of the pool."""
    q, pool = _pixels(queries_u8), _pixels(pool_u8)
    pool_sq = (pool * pool).sum(1)
    out = [_squared_distances(q[s:s + chunk], pool, pool_sq).topk(2, largest=False).values.sqrt()
           for s in range(0, len(q), chunk)]
    return torch.cat(out).numpy()


@torch.inference_mode()
def nearest_distance(queries_u8, pool_u8=None, chunk: int = 1000) -> np.ndarray:
    """Each query's Euclidean distance (pixels in [0, 1]) to its nearest image in `pool_u8`; without a
    pool, to its nearest *other* image of the queries themselves. A search by exhaustion: about 1 s
    per 1,000 queries against the 60,000 training digits on this CPU (`within` answers the narrower
    question "nearer than r?" faster)."""
    q = _pixels(queries_u8)
    pool = q if pool_u8 is None else _pixels(pool_u8)
    pool_sq = (pool * pool).sum(1)
    out = []
    for start in range(0, len(q), chunk):
        d2 = _squared_distances(q[start:start + chunk], pool, pool_sq)
        if pool_u8 is None:
            d2[torch.arange(len(d2)), torch.arange(start, start + len(d2))] = float("inf")
        out.append(d2.min(1).values.sqrt())
    return torch.cat(out).numpy()


def _pooled(x: torch.Tensor) -> torch.Tensor:
    """2 x 2 means of flattened 28 x 28 images: |x - y|^2 >= 4 |pooled(x) - pooled(y)|^2 for any two
    images (in each block, the squared mean difference is at most the mean squared difference)."""
    return F.avg_pool2d(x.view(-1, 1, 28, 28), 2).flatten(1)


@torch.inference_mode()
def within(queries_u8, pool_u8, radius: float, chunk: int = 1000) -> np.ndarray:
    """Whether each query lies closer than `radius` to some image of the pool; exactly as
    nearest_distance(queries, pool) < radius, in about two thirds of its time here when few pairs are
    close (the pooled matmul is 4x smaller, but memory traffic dominates): the 14 x 14 means bound every
    distance from below, and only pool images that some query of the chunk may be near are measured in
    full."""
    q, pool = _pixels(queries_u8), _pixels(pool_u8)
    q_low, pool_low = _pooled(q), _pooled(pool)
    pool_low_sq, limit = (pool_low * pool_low).sum(1), radius ** 2
    out = []
    for start in range(0, len(q), chunk):
        a = q[start:start + chunk]
        maybe = (4 * _squared_distances(q_low[start:start + chunk], pool_low, pool_low_sq) < limit + 1e-4).any(0)
        near = pool[maybe.nonzero().flatten()]
        out.append((_squared_distances(a, near, (near * near).sum(1)) < limit).any(1) if len(near)
                   else torch.zeros(len(a), dtype=torch.bool))
    return torch.cat(out).numpy()


def thresholds(data_root: str, cache_dir: str | Path) -> dict:
    """{"copy", "near_duplicate"} distances, calibrated once on the first SET_SIZE test digits (the
    near-duplicate distance depends on the set's size), then cached."""
    path = Path(cache_dir) / "integrity_thresholds.json"
    if path.is_file():
        cached = json.loads(path.read_text())
        if "test_copy" in cached:
            return cached
    train = load_mnist(data_root, train=True)[0].numpy()
    all_test = load_mnist(data_root, train=False)[0].numpy()
    test = all_test[:SET_SIZE]
    out = {"copy": float(np.percentile(nearest_distance(test, train), PERCENTILE)),
           "near_duplicate": float(np.percentile(nearest_distance(test), PERCENTILE)),
           "test_copy": float(np.percentile(nearest_distance(train[:SET_SIZE], all_test), PERCENTILE)),
           "percentile": PERCENTILE, "test_digits": len(test)}
    write_json(path, out)
    return out


MEMORISED_RATIO = 1 / 3  # Gu et al. 2023: nearest / second-nearest distance below this is a memorised copy


def check(images_u8: np.ndarray, train_u8: np.ndarray, limits: dict, test_u8: np.ndarray | None = None) -> dict:
    """copy_share, near_duplicate_share, with the test digits test_copy_share and memorised_test_share,
    and the flags they raise (a list of short reasons)."""
    copies = float(within(images_u8, train_u8, limits["copy"]).mean())
    dups = float((nearest_distance(images_u8) < limits["near_duplicate"]).mean()) if len(images_u8) > 1 else 0.0
    shares = {"copy_share": copies, "near_duplicate_share": dups}
    named = [(copies, "copies of training digits"), (dups, "near-duplicates")]
    if test_u8 is not None:
        d = two_nearest(images_u8, test_u8)
        shares["test_copy_share"] = float((d[:, 0] < limits["test_copy"]).mean())
        shares["memorised_test_share"] = float((d[:, 0] < MEMORISED_RATIO * d[:, 1]).mean())
        named += [(shares["test_copy_share"], "copies of test digits"),
                  (shares["memorised_test_share"], "memorised test digits (nearest < 1/3 of second nearest)")]
    return {**shares, "flags": [f"{share:.1%} {what}" for share, what in named if share > FLAG_SHARE]}


def below_floor(fid: float, fid_std: float, floor: float, floor_std: float) -> str | None:
    """A flag when an FID lies below the floor by more than twice their combined spread."""
    margin = 2 * (fid_std ** 2 + floor_std ** 2) ** 0.5
    return f"FID {fid:.2f} below the floor {floor:.2f} by more than {margin:.2f} (twice the spread)" \
        if fid < floor - margin else None
