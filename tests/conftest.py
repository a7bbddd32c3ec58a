import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA_ROOT = os.environ.get("MNIST_ROOT", str(REPO / "data"))

# A model small enough that a training step takes milliseconds on a CPU.
TINY = [
    "model.channels=8", "model.channel_mult=[1,2]", "model.attn_levels=[1]", "model.num_heads=2",
    "model.num_res_blocks=1", "model.dropout=0.1", "diffusion.timesteps=100", "train.batch_size=8",
    "train.warmup_steps=2", "train.log_every=2", "train.sample_every=0", "train.ema_decay=0.9",
    "sample.steps=5", "sample.batch_size=16", f"data.root={DATA_ROOT}",
]


def run(script: str, *args, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run one of the repository's scripts as a user would, from `cwd`."""
    return subprocess.run([sys.executable, str(REPO / script), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def assert_user_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit status 2, one line on stderr starting with 'error:', no traceback."""
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    for f in fragments:
        assert f in lines[0], (f, lines[0])


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny_test.yaml"
    path.write_text((REPO / "configs" / "tiny.yaml").read_text())
    return path


@pytest.fixture(scope="session")
def trained(tmp_path_factory, tiny_config) -> Path:
    """A folder holding checkpoints/tiny_test/final.pt after 4 training steps."""
    from engine import config
    from engine.trainer import RunPaths, train

    root = tmp_path_factory.mktemp("run")
    cfg = config.load(tiny_config, TINY + ["train.steps=4", "train.ckpt_every=2"])
    assert train(cfg, "tiny_test", paths=RunPaths.for_name("tiny_test", root), progress=False) == "done"
    return root
