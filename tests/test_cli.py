"""The command-line scripts as users run them: files written, bad input refused cleanly."""
import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from engine import checkpoint
from tests.conftest import TINY, assert_user_error, run


@pytest.fixture(scope="module")
def ckpt(trained):
    return trained / "checkpoints" / "tiny_test" / "final.pt"


def test_sample_writes_exactly_n_files_and_replaces_old_runs(ckpt, tmp_path):
    args = ["--checkpoint", ckpt, "--student_name", "bob", "--steps", "3", "--batch_size", "4", "--seed", "1",
            "--sampler", "ddim"]  # deterministic: the first images depend only on their initial noise
    proc = run("sample.py", *args, "--num_samples", "7", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "\r" not in proc.stderr, "not a terminal: plain progress lines, not a live bar"
    lines = [l.split(",")[0] for l in proc.stderr.splitlines()]
    assert 1 <= len(lines) <= 2 and lines[-1] == "ddim x3: 7/7 images (100%)", lines
    out = tmp_path / "outputs" / "bob"
    pngs = sorted((out / "samples").iterdir())
    assert [p.name for p in pngs] == [f"{i:05d}.png" for i in range(7)]
    images = np.load(out / "samples.npz")["images"]
    assert images.shape == (7, 28, 28) and images.dtype == np.uint8
    for p, img in zip(pngs, images):
        assert np.array_equal(np.array(Image.open(p)), img)
    meta = json.loads((out / "samples.json").read_text())
    assert meta["num_samples"] == 7 and meta["sampler"] == "ddim" and meta["steps"] == 3 and meta["seed"] == 1
    assert meta["checkpoint"] == str(ckpt) and meta["ema"] is True
    assert Image.open(out / "grid.png").size[0] > 28

    again = run("sample.py", *args, "--num_samples", "3", "--no-progress", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "images (" not in again.stderr and "3 samples in " in again.stdout, "--no-progress: the summary only"
    assert len(list((out / "samples").iterdir())) == 3
    assert np.array_equal(np.load(out / "samples.npz")["images"], images[:3]), "same seed, same first batch"
    assert sorted(p.name for p in out.iterdir()) == ["grid.png", "samples", "samples.json", "samples.npz"]


def test_ddpm_and_no_ema_run(ckpt, tmp_path):
    proc = run("sample.py", "--checkpoint", ckpt, "--student_name", "c", "--num_samples", "2", "--sampler", "ddpm",
               "--steps", "4", "--no-ema", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads((tmp_path / "outputs" / "c" / "samples.json").read_text())
    assert meta["sampler"] == "ddpm" and meta["ema"] is False


def test_sample_takes_sample_key_overrides_and_flags_win(ckpt, tmp_path):
    proc = run("sample.py", "--checkpoint", ckpt, "--student_name", "o", "--num_samples", "2", "sample.sampler=ddim",
               "sample.steps=3", "sample.eta=0.5", "--steps", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads((tmp_path / "outputs" / "o" / "samples.json").read_text())
    assert (meta["sampler"], meta["steps"], meta["eta"]) == ("ddim", 2, 0.5)
    assert_user_error(run("sample.py", "--checkpoint", ckpt, "model.channels=4", cwd=tmp_path), "sample.KEY=VALUE")
    assert_user_error(run("sample.py", "--checkpoint", ckpt, "sample.steps=0", cwd=tmp_path), "sample.steps")


@pytest.mark.parametrize("text, fragment", [
    (None, "not found"),
    ("model: [unclosed\n", "not valid YAML"),
    ("train:\n  stepz: 3\n", "did you mean train.steps"),
    ("train:\n  steps: many\n", "train.steps"),
    ("train:\n  lr: -1\n", "train.lr"),
])
def test_train_bad_config(tmp_path, text, fragment):
    cfg = tmp_path / "c.yaml"
    if text is not None:
        cfg.write_text(text)
    assert_user_error(run("train.py", "--config", cfg, cwd=tmp_path), fragment)
    assert not (tmp_path / "checkpoints").exists()


def test_train_bad_override_and_name(tiny_config, tmp_path):
    assert_user_error(run("train.py", "--config", tiny_config, "model.chanels=3", cwd=tmp_path),
                      "did you mean model.channels")
    assert_user_error(run("train.py", "--config", tiny_config, "--student_name", "../evil", cwd=tmp_path), "not allowed")


def test_train_missing_mnist(tiny_config, tmp_path):
    proc = run("train.py", "--config", tiny_config, *TINY, f"data.root={tmp_path / 'nowhere'}", "data.download=false",
               cwd=tmp_path)
    assert_user_error(proc, "MNIST not found", "train-images-idx3-ubyte")


def test_resume_with_another_architecture_is_refused(trained, tiny_config):
    proc = run("train.py", "--config", tiny_config, "--student_name", "tiny_test", *TINY, "model.channels=16",
               "train.steps=8", cwd=trained)
    assert_user_error(proc, "different model config", "--restart")


def test_sample_bad_inputs(ckpt, tmp_path):
    base = ["--student_name", "x", "--num_samples", "2", "--steps", "2"]
    assert_user_error(run("sample.py", "--checkpoint", tmp_path / "none.pt", *base, cwd=tmp_path), "not found")

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint" * 10)
    assert_user_error(run("sample.py", "--checkpoint", junk, *base, cwd=tmp_path), "not a readable checkpoint")

    cut = tmp_path / "cut.pt"
    cut.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    assert_user_error(run("sample.py", "--checkpoint", cut, *base, cwd=tmp_path), "not a readable checkpoint")

    pickled = tmp_path / "pickled.pt"
    torch.save({"format": checkpoint.FORMAT, "obj": object.__new__(type("Evil", (), {}))}.__class__, pickled)
    assert_user_error(run("sample.py", "--checkpoint", pickled, *base, cwd=tmp_path), "not a readable checkpoint")

    other = tmp_path / "other.pt"
    state = checkpoint.load(ckpt)
    state["config"]["model"]["channels"] = 16
    torch.save(state, other)
    assert_user_error(run("sample.py", "--checkpoint", other, *base, cwd=tmp_path), "another architecture")

    assert_user_error(run("sample.py", "--checkpoint", ckpt, "--num_samples", "0", cwd=tmp_path), "--num_samples")
    assert_user_error(run("sample.py", "--checkpoint", ckpt, "--steps", "5000", cwd=tmp_path), "training timesteps")
    assert_user_error(run("sample.py", "--checkpoint", ckpt, "--sampler", "lms", cwd=tmp_path), "invalid choice")

    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    assert_user_error(run("sample.py", "--checkpoint", ckpt, *base, "--out_root", blocker, cwd=tmp_path),
                      "cannot write")
    assert not (tmp_path / "outputs").exists(), "a failed run left files behind"


def test_bench_refuses_a_config_it_cannot_compare(tmp_path):
    """(make bench runs scripts/benchmark.py and benchmarks/bench.py: tests/test_makefile.py)"""
    from tests.conftest import REPO
    assert_user_error(run("benchmarks/bench.py", "--config", REPO / "configs" / "moons.yaml", cwd=tmp_path),
                      "not an MNIST generation config")


def test_sampler_sweep_measures_each_budget_once_and_resumes(ckpt, tmp_path, fid_cache):
    from tests.conftest import DATA_ROOT
    args = ["--checkpoint", ckpt, "--samplers", "heun", "--nfe", "2", "3", "--num_samples", "20",
            "--data_root", DATA_ROOT, "--cache_dir", fid_cache, "--rows", tmp_path / "rows.json"]
    proc = run("scripts/sampler_sweep.py", *args, "--plot", tmp_path / "sweep.png", "--chunk", "8", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "heun x2: digits 16-19 of 20 made" in proc.stdout and not list(tmp_path.glob("*.partial.npz"))
    rows = json.loads((tmp_path / "rows.json").read_text())["rows"]
    assert [(r["variant"], r["budget"], r["steps"], r["nfe"]) for r in rows] == [("heun", 2, 1, 1), ("heun", 3, 2, 3)]
    assert all(r["fid"] > 0 and r["fid_std"] > 0 and r["seconds_per_1000"] > 0 for r in rows)
    table = [l for l in proc.stdout.splitlines() if l.startswith("| heun |")]
    assert len(table) == 1 and f"{rows[1]['fid']:.1f} +- {rows[1]['fid_std']:.1f} (3, " in table[0]
    assert "fewest evaluations within 10% of it" in proc.stdout and (tmp_path / "sweep.png").stat().st_size > 1000
    again = run("scripts/sampler_sweep.py", *args, "--plot", tmp_path / "again.png", cwd=tmp_path)  # nothing sampled
    assert again.returncode == 0 and " evaluations): FID " not in again.stdout and table[0] in again.stdout
    assert (tmp_path / "again.png").stat().st_size > 1000, "the plot from stored rows alone"
    timing = run("scripts/sampler_sweep.py", *args, "--time", "10", "--batch_size", "7", cwd=tmp_path)
    assert timing.returncode == 0 and timing.stdout.count("s per 1,000 digits (10 digits, ") == 2, timing.stdout
    timed = json.loads((tmp_path / "rows.json").read_text())["rows"]
    assert [(r["fid"], r["timed_on"]) for r in timed] == [(r["fid"], 10) for r in rows], "re-timed, FID kept"
    stored = run("scripts/sampler_sweep.py", *args[:5], "2", "3", "4", *args[7:], "--stored", cwd=tmp_path)
    assert stored.returncode == 0 and "| 2 evaluations | 3 evaluations | 4 evaluations |" in stored.stdout
    assert [l for l in stored.stdout.splitlines() if l.startswith("| heun |")][0].endswith(" |  |"), "x4 left blank"
    assert json.loads((tmp_path / "rows.json").read_text())["rows"] == timed, "--stored measures nothing"
    assert_user_error(run("scripts/sampler_sweep.py", *args, "--stored", "--time", "5", cwd=tmp_path), "--stored")
    assert_user_error(run("scripts/sampler_sweep.py", *args[:2], "--nfe", "0", cwd=tmp_path), "--nfe")
    assert_user_error(run("scripts/sampler_sweep.py", *args[:2], "--chunk", "0", cwd=tmp_path), "--chunk")
    assert_user_error(run("scripts/sampler_sweep.py", *args, "--guidance", "1", cwd=tmp_path), "class-conditional")
