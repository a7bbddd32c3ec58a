"""The two-moons test bed: data, metrics against scipy and closed forms, the MLP through the shared
trainer, the seed-compatible command line and the evaluation path."""
import json

import numpy as np
import pytest
import scipy.stats
import torch

from conftest import REPO, assert_user_error, run
from dataio.moons import make_moons, sample_true
from metrics import two_sample

SMALL_RUN = ["--train-steps", "200", "--batch-size", "128", "--sample-steps", "20", "--num-samples", "400",
             "--log-every", "50", "--config", str(REPO / "configs" / "moons_seed.yaml"), "--no-progress"]


@pytest.mark.parametrize("n, noise, seed", [(50_000, 0.05, 42), (501, 0.2, 3), (10, 0.0, 0)])
def test_make_moons_is_scikit_learns(n, noise, seed):
    from sklearn.datasets import make_moons as sklearn_moons

    np.testing.assert_array_equal(make_moons(n, noise, seed), sklearn_moons(n, noise=noise, random_state=seed)[0])


def test_true_law_lies_on_the_two_half_circles():
    x = sample_true(4000, 0.0, 0)
    upper = np.abs(np.hypot(*x.T) - 1) < 1e-12
    lower = np.abs(np.hypot(x[:, 0] - 1, x[:, 1] - 0.5) - 1) < 1e-12  # centre (1, 0.5)
    assert (upper | lower).all() and (x[upper, 1] >= 0).all() and (x[lower, 1] <= 0.5).all()
    assert abs(upper.mean() - 0.5) < 0.03  # each moon with probability 1/2, independently
    angles = np.arccos(np.clip(x[upper, 0], -1, 1))
    assert abs(angles.mean() - np.pi / 2) < 0.05 and abs(angles.std() - np.pi / 12 ** 0.5) < 0.05  # U(0, pi)


def _mmd_reference(x, y):
    """The definition written out: pooled median over distinct pairs, five RBF kernels, V-statistic."""
    z = np.concatenate([x, y])
    d = np.sqrt(((z[:, None] - z[None]) ** 2).sum(-1))
    median = np.median(d[np.triu_indices(len(z), 1)])
    k = sum(np.exp(-d ** 2 / (2 * (f * median) ** 2)) for f in (0.25, 0.5, 1, 2, 4)) / 5
    n = len(x)
    return np.sqrt(k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean())


def test_metrics_are_zero_for_identical_sets_and_grow_with_a_shift():
    x = make_moons(600, 0.05, 1)
    assert two_sample.distances(x, x) == {"mmd": 0.0, "energy": 0.0, "sw1": 0.0}
    near, far = (two_sample.distances(x, x + [shift, 0]) for shift in (0.1, 0.3))
    for k in two_sample.METRICS:
        assert 0 < near[k] < far[k]
    # a shift of every point by c moves each projection by c cos(angle): W1 = c E|cos| = 2c/pi over the circle
    assert far["sw1"] == pytest.approx(0.3 * 2 / np.pi, rel=0.1)


def test_mmd_matches_its_written_out_definition():
    x, y = make_moons(300, 0.1, 1), make_moons(200, 0.1, 2) + [0.05, 0.0]
    assert two_sample.mmd(x, y) == pytest.approx(_mmd_reference(x, y), rel=1e-9)


def test_energy_distance_matches_scipy_in_1d():
    g = np.random.default_rng(0)
    u, v = g.normal(size=300), g.normal(1, 2, size=200)
    assert two_sample.energy_distance(u, v) == pytest.approx(scipy.stats.energy_distance(u, v), rel=1e-10)


def test_sliced_wasserstein_matches_scipy_over_the_same_projections():
    x, y = make_moons(300, 0.05, 1), make_moons(250, 0.1, 2)
    dirs = two_sample.projections(2, 16, seed=3).numpy()
    expected = np.mean([scipy.stats.wasserstein_distance(x @ d, y @ d) for d in dirs])
    assert two_sample.sliced_wasserstein(x, y, n_proj=16, seed=3) == pytest.approx(expected, rel=1e-10)


def test_short_training_lowers_the_loss(tmp_path):
    from engine import config
    from engine.trainer import RunPaths, train

    cfg = config.load(REPO / "configs" / "moons_seed.yaml",
                      ["train.steps=200", "train.batch_size=128", "train.log_every=50", "model.width=64"])
    paths = RunPaths.for_name("m", tmp_path)
    assert train(cfg, "m", paths=paths, progress=False) == "done"
    rows = (paths.log).read_text().splitlines()[1:]
    losses = [float(r.split("\t")[2]) for r in rows]
    assert len(losses) == 4 and losses[-1] < 0.8 * losses[0], losses
    ckpt = torch.load(paths.final, weights_only=False)
    assert ckpt["config"]["data"]["name"] == "moons" and ckpt["config"]["model"]["name"] == "mlp"


def test_seed_flags_map_onto_the_config():
    import moons

    args = moons.parse(["--run", "--train-steps", "40000", "--batch-size", "512", "--lr", "1e-3", "--log-every",
                        "500", "--sample-steps", "1000", "--num-samples", "5000", "--seed", "42",
                        "--train-use-ema", "--sample-use-ema", "--ema-decay", "0.99"])
    assert args.run and args.train_use_ema and args.sample_use_ema
    flags = {flag: getattr(args, flag) for flag in moons.FLAGS}
    assert flags == {"train_steps": 40000, "batch_size": 512, "lr": 1e-3, "log_every": 500, "sample_steps": 1000,
                     "num_samples": 5000, "seed": 42, "ema_decay": 0.99}


def test_floor_is_the_mean_and_std_of_true_draws_and_is_cached(tmp_path, monkeypatch):
    from dataio import moons as moons_data
    from tasks import moons

    monkeypatch.setattr(moons_data, "TARGET_SIZE", 300)  # the shipped 5,000 x 10 draws take a minute here
    monkeypatch.setattr(moons, "FLOOR_SEEDS", 3)
    got = moons.floor(0.1, tmp_path)
    draws = [two_sample.distances(moons_data.target(0.1), moons_data.sample_true(300, 0.1, s)) for s in range(3)]
    for k in two_sample.METRICS:
        assert got[f"{k}_floor"] == pytest.approx(np.mean([d[k] for d in draws]), rel=1e-12)
        assert got[f"{k}_floor_std"] == pytest.approx(np.std([d[k] for d in draws]), rel=1e-12)
    path = moons.floor_path(0.1, tmp_path)
    assert path.name == "moons_floor_noise0.1_n300_seeds3.json" and json.loads(path.read_text()) == got
    path.write_text(json.dumps({**got, "mmd_floor": 1.0}))
    assert moons.floor(0.1, tmp_path)["mmd_floor"] == 1.0, "read from the cache, not recomputed"


def test_moons_run_trains_samples_scores_and_plots(tmp_path):
    from tasks import moons

    # a known floor in the cache (its computation is tested above; the real one takes a minute here)
    floor = {f"{k}_floor{stat}": value for k in two_sample.METRICS for stat, value in (("", 0.01), ("_std", 0.001))}
    path = moons.floor_path(0.05, tmp_path / "data" / "fid_cache")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(floor))
    proc = run("moons.py", "--run", *SMALL_RUN, "--sample-use-ema", "--seed", "7", "--student_name", "m",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "MMD" in proc.stdout and "SW1" in proc.stdout
    for f in ("samples.npz", "samples.json", "moons.png", "generated.png", "reverse.png"):
        assert (tmp_path / "outputs" / "m" / f).stat().st_size > 0, f
    points = np.load(tmp_path / "outputs" / "m" / "samples.npz")["points"]
    assert points.shape == (400, 2) and np.isfinite(points).all()
    result = json.loads((tmp_path / "results" / "m.json").read_text())
    assert result["task"] == "moons" and result["num_samples"] == 400 and result["sampling"]["ema"]
    for k in two_sample.METRICS:
        assert result[f"{k}_floor"] == 0.01 and result[f"{k}_x_floor"] == pytest.approx(result[k] / 0.01)

    # the same checkpoint through sample.py and evaluate.py gives the same points and scores
    proc = run("sample.py", "--checkpoint", "checkpoints/m/final.pt", "--student_name", "m2", "--num_samples", "400",
               "--steps", "20", "--seed", "7", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "outputs" / "m2" / "samples.npz")["points"], points)
    proc = run("evaluate.py", "--student_name", "m2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    again = json.loads((tmp_path / "results" / "m2.json").read_text())
    assert {k: again[k] for k in two_sample.METRICS} == {k: result[k] for k in two_sample.METRICS}
    proc = run("leaderboard.py", cwd=tmp_path)  # moons results are not MNIST entries: skipped without warnings
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr


def test_bad_input(tmp_path):
    assert_user_error(run("moons.py", *SMALL_RUN, cwd=tmp_path), "--run")
    assert_user_error(run("moons.py", "--run", *SMALL_RUN, "model.name=unet", cwd=tmp_path), "model.name")
    assert_user_error(run("moons.py", "--run", *SMALL_RUN, "sample.clip_x0=true", cwd=tmp_path), "sample.clip_x0")
    assert_user_error(run("moons.py", "--run", *SMALL_RUN, "--config", str(REPO / "configs" / "tiny.yaml"),
                          cwd=tmp_path), "moons.py runs two-moons configs")
