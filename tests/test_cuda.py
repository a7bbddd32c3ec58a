"""The CUDA paths, run by scripts/gpu_check.py (GPU_CHECK_DEVICE=cuda; its --smoke mode runs them on
the CPU). Not collected by a plain `pytest` run (tests/conftest.py), since they need the device."""
import os

import numpy as np
import torch

from conftest import DATA_ROOT, REPO, TINY
from engine import checkpoint, config
from engine.trainer import RunPaths, train
from grading.provenance import TOLERANCE
from tasks.generation import generate

DEVICE = torch.device(os.environ.get("GPU_CHECK_DEVICE", "cpu"))
FIXTURES = REPO / "tests" / "fixtures"


def test_fixture_checkpoint_samples_on_the_device_within_the_provenance_tolerance():
    """The 16 digits sample.py made on a CPU, made again on the device: each within TOLERANCE gray
    levels (bit-identical on the CPU)."""
    _, cfg, model = checkpoint.load_model(FIXTURES / "generate_cond.pt", device=DEVICE)
    s = cfg.sample
    got = generate(model, cfg, 16, seed=s.seed, sampler=s.sampler, steps=s.steps, eta=s.eta, batch_size=16,
                   device=DEVICE, progress=False)
    expected = np.load(FIXTURES / "generate_cond_samples.npz")["images"]
    diff = np.abs(got.astype(np.int16) - expected.astype(np.int16)).reshape(16, -1).mean(1)
    assert diff.max() <= TOLERANCE, diff
    if DEVICE.type == "cpu":
        assert diff.max() == 0


def test_bf16_channels_last_training_with_data_on_the_device_runs_and_resumes(tmp_path):
    cfg = config.load(REPO / "configs" / "tiny.yaml", TINY + [
        "train.steps=4", "train.ckpt_every=2", f"train.device={DEVICE.type}", "train.bf16=true",
        "train.channels_last=true", "train.data_on_device=true", f"data.root={DATA_ROOT}", "model.num_classes=10"])
    paths = RunPaths.for_name("cuda", tmp_path)
    assert train(cfg, "cuda", paths=paths, progress=False) == "done"
    ckpt = checkpoint.load(paths.final)
    assert ckpt["step"] == 4 and all(torch.isfinite(v).all() for v in ckpt["ema"]["model"].values() if v.is_floating_point())
    cfg.train.steps = 6  # resume the same run two steps further
    assert train(cfg, "cuda", paths=paths, progress=False) == "done"
    assert checkpoint.load(paths.final)["step"] == 6
