import atexit
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# tests/test_cuda.py runs under scripts/gpu_check.py only (it sets GPU_CHECK_DEVICE): not collected otherwise
collect_ignore = [] if os.environ.get("GPU_CHECK_DEVICE") else ["test_cuda.py"]
sys.path.insert(0, str(REPO))
DATA_ROOT = os.environ.get("MNIST_ROOT", str(REPO / "data"))

# A model small enough that a training step of 8 digits takes tens of milliseconds on one CPU thread;
# attention only at 7 x 7 (at 14 x 14 it took half of every step).
TINY = [
    "model.channels=8", "model.channel_mult=[1,2,2]", "model.attn_levels=[2]", "model.num_heads=2",
    "model.num_res_blocks=1", "model.dropout=0.1", "diffusion.timesteps=100", "train.batch_size=8",
    "train.warmup_steps=2", "train.log_every=2", "train.sample_every=0", "train.ema_decay=0.9",
    "sample.steps=5", "sample.batch_size=16", f"data.root={DATA_ROOT}",
]


class _ForkServer:
    """Client of tests/forkserver.py: runs scripts in fresh processes forked from one that has imported
    torch and the project already, so each run skips seconds of start-up. One script at a time."""

    def __init__(self):
        self.proc = None

    def start(self, script: str, args: list[str], cwd: Path, module: bool = False) -> dict:
        """Start `script args` (or `-m script args`) in `cwd`; returns a handle whose "pid" can be signalled."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "forkserver.py")], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)
        tmp = tempfile.mkdtemp()
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        request = {"module" if module else "script": script, "args": args, "cwd": str(cwd), "stdout": str(out),
                   "stderr": str(err)}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        argv = [sys.executable, *(["-m"] if module else []), script, *args]
        return {"pid": json.loads(self.proc.stdout.readline())["pid"], "argv": argv,
                "tmp": tmp, "stdout": out, "stderr": err}

    def wait(self, handle: dict, timeout: float) -> subprocess.CompletedProcess:
        timed_out = not select.select([self.proc.stdout], [], [], timeout)[0]
        if timed_out:
            os.kill(handle["pid"], signal.SIGKILL)
        code = json.loads(self.proc.stdout.readline())["returncode"]
        done = subprocess.CompletedProcess(handle["argv"], code, handle["stdout"].read_text(), handle["stderr"].read_text())
        shutil.rmtree(handle["tmp"])
        if timed_out:
            raise subprocess.TimeoutExpired(handle["argv"], timeout, done.stdout, done.stderr)
        return done

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


_SERVER = _ForkServer()
atexit.register(_SERVER.close)


def run(script: str, *args, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run one of the repository's scripts as a user would, from `cwd`: its own process, argv, working
    folder, output and exit status (forked from tests/forkserver.py rather than started cold)."""
    return _SERVER.wait(start(script, *args, cwd=cwd), timeout)


def start(script: str, *args, cwd: Path) -> dict:
    """Start a script as `run` does without waiting; `finish(handle)` waits for it."""
    return _SERVER.start(str(REPO / script), list(map(str, args)), cwd)


def run_module(module: str, *args, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m module args` as `run` runs scripts."""
    return _SERVER.wait(_SERVER.start(module, list(map(str, args)), cwd, module=True), timeout)


def finish(handle: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return _SERVER.wait(handle, timeout)


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


@pytest.fixture(scope="session")
def fid_cache(tmp_path_factory) -> Path:
    """A cache folder holding the shipped feature network's reference statistics of the test digits
    and its floor, and the copy and near-duplicate thresholds, computed once per session (about 20 s
    and 10 s here)."""
    from grading import integrity
    from metrics.evaluation import floor_mean

    cache = tmp_path_factory.mktemp("fid_cache")
    floor_mean(DATA_ROOT, cache)
    integrity.thresholds(DATA_ROOT, cache)
    return cache


@pytest.fixture
def in_folder_with_fid_cache(tmp_path, fid_cache, monkeypatch) -> Path:
    """tmp_path as the working folder, with the session's cache where the scripts look by default
    (data/fid_cache), so tests never write into the repository's own data/."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "fid_cache").symlink_to(fid_cache)
    monkeypatch.chdir(tmp_path)
    return tmp_path
