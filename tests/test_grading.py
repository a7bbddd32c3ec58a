"""The instructor's side: copy and near-duplicate checks, provenance by regeneration, and
leaderboard.py --submissions grading a folder of submissions end to end."""
import json
import math
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
import torch

from dataio.mnist import load_mnist
from engine import checkpoint
from grading import provenance
from grading import integrity
from tests.conftest import DATA_ROOT, run

TRAIN = load_mnist(DATA_ROOT, train=True)[0].numpy()
TEST = load_mnist(DATA_ROOT, train=False)[0].numpy()


@pytest.fixture(scope="module")
def limits(fid_cache):
    return integrity.thresholds(DATA_ROOT, fid_cache)


def test_nearest_distance_matches_brute_force():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8), rng.integers(0, 256, (50, 28, 28), dtype=np.uint8)
    fa, fb = (torch.from_numpy(x).reshape(len(x), -1).double() / 255 for x in (a, b))
    np.testing.assert_allclose(integrity.nearest_distance(a, b, chunk=7), torch.cdist(fa, fb).min(1).values, rtol=1e-4)
    within = torch.cdist(fa, fa) + torch.diag(torch.full((30,), float("inf"), dtype=torch.float64))
    np.testing.assert_allclose(integrity.nearest_distance(a, chunk=7), within.min(1).values, rtol=1e-4)


def test_within_is_the_exhaustive_search_at_a_radius(limits):
    pool = TRAIN[:3000]
    queries = np.concatenate([TRAIN[:40], TEST[:200], np.zeros((5, 28, 28), np.uint8)])
    for radius in (limits["copy"], 4.0, 6.0):  # from copies only to many near pairs
        expect = integrity.nearest_distance(queries, pool) < radius
        assert np.array_equal(integrity.within(queries, pool, radius, chunk=64), expect), radius
    assert integrity.within(TRAIN[:40], pool, limits["copy"]).all()


def test_thresholds_are_the_test_sets_first_percentiles(limits):
    assert limits["percentile"] == 1.0 and limits["test_digits"] == 5000
    assert 0.5 < limits["copy"] < 3 and 0.5 < limits["near_duplicate"] < 3  # pixel distances, [0, 1] units
    held_out = TEST[-1500:]  # each held-out test digit sits above the copy threshold 99% of the time, by construction
    assert abs((integrity.nearest_distance(held_out, TRAIN) < limits["copy"]).mean() - 0.01) < 0.01


def test_training_digits_are_copies_and_blank_or_repeated_sets_are_near_duplicates(limits):
    real = TRAIN[np.random.default_rng(1).choice(len(TRAIN), 300, replace=False)]
    r = integrity.check(real, TRAIN, limits)
    assert r["copy_share"] == 1.0 and r["flags"] == ["100.0% copies of training digits"]
    held_out = integrity.check(TEST[-300:], TRAIN, limits)
    assert held_out["copy_share"] <= integrity.FLAG_SHARE and held_out["near_duplicate_share"] <= integrity.FLAG_SHARE
    assert held_out["flags"] == []
    black = integrity.check(np.zeros((300, 28, 28), np.uint8), TRAIN, limits)
    assert black["near_duplicate_share"] == 1.0 and black["flags"] == ["100.0% near-duplicates"]
    repeated = np.repeat(TEST[:1], 300, axis=0)
    assert integrity.check(repeated, TRAIN, limits)["near_duplicate_share"] == 1.0
    half = np.concatenate([TEST[-150:], np.repeat(TEST[:1], 150, axis=0)])  # half the set is one digit
    assert abs(integrity.check(half, TRAIN, limits)["near_duplicate_share"] - 0.5) < 0.02


def test_pass_probability_is_the_hypergeometric_zero_term():
    assert provenance.pass_probability(10, 1, 3) == pytest.approx(84 / 120)  # C(9,3) / C(10,3)
    assert provenance.pass_probability(10, 8, 3) == 0.0
    for m in (50, 250, 500):
        assert provenance.pass_probability(5000, m) <= (1 - m / 5000) ** 64
    assert provenance.pass_probability(5000, 250) == pytest.approx(0.037, abs=0.002)  # as the docs state
    assert provenance.pass_probability(5000, 500) == pytest.approx(0.0011, abs=0.0001)
    assert math.isclose(provenance.pass_probability(5000, 0), 1.0)


@pytest.fixture(scope="module")
def sampled(trained, tmp_path_factory):
    """(checkpoint, samples.json, 40 samples) from the session's tiny checkpoint, made by sample.py."""
    out = tmp_path_factory.mktemp("sampled")
    ckpt = trained / "checkpoints" / "tiny_test" / "final.pt"
    proc = run("sample.py", "--checkpoint", ckpt, "--num_samples", "40", "--sampler", "ddpm", "--steps", "5",
               "--batch_size", "16", "--out_root", out, cwd=out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    folder = out / "tiny_test"
    return ckpt, json.loads((folder / "samples.json").read_text()), np.load(folder / "samples.npz")["images"]


def test_samples_of_the_checkpoint_are_verified_and_others_are_not(sampled, tmp_path):
    ckpt, meta, images = sampled
    r = provenance.verify(ckpt, meta, images, k=8, seed=3)
    assert r["verified"] and r["matched"] == r["checked"] == 8 and r["max_mean_abs_diff"] == 0.0

    picked = np.sort(np.random.default_rng(3).choice(40, 8, replace=False))  # the grader's draw for seed 3
    replaced = images.copy()
    replaced[picked[:2]] = TEST[:2]
    r = provenance.verify(ckpt, meta, replaced, k=8, seed=3)
    assert not r["verified"] and r["matched"] == 6

    state = checkpoint.load(ckpt)  # the same run, other weights: another student's checkpoint
    for v in state["ema"]["model"].values():
        if v.is_floating_point():
            v.add_(0.05 * torch.randn(v.shape, generator=torch.Generator().manual_seed(0)))
    checkpoint.save(tmp_path / "other.pt", {k: v for k, v in state.items() if k not in ("format", "versions")})
    assert not provenance.verify(tmp_path / "other.pt", meta, images, k=8, seed=3)["verified"]


def test_tolerance_covers_bfloat16_rounding_of_every_weight(sampled, tmp_path):
    """Other hardware computes in other precisions; rounding every weight to bfloat16's 7-bit mantissa
    changes more than a GPU's TF32 matmuls do, and must still verify."""
    ckpt, meta, images = sampled
    state = checkpoint.load(ckpt)
    for v in state["ema"]["model"].values():
        if v.dtype == torch.float32:
            v.copy_(v.bfloat16().float())
    checkpoint.save(tmp_path / "rounded.pt", {k: v for k, v in state.items() if k not in ("format", "versions")})
    r = provenance.verify(tmp_path / "rounded.pt", meta, images, k=16, seed=0)
    assert r["verified"] and 0 < r["max_mean_abs_diff"] <= provenance.TOLERANCE, r


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.heads, self.thumbs, self.tables, self.summary, self._in = [], 0, [], "", None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append(attrs.get("class"))
        self._in = tag if tag == "th" or attrs.get("id") == "summary" else None
        self.thumbs += tag == "img" and attrs.get("class") == "thumb" and attrs["src"].startswith("data:image/png")

    def handle_data(self, data):
        if self._in == "th":
            self.heads.append(data)
        elif self._in == "p":
            self.summary += data


def _submission(root, name, ckpt, meta, images):
    folder = root / name
    folder.mkdir(parents=True)
    shutil.copy(ckpt, folder / "final.pt")
    shutil.copy(ckpt.parent / "config.yaml", folder / "config.yaml")
    (folder / "samples.json").write_text(json.dumps(meta))
    np.savez(folder / "samples.npz", images=images)
    return folder


def test_leaderboard_grades_a_folder_of_submissions(sampled, in_folder_with_fid_cache):
    ckpt, meta, images = sampled
    subs = in_folder_with_fid_cache / "submissions"
    _submission(subs, "alice", ckpt, meta, images)
    swapped = images.copy()
    swapped[::2] = TRAIN[:20]
    _submission(subs, "mallory", ckpt, meta, swapped)
    (_submission(subs, "broken", ckpt, meta, images) / "samples.json").unlink()
    _submission(subs, "odd", ckpt, {**meta, "sampler": "nope"}, images)
    args = ("leaderboard.py", "--submissions", subs, "--checked", "8", "--data_root", DATA_ROOT)

    proc = run(*args, cwd=in_folder_with_fid_cache)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "warning: skipped" in proc.stderr and "broken (no samples.json" in proc.stderr
    assert "odd (the settings in samples.json do not run with this checkpoint" in proc.stderr
    lines = {l.split(":")[0]: l for l in proc.stdout.splitlines() if l.startswith(("alice:", "mallory:"))}
    assert "graded" in lines["alice"] and "verified yes (8/8" in lines["alice"]
    assert "verified no" in lines["mallory"] and "copies 50.0%" in lines["mallory"]
    results = in_folder_with_fid_cache / "results"
    alice = json.loads((results / "alice.json").read_text())
    assert alice["verified"] and alice["flags"] == [] and alice["not_ranked_reason"] == "40 samples; exactly 5000 are required"
    assert (results / "grids" / "alice.png").is_file() and alice["grading"]["checked"] == 8
    mallory = json.loads((results / "mallory.json").read_text())
    assert "not verified" in mallory["not_ranked_reason"] and "flagged: 50.0% copies" in mallory["not_ranked_reason"]

    page = _Page()
    page.feed((results / "leaderboard.html").read_text())
    assert page.tables == ["sortable", "sortable"] and page.thumbs == 2
    assert {"verified", "copies", "near_duplicates", "not_ranked_reason"} <= set(page.heads)
    assert "floor is FID" in page.summary and "within noise" in page.summary
    assert "alice: 40 samples; exactly 5000 are required\n" in (results / "leaderboard.md").read_text()

    again = run(*args, cwd=in_folder_with_fid_cache)  # results are keyed by the files: nothing to redo
    assert again.returncode == 0 and "alice: up to date" in again.stdout and "mallory: up to date" in again.stdout
