"""sample.py / evaluate.py --task inpaint and course, as users run them."""
import json

import numpy as np
import pytest
import torch

from dataio import masks
from dataio.mnist import eval_indices, load_mnist, to_model_range, to_uint8, validation_split
from engine import config
from engine.checkpoint import load_model
from tasks.completion import affine_least_squares, estimate
from engine.trainer import RunPaths, train
from tests.conftest import DATA_ROOT, REPO, TINY, assert_user_error, run


@pytest.fixture(scope="module")
def runs(tmp_path_factory, trained):
    """Checkpoints of a conditional inpainting model and a regression baseline (3 steps each),
    two seeds of the course's ConvMLP regression holding out 200 validation digits, and the
    unconditional tiny_test model; keyed by task."""
    root = tmp_path_factory.mktemp("inpaint_runs")
    out = {"generate": trained / "checkpoints" / "tiny_test" / "final.pt"}
    small_course = ["model.channels=4", "model.width=32", "data.val_size=200", "train.val_every=3"]
    for task, cfg_file, extra in (("inpaint", "inpaint_tiny.yaml", []), ("complete", "regression.yaml", []),
                                  ("course", "course_convmlp.yaml", small_course),
                                  ("course_seed1", "course_convmlp.yaml", small_course + ["train.seed=1"])):
        cfg = config.load(REPO / "configs" / cfg_file, TINY + ["train.steps=3", "train.sample_every=3", *extra])
        assert train(cfg, f"t_{task}", paths=RunPaths.for_name(f"t_{task}", root), progress=False) == "done"
        assert (root / "outputs" / f"t_{task}" / "inpaint" / "panel_0000003.png").is_file()
        out[task] = root / "checkpoints" / f"t_{task}" / "final.pt"
    return out


def _sample(tmp_path, ckpt, name, *args):
    return run("sample.py", "--checkpoint", ckpt, "--student_name", name, "--task", "inpaint", "--n", "12",
               "--data_root", DATA_ROOT, *args, cwd=tmp_path)


def _evaluate(tmp_path, name, *args):
    return run("evaluate.py", "--student_name", name, "--task", "inpaint", "--n_eval", "10", "--data_root", DATA_ROOT,
               *args, cwd=tmp_path)


@pytest.mark.parametrize("task,extra", [("inpaint", ["--mean_of", "2"]), ("complete", []),
                                        ("generate", ["--mask", "box", "--mask_size", "9", "inpaint.dc_repeats=2"])])
def test_inpaint_then_evaluate(runs, tmp_path, task, extra):
    proc = _sample(tmp_path, runs[task], task, *extra)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "outputs" / task / "inpaint"
    c = np.load(out / "completions.npz")
    assert c["images"].shape == (12, 28, 28) and c["images"].dtype == np.uint8 and c["masks"].dtype == bool
    assert np.array_equal(c["indices"], eval_indices(12).numpy())
    truth = load_mnist(DATA_ROOT, train=False)[0][c["indices"]].numpy()
    assert np.array_equal(c["images"][~c["masks"]], truth[~c["masks"]]), "known pixels kept exactly"
    assert (out / "samples.png").is_file()
    meta = json.loads((out / "completions.json").read_text())
    assert meta["task"] == task and meta["n"] == 12 and meta["seconds_per_image"] > 0

    if task == "inpaint":
        again = _sample(tmp_path, runs[task], task + "_again", *extra)
        assert again.returncode == 0
        c2 = np.load(tmp_path / "outputs" / (task + "_again") / "inpaint" / "completions.npz")
        assert np.array_equal(c["images"], c2["images"]), "the seed makes completions reproducible"

    ev = _evaluate(tmp_path, task)
    assert ev.returncode == 0, ev.stderr[-2000:]
    r = json.loads((tmp_path / "results" / f"{task}_inpaint.json").read_text())
    pred, orig, m = c["images"][:10] / 255, truth[:10] / 255, c["masks"][:10]
    mse = np.mean([((p - o)[mm] ** 2).mean() for p, o, mm in zip(pred, orig, m)])
    assert r["hole_mse"] == pytest.approx(mse) and r["n_eval"] == 10 and r["task"] == "inpaint"
    assert r["mask"] == ("box 9" if task == "generate" else "center 12")
    assert 0 < r["hole_ssim"] < 1 and r["whole_ssim"] > r["hole_ssim"]
    assert np.mean(r["hole_mse_per_image"]) == pytest.approx(r["hole_mse"]) and len(r["hole_mse_per_image"]) == 10
    if task == "complete":  # the mask label is checked against the masks, not taken from completions.json
        (out / "completions.json").write_text(json.dumps({**meta, "mask_size": 8}))
        assert _evaluate(tmp_path, task).returncode == 0
        claimed = json.loads((tmp_path / "results" / f"{task}_inpaint.json").read_text())["mask"]
        assert claimed == "custom (not the center masks completions.json names)"
    if task == "inpaint":
        assert _evaluate(tmp_path, task).returncode == 0
        assert json.loads((tmp_path / "results" / f"{task}_inpaint.json").read_text())["hole_mse"] == r["hole_mse"]
        table = run("scripts/inpaint_table.py", "--results", tmp_path / "results", "--against", task, task, cwd=tmp_path)
        assert table.returncode == 0 and "| 1.000x, +0.0000 +- 0.0000 |" in table.stdout, table.stdout + table.stderr


def test_inpaint_bad_input(runs, tmp_path):
    for args, words in [(["--mask_size", "0"], ["no hole"]), (["--mask_size", "28"], ["no context"]),
                        (["--mask", "pixels", "task.mask_fraction=1.0"], ["no context"]),
                        (["model.channels=4"], ["sample.*, inpaint.* and task.mask*"]),
                        (["--sampler", "heun"], ["DDIM"])]:
        assert_user_error(_sample(tmp_path, runs["inpaint"], "bad", *args), *words)
    assert_user_error(_sample(tmp_path, runs["complete"], "bad", "--mean_of", "3"), "inpaint.mean_of", "deterministic")
    assert_user_error(_sample(tmp_path, runs["complete"], "bad", "inpaint.dc_repeats=3"), "inpaint.dc_repeats")
    assert_user_error(_sample(tmp_path, runs["generate"], "bad", "inpaint.mean_at=0.5"), "inpaint.mean_at", "task.name=inpaint")
    assert not (tmp_path / "outputs" / "bad").exists(), "nothing half-written"
    gen = run("sample.py", "--checkpoint", runs["inpaint"], "--num_samples", "2", cwd=tmp_path)
    assert_user_error(gen, "--task inpaint")
    assert_user_error(run("sample.py", "--checkpoint", runs["generate"], "--mean_of", "2", cwd=tmp_path), "--task")

    assert _sample(tmp_path, runs["complete"], "ok").returncode == 0
    assert_user_error(_evaluate(tmp_path, "ok", "--seed", "1"), "other test digits")
    assert_user_error(_evaluate(tmp_path, "ok", "--n_eval", "50"), "fewer than --n_eval")
    path = tmp_path / "outputs" / "ok" / "inpaint" / "completions.npz"
    c = dict(np.load(path))
    c["images"][0, 0, 0] ^= 1  # a context pixel: completions must keep it
    np.savez(tmp_path / "tampered.npz", **c)
    assert_user_error(_evaluate(tmp_path, "ok", "--samples", tmp_path / "tampered.npz"), "known (unmasked) pixels")
    np.savez(tmp_path / "partial.npz", images=c["images"])
    assert_user_error(_evaluate(tmp_path, "ok", "--samples", tmp_path / "partial.npz"), "indices, masks")
    assert_user_error(_evaluate(tmp_path, "nobody"), "sample.py --task inpaint")
    assert not (tmp_path / "results" / "ok_inpaint.json").exists()


@pytest.fixture(scope="module")
def course_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("course")
    proc = run("scripts/make_course_data.py", "--out", d, "--data_root", DATA_ROOT, "--n_test", "12", cwd=d)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return d


def test_course_data_is_masked_like_the_handout(course_data):
    test, truth = np.load(course_data / "test_data.npz")["images"], np.load(course_data / "test_truth.npz")["images"]
    assert test.shape == truth.shape == (12, 28, 28) and test.dtype == np.uint8
    assert (test[:, 10:18, 10:18] == 0).all()
    keep = np.ones((28, 28), bool)
    keep[10:18, 10:18] = False
    assert np.array_equal(test[:, keep], truth[:, keep])
    assert np.array_equal(truth, load_mnist(DATA_ROOT, train=False)[0][:12].numpy())
    train = np.load(course_data / "train_data.npz")
    assert train["images"].shape == (60000, 28, 28) and (train["masked"][:, 10:18, 10:18] == 0).all()


@pytest.mark.parametrize("layout", ["uint8", "float784"])
def test_course_export_keeps_layout_dtype_order(runs, course_data, tmp_path, layout):
    masked = np.load(course_data / "test_data.npz")["images"]
    inp = masked if layout == "uint8" else (masked.reshape(12, 784) / 255).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=inp)
    proc = run("sample.py", "--checkpoint", runs["complete"], "--task", "course", "--input", tmp_path / "in.npz",
               "--out", tmp_path / "sub.npz", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    z = np.load(tmp_path / "sub.npz")
    assert z.files == ["x"] and z["x"].shape == inp.shape and z["x"].dtype == inp.dtype
    sub = z["x"].reshape(12, 28, 28)
    keep = np.ones((28, 28), bool)
    keep[10:18, 10:18] = False
    assert np.array_equal(sub[:, keep], inp.reshape(12, 28, 28)[:, keep]), "context and order unchanged"
    if layout == "float784":  # the hole holds k / 255 values: completions come out as rounded uint8 levels
        assert np.allclose(sub[:, 10:18, 10:18] * 255, np.rint(sub[:, 10:18, 10:18] * 255), atol=1e-4)
    score = run("evaluate.py", "--task", "course", "--pred", tmp_path / "sub.npz", "--target",
                course_data / "test_truth.npz", "--student_name", "c", cwd=tmp_path)
    assert score.returncode == 0, score.stderr[-2000:]
    truth = np.load(course_data / "test_truth.npz")["images"] / 255
    expected = ((sub.astype(np.float64) / (255 if layout == "uint8" else 1) - truth)[:, 10:18, 10:18] ** 2).mean()
    assert json.loads((tmp_path / "results" / "c_course.json").read_text())["mse_center8"] == pytest.approx(expected)


def test_course_bad_input(runs, tmp_path):
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 28, 28), np.uint8), b=np.zeros((2, 28, 28), np.uint8))
    np.savez(tmp_path / "small.npz", images=np.zeros((2, 27, 27), np.uint8))
    np.savez(tmp_path / "ints.npz", images=np.zeros((2, 28, 28), np.int64))
    base = ["--checkpoint", runs["complete"], "--task", "course", "--out", tmp_path / "sub.npz"]
    assert_user_error(run("sample.py", *base, "--input", tmp_path / "two.npz", cwd=tmp_path), "no 'images'")
    assert_user_error(run("sample.py", *base, "--input", tmp_path / "small.npz", cwd=tmp_path), "28 x 28")
    assert_user_error(run("sample.py", *base, "--input", tmp_path / "ints.npz", cwd=tmp_path), "uint8")
    assert_user_error(run("sample.py", *base, "--input", tmp_path / "none.npz", cwd=tmp_path), "not found")
    assert_user_error(run("sample.py", *base[:4], cwd=tmp_path), "--input")
    assert not (tmp_path / "sub.npz").exists()
    np.savez(tmp_path / "three.npz", images=np.zeros((3, 28, 28), np.uint8))
    np.savez(tmp_path / "two_ok.npz", images=np.zeros((2, 28, 28), np.uint8))
    assert_user_error(run("evaluate.py", "--task", "course", "--pred", tmp_path / "three.npz", "--target",
                          tmp_path / "two_ok.npz", cwd=tmp_path), "one to one")


def test_seed_000_config_runs_as_written(tmp_path):
    """configs/inpaint.yaml unchanged but for the run length: two steps of its 6.5M UNet, a panel."""
    cfg = config.load(REPO / "configs" / "inpaint.yaml", [f"data.root={DATA_ROOT}", "train.steps=2",
                                                          "train.batch_size=16", "train.sample_every=2",
                                                          "sample.steps=2"])
    assert (cfg.diffusion.prediction, cfg.diffusion.timesteps, cfg.task.hole_weight, cfg.inpaint.dc_repeats) == \
        ("v", 400, 5.0, 2)
    assert train(cfg, "seed000", paths=RunPaths.for_name("seed000", tmp_path), progress=False) == "done"
    assert (tmp_path / "outputs" / "seed000" / "inpaint" / "panel_0000002.png").is_file()


def test_an_ensemble_averages_its_members_and_fits_weights_on_validation(runs, tmp_path):
    """Two checkpoints with weights 1 and 0 complete exactly like the first alone; weights 0.5/0.5
    give the rounded mean of the members' float estimates; fit_ensemble's weights sum to 1 and score
    no worse than either member or their plain mean on the digits they were fitted to."""
    a, b = runs["course"], runs["course_seed1"]
    assert _sample(tmp_path, a, "solo").returncode == 0
    assert _sample(tmp_path, a, "e10", "--checkpoint", a, b, "--weights", "1", "0").returncode == 0
    proc = _sample(tmp_path, a, "e55", "--checkpoint", a, b)
    assert proc.returncode == 0, proc.stderr[-2000:]
    read = lambda n: np.load(tmp_path / "outputs" / n / "inpaint" / "completions.npz")["images"]  # noqa: E731
    assert np.array_equal(read("solo"), read("e10"))
    meta = json.loads((tmp_path / "outputs" / "e55" / "inpaint" / "completions.json").read_text())
    assert meta["method"] == "ensemble of 2 one-pass regressions, weights 0.50/0.50" and meta["weights"] == [0.5, 0.5]
    assert meta["checkpoint"] == [str(a), str(b)]

    digits = load_mnist(DATA_ROOT, train=False)[0][eval_indices(12)]
    hole = masks.make("center8", 12)
    x0 = to_model_range(digits)
    mean = sum(0.5 * estimate(m, c, x0, hole, torch.Generator()) for _, c, m in map(load_model, (a, b)))
    diff = read("e55").astype(int) - to_uint8(mean).numpy()  # thread counts may move a value across a rounding edge
    assert np.abs(diff).max() <= 1 and (diff == 0).mean() > 0.99

    fit = run("scripts/fit_ensemble.py", a, b, "--val_size", "100", "--out", tmp_path / "ens.json",
              "--data_root", DATA_ROOT, cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr[-2000:]
    e = json.loads((tmp_path / "ens.json").read_text())
    assert sum(e["weights"]) == pytest.approx(1) and e["val_size"] == 100
    assert e["fitted_val_hole_mse"] <= min(e["equal_val_hole_mse"], *e["member_val_hole_mse"].values()) + 1e-12
    assert "--weights" in fit.stdout and "--task course" in fit.stdout

    assert_user_error(_sample(tmp_path, a, "bad", "--checkpoint", a, b, "--weights", "1"), "2 checkpoints")
    assert_user_error(run("sample.py", "--checkpoint", a, b, cwd=tmp_path), "generate takes one")
    assert_user_error(_sample(tmp_path, a, "bad", "--checkpoint", a, runs["complete"]), "different masks")
    assert_user_error(run("scripts/fit_ensemble.py", a, runs["complete"], "--data_root", DATA_ROOT, cwd=tmp_path),
                      "val_size")
    assert not (tmp_path / "outputs" / "bad").exists()


def test_affine_least_squares_recovers_a_known_mix():
    rng = np.random.default_rng(0)
    preds = rng.random((3, 500))
    target = 0.25 * preds[0] + 0.75 * preds[2]
    assert np.allclose(affine_least_squares(preds, target), [0.25, 0, 0.75])
    noisy = target + rng.normal(0, 0.1, 500)
    w = affine_least_squares(preds, noisy)
    ref = np.linalg.lstsq(np.stack([preds[0] - preds[2], preds[1] - preds[2]], 1), noisy - preds[2], rcond=None)[0]
    assert np.allclose(w, [ref[0], ref[1], 1 - ref.sum()]), "the same as eliminating the constraint"


def test_trivial_completions_score_their_closed_forms(tmp_path):
    proc = run("scripts/trivial_completions.py", "--n", "12", "--val_size", "100", "--data_root", DATA_ROOT, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("zero_fill", "pixel_mean"):
        assert _evaluate(tmp_path, name).returncode == 0
    truth = load_mnist(DATA_ROOT, train=False)[0][eval_indices(10)].double().div(255)[:, 10:18, 10:18]
    zero = json.loads((tmp_path / "results" / "zero_fill_inpaint.json").read_text())
    assert zero["hole_mse"] == pytest.approx(float((truth ** 2).mean())) and zero["mask"] == "center 8"
    train = load_mnist(DATA_ROOT, train=True)[0]
    fill = train[validation_split(60000, 100)[0]].double().mean(0)[10:18, 10:18].round() / 255
    mean = json.loads((tmp_path / "results" / "pixel_mean_inpaint.json").read_text())
    assert mean["hole_mse"] == pytest.approx(float(((truth - fill) ** 2).mean()))
    table = run("scripts/inpaint_table.py", "--results", tmp_path / "results", "--against", "zero_fill", "pixel_mean",
                cwd=tmp_path)
    assert table.returncode == 0 and "| center 8 | 10 | pixel_mean | per-pixel training mean |" in table.stdout
    assert "| 0.0 |" in table.stdout, "the training minutes column"
    other = run("scripts/trivial_completions.py", "--n", "12", "--val_size", "100", "--mask", "center12", "--suffix",
                "_12", "--data_root", DATA_ROOT, cwd=tmp_path)
    assert other.returncode == 0, other.stderr[-2000:]
    for name in ("zero_fill", "pixel_mean"):
        written = json.loads((tmp_path / "outputs" / f"{name}_12" / "inpaint" / "completions.json").read_text())
        kept = json.loads((tmp_path / "outputs" / name / "inpaint" / "completions.json").read_text())
        assert (written["student_name"], written["mask_size"], kept["mask_size"]) == (f"{name}_12", 12, 8)
