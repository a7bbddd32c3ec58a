"""Run a student's network in a child process, apart from the grader.

A hand-in whose models/model.py differs from the shipped one can only be rebuilt by running the
student's code. `generate_in_child` copies the repository's library (not the scripts) into a scratch
folder, puts the student's model.py in place of models/model.py, and runs grading/student_child.py
there in a fresh Python process:

- wall-clock timeout (the whole process group is killed), address-space and CPU-time limits
  (RLIMIT_AS, RLIMIT_CPU), no core files;
- a scrubbed environment (PATH, HOME in the scratch folder, the thread count; no PYTHONPATH, no
  tokens or proxies), Python started with -E -s (no environment variables, no user site-packages);
- the working folder is the scratch copy, so what the student's code writes stays there;
- a new network namespace where the OS allows it (Linux, root or unprivileged user namespaces): then
  the child cannot reach the network; whether it could is recorded.

The parent reads back only a .npy file (np.load without pickles), checks that it is uint8 of the
expected shape, and scores it with its own, unmodified metric code: the student's file never runs in
the process that scores. This is not a security boundary against a determined attacker (the child
runs as the same user and can read what that user can read); grade untrusted code inside a container
or VM (docs/evaluation.md says how).
"""
from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from common.errors import UserError

REPO = Path(__file__).resolve().parents[1]
LIBRARY = ("common", "dataio", "diffusion", "models", "metrics", "tasks", "engine", "grading")
TIMEOUT_S = 600  # Gradescope's default is 10 minutes per submission
MEMORY_MB = 8192  # address space: importing torch alone maps 3.2 GB (VmSize, torch 2.14.1 on CPU)
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000


def _limits(memory_mb: int, cpu_s: int):
    def apply() -> None:  # runs in the child between fork and exec
        os.setsid()  # its own process group: a timeout kills everything it started
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        try:  # no network: a fresh network namespace holds only a loopback that is down
            libc = ctypes.CDLL(None, use_errno=True)
            libc.unshare(CLONE_NEWNET if os.geteuid() == 0 else CLONE_NEWUSER | CLONE_NEWNET)
        except OSError:
            pass  # the child reports whether it got its own namespace
    return apply


def _netns() -> str:
    try:
        return os.readlink("/proc/self/ns/net")
    except OSError:
        return ""


def generate_in_child(model_py: Path, checkpoint: Path, job: dict, *, n: int, timeout_s: float = TIMEOUT_S,
                      memory_mb: int = MEMORY_MB, threads: int = 2) -> tuple[np.ndarray, dict]:
    """Run grading/student_child.py with `job` (the checkpoint is copied in) and the student's
    model.py; returns (uint8 images (n, 28, 28), what the child reported). A child that fails, hangs,
    exhausts its memory or returns something else raises UserError with a one-line reason."""
    with tempfile.TemporaryDirectory(prefix="grader_") as tmp:
        root = Path(tmp) / "repo"
        for package in LIBRARY:
            shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copyfile(model_py, root / "models" / "model.py")
        shutil.copyfile(checkpoint, Path(tmp) / "final.pt")
        (Path(tmp) / "job.json").write_text(json.dumps({**job, "checkpoint": str(Path(tmp) / "final.pt"),
                                                        "out": str(Path(tmp) / "out.npy"), "threads": threads,
                                                        "grader_netns": _netns()}))
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "LANG": "C.UTF-8", "OMP_NUM_THREADS": str(threads),
               "MKL_NUM_THREADS": str(threads)}
        cmd = [sys.executable, "-E", "-s", str(root / "grading" / "student_child.py"), str(Path(tmp) / "job.json")]
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                                preexec_fn=_limits(memory_mb, int(timeout_s) + 60))
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise UserError(f"the student's model.py ran past the {timeout_s:g} s limit") from None
        if proc.returncode != 0:
            last = next((line for line in reversed(err.strip().splitlines()) if line.strip()), "")
            why = ("killed by signal " + str(-proc.returncode) if proc.returncode < 0 else f"exit status {proc.returncode}")
            if "MemoryError" in err or "std::bad_alloc" in err or "DefaultCPUAllocator" in err:
                why = f"out of memory (limit {memory_mb} MB)"
            raise UserError(f"the student's code failed ({why}): {last[:160]}")
        try:
            report = json.loads(out.strip().splitlines()[-1])
            images = np.load(Path(tmp) / "out.npy", allow_pickle=False)
        except (ValueError, IndexError, OSError):
            raise UserError("the student's code returned no readable samples (.npy of uint8 images expected)") from None
    if images.dtype != np.uint8 or images.shape != (n, 28, 28):
        raise UserError(f"the student's code returned {images.dtype} {images.shape}; uint8 ({n}, 28, 28) expected")
    return images, report if isinstance(report, dict) else {}
