"""evaluate.py and leaderboard.py end to end, on real MNIST digits (installed in CI)."""
import csv
import json

import numpy as np
import pytest
from PIL import Image

from dataio.mnist import load_mnist
from metrics import features
from grading.ranking import unranked_reason
from metrics.evaluation import reference
from metrics.fid import frechet_distance, gaussian_stats
from tests.conftest import DATA_ROOT, REPO, assert_user_error, run


@pytest.fixture(scope="module")
def cache(fid_cache):
    return fid_cache


@pytest.fixture(scope="module")
def ref(cache):
    net = features.load_lenet()
    return reference(lambda x: features.extract(net, x, progress=False)[0], DATA_ROOT, cache, features.sha256())


def _evaluate(tmp_path, cache, *args):
    return run("evaluate.py", *args, "--data_root", DATA_ROOT, "--cache_dir", cache, "--no-progress", cwd=tmp_path)


def test_shipped_feature_net_is_the_documented_one():
    info = json.loads(features.WEIGHTS.with_suffix(".json").read_text())
    assert features.sha256() == info["sha256"]
    assert features.WEIGHTS.stat().st_size < 600_000
    test_x, test_y = load_mnist(DATA_ROOT, train=False)
    _, probs = features.extract(features.load_lenet(), test_x.numpy(), progress=False)
    acc = float((probs.argmax(1) == test_y.numpy()).mean())
    assert acc == pytest.approx(info["test_accuracy"], abs=2e-4) and acc >= 0.993
    documented = (REPO / "docs" / "evaluation.md").read_text()
    assert f"{info['test_accuracy'] * 100:.2f}%" in documented
    assert info["sha256"] in documented


def test_fid_grows_with_noise(ref):
    test_x, _ = load_mnist(DATA_ROOT, train=False)
    digits = test_x.numpy()[:1000].astype(np.float64)
    rng = np.random.default_rng(0)
    net, fids = features.load_lenet(), []
    for sigma in (0, 24, 64, 128):
        noisy = np.clip(digits + rng.normal(0, sigma, digits.shape), 0, 255).round().astype(np.uint8)
        f, _ = features.extract(net, noisy, progress=False)
        fids.append(frechet_distance(*gaussian_stats(f), ref["mu"], ref["sigma"]))
    assert all(a < b for a, b in zip(fids, fids[1:])), fids


def test_real_digits_score_the_floor_are_flagged_as_copies_and_4999_are_not_ranked(tmp_path, cache, ref):
    train_x, _ = load_mnist(DATA_ROOT, train=True)
    real = train_x.numpy()[np.random.default_rng(123).choice(len(train_x), 5000, replace=False)]
    np.savez(tmp_path / "real.npz", images=real)
    proc = _evaluate(tmp_path, cache, "--student_name", "real", "--samples", tmp_path / "real.npz")
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads((tmp_path / "results" / "real.json").read_text())
    floor_mean, floor_std = ref["floor"].mean(), ref["floor"].std(ddof=1)
    assert r["num_samples"] == 5000 and len(r["class_histogram"]) == 10
    assert r["copy_share"] == 1.0 and r["near_duplicate_share"] < 0.02  # training digits: not a model's work
    assert not r["ranked"] and r["not_ranked_reason"] == "flagged: 100.0% copies of training digits"
    assert abs(r["fid"] - floor_mean) < 5 * floor_std + 3 * r["fid_bootstrap_std"], (r["fid"], floor_mean, floor_std)
    assert r["precision"] > 0.6 and r["recall"] > 0.6 and r["class_kl_to_uniform"] < 0.01
    assert r["mean_confidence"] > 0.98 and r["feature_net_sha256"] == features.sha256()

    np.savez(tmp_path / "short.npz", images=real[:500])  # the rule at its edges: below
    proc = _evaluate(tmp_path, cache, "--student_name", "short", "--samples", tmp_path / "short.npz")
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads((tmp_path / "results" / "short.json").read_text())
    assert r["ranked"] is False and "exactly 5000" in r["not_ranked_reason"]
    entry = lambda n, **more: {"num_samples": n, **more}
    assert unranked_reason(entry(5000)) is None and unranked_reason(entry(5000, verified=True, flags=[])) is None
    assert "4999 samples" in unranked_reason(entry(4999)) and unranked_reason(entry(5001))
    assert unranked_reason(entry(5000, verified=False, provenance={"matched": 60, "checked": 64})) == \
        "not verified: 60 of 64 regenerated samples match"

    board = run("leaderboard.py", cwd=tmp_path)
    assert board.returncode == 0, board.stderr
    md = (tmp_path / "results" / "leaderboard.md").read_text()
    assert "- real: flagged: 100.0% copies of training digits" in md and "- short: 500 samples" in md
    assert (tmp_path / "results" / "leaderboard.html").read_text().startswith("<!doctype html>")


def test_evaluate_bad_inputs(tmp_path, cache):
    assert_user_error(_evaluate(tmp_path, cache, "--student_name", "../x"), "not allowed")
    assert_user_error(_evaluate(tmp_path, cache, "--student_name", "nobody"), "no samples for nobody")
    folder = tmp_path / "outputs" / "odd" / "samples"
    folder.mkdir(parents=True)
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(folder / "00000.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(folder / "00001.png")
    assert_user_error(_evaluate(tmp_path, cache, "--student_name", "odd"), "00001.png is 32x32")
    (folder / "00001.png").write_bytes(b"\x89PNG broken")
    assert_user_error(_evaluate(tmp_path, cache, "--student_name", "odd"), "00001.png is not a readable PNG")
    np.savez(tmp_path / "wrong.npz", pictures=np.zeros((3, 28, 28), np.uint8), labels=np.zeros(3))
    assert_user_error(_evaluate(tmp_path, cache, "--student_name", "w", "--samples", tmp_path / "wrong.npz"),
                      "no 'images'")
    np.savez(tmp_path / "float.npz", images=np.zeros((3, 28, 28)))
    assert_user_error(_evaluate(tmp_path, cache, "--student_name", "w", "--samples", tmp_path / "float.npz"), "uint8")
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").iterdir())


def test_failed_evaluation_keeps_the_previous_result(tmp_path, cache):
    results = tmp_path / "results"
    results.mkdir()
    (results / "keep.json").write_text('{"old": true}')
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    assert_user_error(_evaluate(tmp_path, cache, "--student_name", "keep", "--samples", tmp_path / "broken.npz"),
                      "not a readable npz")
    assert (results / "keep.json").read_text() == '{"old": true}'


def _result(name, fid, kid=0.01, n=5000, std=0.1):
    return {"student_name": name, "num_samples": n, "fid": fid, "fid_bootstrap_std": std, "kid_mean": kid}


def test_leaderboard_ranks_and_survives_bad_files(tmp_path):
    empty = run("leaderboard.py", cwd=tmp_path)
    assert empty.returncode == 0 and "no results yet" in empty.stdout
    res = tmp_path / "results"
    for r in [_result("c", 9.0), _result("a", 3.0, kid=0.02), _result("b", 3.0, kid=0.01), _result("d", 3.1),
              _result("e", 1.0, n=4999)]:
        (res / f"{r['student_name']}.json").write_text(json.dumps(r))
    (res / "broken.json").write_text("{not json")
    (res / "partial.json").write_text('{"student_name": "p"}')
    proc = run("leaderboard.py", cwd=tmp_path)
    assert proc.returncode == 0
    assert "broken.json" in proc.stderr and "partial.json" in proc.stderr
    rows = [l.split("|")[1:3] for l in (res / "leaderboard.md").read_text().splitlines()[4:8]]
    assert [(int(r), n.strip()) for r, n in rows] == [(1, "b"), (2, "a"), (3, "d"), (4, "c")]
    md = (res / "leaderboard.md").read_text()
    assert "~ a" in md.splitlines()[4] and "- e: 4999 samples" in md
    assert "~" not in md.splitlines()[7], "c is far from d"
    csv_lines = (res / "leaderboard.csv").read_text().splitlines()
    assert csv_lines[0].startswith("rank,student_name,fid") and len(csv_lines) == 6


def test_results_table_names_each_run_and_its_config(tmp_path):
    import torch

    from engine import config
    from models.model import num_parameters
    from tasks import build_network
    weights = sum(t.numel() for t in build_network(config.load(REPO / "configs" / "tiny.yaml")).parameters())
    assert num_parameters(torch.nn.Linear(3, 4)) == 16 and 0 < weights < 10 ** 6
    (tmp_path / "checkpoints" / "own").mkdir(parents=True)
    (tmp_path / "checkpoints" / "own" / "config.yaml").write_text((REPO / "configs" / "tiny.yaml").read_text())
    (tmp_path / "results").mkdir()
    sampled = {"sampler": "ddim", "steps": 7, "guidance": 0, "checkpoint": "checkpoints/own/final.pt"}
    for name in "own", "drawn_from_own":  # the second's samples came from own's checkpoint (sample.py --student_name)
        (tmp_path / "results" / f"{name}.json").write_text(json.dumps(
            {**_result(name, 12.34, std=0.56), "precision": 0.7, "recall": 0.8, "sampling": sampled}))
    proc = run("scripts/results_table.py", "own", "drawn_from_own", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = proc.stdout.splitlines()[2:]
    assert rows == [f"| {n} | unet | {weights / 1e6:.2f}M | v, lognormal | 1500 x 16, 0.001 | ddim x7 | 12.3 +- 0.6 | "
                    "0.700 | 0.800 |" for n in ("own", "drawn_from_own")]
    assert_user_error(run("scripts/results_table.py", "own", "missing", cwd=tmp_path), "missing: need results")


def test_leaderboard_ranks_inpainting_within_each_mask(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    for name, mask, mse, sem in [("x", "center 8", 0.05, 0.001), ("y", "center 8", 0.03, 0.001),
                                 ("z", "center 12", 0.09, 0.001), ("w", "center 8", 0.0305, 0.001)]:
        (res / f"{name}_inpaint.json").write_text(json.dumps({
            "student_name": name, "task": "inpaint", "mask": mask, "method": "m", "hole_mse": mse,
            "hole_mse_sem": sem, "hole_psnr": 10.0, "hole_l1": 0.1, "hole_ssim": 0.5, "n_eval": 500}))
    # other test digits: ranked apart; per-digit errors: noise judged on the paired difference, here
    # always +0.01 (standard error 0), though the two standard errors alone would call them even
    per_digit = [0.1, 0.2, 0.3, 0.4]
    for name, mask, seed, errors in [("s", "center 8", 7, per_digit), ("p", "half", 42, per_digit),
                                     ("q", "half", 42, [e + 0.01 for e in per_digit])]:
        (res / f"{name}_inpaint.json").write_text(json.dumps({
            "student_name": name, "task": "inpaint", "mask": mask, "method": "m", "hole_mse": sum(errors) / 4,
            "hole_mse_sem": 0.065, "hole_psnr": 10.0, "hole_l1": 0.1, "hole_ssim": 0.5, "n_eval": 4, "seed": seed,
            "hole_mse_per_image": errors}))
    (res / "v_inpaint.json").write_text(json.dumps({"student_name": "v", "task": "inpaint"}))
    proc = run("leaderboard.py", cwd=tmp_path)
    assert proc.returncode == 0 and "v_inpaint.json" in proc.stderr
    rows = list(csv.DictReader(open(res / "leaderboard_inpaint.csv")))
    assert [(r["mask"], r["rank"], r["student_name"], r["seed"]) for r in rows] == [
        ("center 12", "1", "z", "42"), ("center 8", "1", "s", "7"), ("center 8", "1", "y", "42"),
        ("center 8", "2", "w", "42"), ("center 8", "3", "x", "42"), ("half", "1", "p", "42"), ("half", "2", "q", "42")]
    assert rows[2]["noise"] == "~ w" and rows[4]["noise"] == "" and rows[5]["noise"] == rows[6]["noise"] == ""
    assert "## Inpainting" in (res / "leaderboard.md").read_text()
    assert "<h2>Inpainting</h2>" in (res / "leaderboard.html").read_text()


def test_label_agreement_scores_the_asked_digits_against_the_test_digits_ceiling(tmp_path, cache):
    from grading.submissions import label_agreement

    test_x, test_y = load_mnist(DATA_ROOT, train=False)
    x, y = test_x.numpy(), test_y.numpy()
    by_digit = [x[y == d] for d in range(10)]
    balanced = np.stack([by_digit[i % 10][i // 10] for i in range(200)])  # sample i shows digit i % 10
    net = features.load_lenet()
    probs = lambda images: features.extract(net, images, progress=False)[1]
    shifted = label_agreement(probs(np.roll(balanced, 1, 0)), {"num_classes": 10, "digit": -1})
    assert shifted["label_agreement"] < 0.03, "every sample shows the digit before the one asked for"
    sevens = label_agreement(probs(by_digit[7][:200]), {"num_classes": 10, "digit": 7})
    assert sevens["label_agreement"] > 0.97
    assert label_agreement(probs(balanced), {"num_classes": 0, "digit": -1}) == {}
    split = {"num_classes": 40, "labels": "digits_kmeans", "digit": -1}  # class c shows digit c % 10
    assert label_agreement(probs(balanced), split)["label_agreement"] > 0.97

    printed = {}
    for name, meta in [("right", {"num_classes": 10, "digit": -1, "guidance": 0.5}),
                       ("uncond", {"num_classes": 0, "digit": -1}),
                       ("auto", {"num_classes": 0, "digit": -1, "autoguidance": 1.6}),
                       ("clusters", {"num_classes": 20, "labels": "kmeans", "digit": -1, "guidance": 1.0})]:
        out = tmp_path / "outputs" / name
        out.mkdir(parents=True)
        np.savez(out / "samples.npz", images=balanced)
        (out / "samples.json").write_text(json.dumps(meta))
        proc = _evaluate(tmp_path, cache, "--student_name", name)
        assert proc.returncode == 0, proc.stderr[-2000:]
        printed[name] = proc.stdout
    r = {n: json.loads((tmp_path / "results" / f"{n}.json").read_text()) for n in printed}
    assert r["right"]["label_agreement_test"] == features.test_accuracy()  # checked against the test digits above
    assert r["right"]["label_agreement"] > 0.97 and "label_agreement" not in r["uncond"]
    assert "label_agreement" not in r["clusters"], "cluster indices are not digits"
    assert "label agreement" in printed["right"] and "label agreement" not in printed["uncond"]
    board = run("leaderboard.py", "--results", tmp_path / "results", cwd=tmp_path)
    assert board.returncode == 0, board.stderr[-2000:]
    rows = {row["student_name"]: row for row in csv.DictReader(open(tmp_path / "results" / "leaderboard.csv"))}
    assert rows["right"]["labels"] == "yes, w 0.5" and rows["uncond"]["labels"] == "no"
    assert rows["auto"]["labels"] == "no, autoguidance 1.6"
    assert rows["clusters"]["labels"] == "no (20 k-means clusters), w 1"
    assert rows["right"]["label_agreement"].endswith("%") and rows["uncond"]["label_agreement"] == ""


def test_reference_train_scores_against_training_digits_and_leaves_the_leaderboard_alone(tmp_path, cache):
    from metrics.evaluation import fid_with_spread, training_floor, training_reference, training_reference_picks

    train = load_mnist(DATA_ROOT, train=True)[0].numpy()
    inside = train[training_reference_picks(len(train))[:300]]  # digits the reference itself holds
    out = tmp_path / "outputs" / "alice"
    out.mkdir(parents=True)
    np.savez(out / "samples.npz", images=inside)
    proc = _evaluate(tmp_path, cache, "--student_name", "alice", "--reference", "train")
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads((tmp_path / "results" / "reference_train" / "alice.json").read_text())
    ref = training_reference(DATA_ROOT)
    net = features.load_lenet()
    assert r["fid"] == pytest.approx(fid_with_spread(features.extract(net, inside, progress=False)[0], ref)[0])
    real = training_floor(DATA_ROOT, 300, ref)
    assert r["fid_real_digits"] == pytest.approx(real) and r["reference"] == "train" and r["num_samples"] == 300
    noisy = np.clip(inside + np.random.default_rng(0).normal(0, 60, inside.shape), 0, 255).astype(np.uint8)
    assert fid_with_spread(features.extract(net, noisy, progress=False)[0], ref)[0] > 3 * real
    assert "against training digits" in proc.stdout
    assert not (tmp_path / "results" / "alice.json").exists(), "the leaderboard's results/NAME.json is the test score"
