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
from tests.conftest import DATA_ROOT, REPO, TINY, run

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
    assert "warning: not graded" in proc.stderr and "broken (samples but no samples.json" in proc.stderr
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


# A student's own network, as the course rules allow: the shipped models/model.py plus one builder
# that reads its settings from model.options (docs/evaluation.md walks through the same example).
CUSTOM_NET = '''

class TinyConv(nn.Module):
    """Two convolutions, the noise level fed in as an extra channel."""

    def __init__(self, in_channels, image_channels, num_classes, width):
        super().__init__()
        self.a = nn.Conv2d(in_channels + 1, width, 3, padding=1)
        self.b = nn.Conv2d(width, image_channels, 3, padding=1)

    def forward(self, x, t, y=None):
        level = (t.float() / 1000).view(-1, 1, 1, 1).expand(-1, 1, *x.shape[-2:])
        return self.b(nn.functional.silu(self.a(__import__("torch").cat([x, level], 1))))


def build_tinyconv(cfg, inputs):
    return TinyConv(width=cfg.model.options["width"], **inputs)


REGISTRY["tinyconv"] = build_tinyconv
'''
LIBRARY = ("common", "dataio", "diffusion", "models", "metrics", "tasks", "engine", "grading")


def _student_repo(root, model_py: str):
    """A student's copy of the repository with their own models/model.py."""
    for package in LIBRARY:
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "train.py", root / "train.py")
    (root / "models" / "model.py").write_text(model_py)
    return root


def test_hand_ins_without_samples_and_with_student_code_are_graded_or_refused_one_by_one(
        sampled, tiny_config, in_folder_with_fid_cache, tmp_path):
    ckpt, meta, images = sampled
    shipped = (REPO / "models" / "model.py").read_text()
    student = _student_repo(tmp_path / "carol_repo", shipped + CUSTOM_NET)
    cfg_path = student / "my_config.yaml"
    cfg_path.write_text(tiny_config.read_text())
    import subprocess
    import sys
    trained = subprocess.run([sys.executable, "train.py", "--config", "my_config.yaml", "--student_name", "carol",
                              "--no-progress", *TINY, "train.steps=2", "model.name=tinyconv",
                              "model.options={width: 4}", "sample.batch_size=1000", "sample.steps=1"], cwd=student,
                             capture_output=True,
                             text=True)
    assert trained.returncode == 0, trained.stderr[-2000:]

    subs = in_folder_with_fid_cache / "submissions"
    nosamples = subs / "dave"  # checkpoint and config only: the grader samples with its own seed
    nosamples.mkdir(parents=True)
    shutil.copy(ckpt, nosamples / "final.pt")
    import yaml
    older = yaml.safe_load((ckpt.parent / "config.yaml").read_text())
    older["sample"].update(older.pop("inpaint"), batch_size=1000, steps=1)  # as written before inpaint.* moved
    (nosamples / "my_config.yaml").write_text(yaml.safe_dump(older))  # its sample settings are the ones used
    shutil.copy(REPO / "models" / "model.py", nosamples / "model.py")  # unchanged: nothing special
    carol = subs / "carol"
    carol.mkdir()
    shutil.copy(student / "checkpoints" / "carol" / "final.pt", carol / "final.pt")
    shutil.copy(student / "checkpoints" / "carol" / "config.yaml", carol / "config.yaml")
    shutil.copy(student / "models" / "model.py", carol / "model.py")
    bad_code = {"hangs": "import time\ntime.sleep(600)\n",
                "raises": "raise RuntimeError('my network is not finished')\n",
                "hungry": "HOARD = bytearray(64 << 30)\n",
                "cropped": "import numpy\n_save = numpy.save\nnumpy.save = lambda f, a, **k: _save(f, a[:, :14], **k)\n"}
    for name, code in bad_code.items():
        if name == "cropped":  # with samples: the child regenerates the 8 checked ones, and crops them
            folder = _submission(subs, name, ckpt, meta, images)
        else:
            folder = subs / name
            folder.mkdir()
            shutil.copy(carol / "final.pt", folder / "final.pt")
            shutil.copy(carol / "config.yaml", folder / "config.yaml")
        (folder / "model.py").write_text(shipped + CUSTOM_NET + code)
    _submission(subs, "tess", ckpt, meta, TEST[:40])  # real test digits handed in as samples
    before = {p: p.stat().st_mtime_ns for p in subs.rglob("*") if p.is_file()}
    args = ("leaderboard.py", "--submissions", subs, "--checked", "8", "--data_root", DATA_ROOT, "--timeout", "10")

    first = run(*args, cwd=in_folder_with_fid_cache)
    assert first.returncode == 0, first.stderr[-2000:]
    lines = {l.split(":")[0]: l for l in first.stdout.splitlines() if ":" in l}
    for name in ("carol", *bad_code):
        assert "needs --run_student_code" in lines[name], first.stdout
    assert "samples made by the grader" in lines["dave"]
    results = in_folder_with_fid_cache / "results"
    dave = json.loads((results / "dave.json").read_text())
    assert dave["num_samples"] == 5000 and dave["verified"] and dave["samples_from"] == "made by the grader"
    assert dave["ranked"], dave["not_ranked_reason"]
    seed = int((results / ".grader_seed").read_text())
    assert str(seed) not in (results / "dave.json").read_text() + (results / "leaderboard.md").read_text()
    assert dave["sampling"]["seed"] == "grader's" and dave["sampling"]["num_classes"] == 0  # the checkpoint's
    tess = json.loads((results / "tess.json").read_text())
    assert "flagged: 100.0% copies of test digits" in tess["not_ranked_reason"]
    assert tess["memorised_test_share"] == 1.0

    second = run(*args, "--run_student_code", cwd=in_folder_with_fid_cache)
    assert second.returncode == 0, second.stderr[-2000:]
    out = {l.split(":")[0]: l for l in second.stdout.splitlines() if ":" in l}
    err = second.stderr
    assert "carol" in out, second.stdout + second.stderr
    assert "dave: up to date" in second.stdout and "carol: graded" in out["carol"] and "student code" in out["carol"]
    carol_result = json.loads((results / "carol.json").read_text())
    assert carol_result["num_samples"] == 5000 and carol_result["student_code"] and carol_result["verified"]
    assert {k: carol_result["sampling"][k] for k in ("num_classes", "labels")} == {"num_classes": 0, "labels": "digits"}
    assert "hangs (the student's model.py ran past the 10 s limit)" in err
    assert "raises (the student's code failed (exit status 1): RuntimeError: my network is not finished)" in err
    assert "hungry (the student's code failed (out of memory" in err
    assert "cropped (the student's code returned uint8 (8, 14, 28); uint8 (8, 28, 28) expected)" in err
    assert {p: p.stat().st_mtime_ns for p in subs.rglob("*") if p.is_file()} == before, "a hand-in was changed"
    assert not any((results / f"{n}.json").exists() for n in bad_code)


def test_course_hand_ins_get_public_and_private_scores_on_disjoint_halves_and_pass_or_fail(in_folder_with_fid_cache):
    from grading.course import split
    root = in_folder_with_fid_cache
    truth = TEST[:100]
    np.savez(root / "truth.npz", images=truth)
    hand_ins = root / "course"
    hand_ins.mkdir()
    blank = truth.copy()
    blank[:, 10:18, 10:18] = 0
    np.savez(hand_ins / "baseline.npz", images=blank)  # the hole left black
    np.savez(hand_ins / "perfect.npz", images=truth.astype(np.float32) / 255)  # floats in [0, 1] work too
    half = blank.copy()
    half[:50] = truth[:50]  # right on the first 50 images only
    np.savez(hand_ins / "half.npz", images=half)
    np.savez(hand_ins / "short.npz", images=truth[:10])
    proc = run("leaderboard.py", "--course", hand_ins, "--target", root / "truth.npz", "--baseline", "baseline",
               "--grader_seed", "5", cwd=root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "short.npz (10 images, 100 expected)" in proc.stderr
    public, private = split(100, 5)
    assert len(set(public) | set(private)) == 100 and not set(public) & set(private)
    err = ((blank.astype(np.float64) - truth) / 255) ** 2
    hole_mse = err[:, 10:18, 10:18].reshape(100, -1).mean(1)
    results = root / "results" / "course"
    base, half_r, perfect = (json.loads((results / f"{n}.json").read_text()) for n in ("baseline", "half", "perfect"))
    assert base["public_mse"] == pytest.approx(hole_mse[public].mean()) and base["private_mse"] == pytest.approx(hole_mse[private].mean())
    expect_half = np.where(np.arange(100) < 50, 0.0, hole_mse)
    assert half_r["private_mse"] == pytest.approx(expect_half[private].mean())
    assert perfect["public_mse"] < 1e-12 and perfect["private_mse"] < 1e-12  # float32 rounding only
    assert perfect["pass"] and half_r["pass"] and base["pass"]
    final = (root / "results" / "course_final.md").read_text()
    assert "private_mse" in final and "| 1 | perfect |" in final and "pass" in final
    assert "private" not in (root / "results" / "course_public.md").read_text().split("\n", 2)[2]
    worse = blank.copy()
    worse[:, 10:18, 10:18] = 255  # a white hole: worse than black on every digit
    np.savez(hand_ins / "worse.npz", images=worse)
    again = run("leaderboard.py", "--course", hand_ins, "--target", root / "truth.npz", "--baseline", "baseline", cwd=root)
    assert again.returncode == 0 and not json.loads((results / "worse.json").read_text())["pass"]
    assert (root / "results" / ".grader_seed").is_file()  # no seed given: the secret one


def test_entries_rank_only_against_entries_of_the_same_feature_network_each_with_its_floor(tmp_path):
    results = tmp_path / "results"
    results.mkdir()

    def entry(name, fid, net, sha, floor, labels):
        return {"student_name": name, "num_samples": 5000, "fid": fid, "fid_bootstrap_std": 0.1, "kid_mean": fid / 100,
                "fid_floor_mean": floor, "fid_over_floor": fid / floor, "feature_net": net,
                "feature_net_sha256": sha, "sampling": {"num_classes": labels, "guidance": 0}}
    for e in (entry("lenet_a", 6.2, "lenet", "aa" * 32, 2.9, 10), entry("lenet_b", 5.0, "lenet", "aa" * 32, 2.9, 0),
              entry("incep", 3.0, "inception", "bb" * 32, 0.8, 10)):
        (results / f"{e['student_name']}.json").write_text(json.dumps(e))
    proc = run("leaderboard.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    md = (results / "leaderboard.md").read_text()
    inception_table = md.split("## Generation (FID, inception")[1].split("## ")[0]
    lenet_table = md.split("## Generation (FID, lenet")[1].split("## ")[0]
    assert "| 1 | incep |" in inception_table and "lenet_" not in inception_table
    assert "| 1 | lenet_b |" in lenet_table and "| 2 | lenet_a |" in lenet_table and "incep" not in lenet_table
    assert "Each table has its own floor" in (results / "leaderboard.html").read_text()
    clusters = entry("clusters", 5.5, "lenet", "aa" * 32, 2.9, 20)  # conditioned on k-means clusters: no labels
    clusters["sampling"]["labels"] = "kmeans"
    (results / "clusters.json").write_text(json.dumps(clusters))
    split = run("leaderboard.py", "--split_labels", cwd=tmp_path)
    md = (results / "leaderboard.md").read_text()
    assert split.returncode == 0 and md.count("## Generation") == 3 and "lenet features (sha256 aaaaaaaaaaaa), unconditional" in md
    unconditional = md.split("aaaaaaaaaaaa), unconditional")[1].split("## ")[0]
    assert "| 1 | lenet_b |" in unconditional and "| 2 | clusters |" in unconditional and "lenet_a" not in unconditional
