"""Every command block of README.md runs, in the order shown, from a scratch folder: the README's own
commands, each with tiny settings added (a small network, a few steps, 20 samples), so a step that a
later one depends on, a renamed flag or a refused combination of commands fails here first.

What is added to a command (keys the command sets itself keep their values, except the lengths):
  train.py, torchrun:  tests.conftest.TINY's network and batch, data.subset=2000 (the k-means classes
                       of configs/default.yaml are then found in 2,000 digits, not 60,000),
                       train.steps=4 (replacing any given); torchrun runs 2 processes instead of 4
  sample.py:           --num_samples 20 (not for the course task: its input holds 40 digits), --steps at most 4
  leaderboard.py:      --timeout 20 --checked 4 when it grades hand-ins (a practice class holds code that hangs)
  make_course_data.py: --n_test 40
`make demo` and `make test` are not run here: tests/test_makefile.py runs `make demo` and CI runs `make test`."""
import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import DATA_ROOT, REPO, TINY, run

NOT_RUN = {"make demo", "make test"}
TINY_TRAIN = [t for t in TINY if not t.startswith(("data.root", "diffusion.timesteps"))] + \
    ["train.ckpt_every=2", "data.subset=2000"]


def commands(readme: str) -> list[str]:
    """The shell commands of every ```bash block, in order, without comments."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", readme, re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def keyed(args: list[str]) -> dict:
    return dict(a.split("=", 1) for a in args if "=" in a and not a.startswith("-"))


def with_tiny(script: str, args: list[str]) -> list[str]:
    """The README's arguments with the tiny settings of the module docstring added."""
    if script == "train.py":
        given = keyed(args)
        return [a for a in args if not a.startswith("train.steps=")] + \
            [t for t in TINY_TRAIN if t.split("=")[0] not in given] + ["train.steps=4"]
    if script == "sample.py":
        args = list(args)
        if "--steps" in args:
            i = args.index("--steps") + 1
            args[i] = str(min(int(args[i]), 4))
        else:
            args += ["--steps", "4"]
        return args if "course" in args else args + ["--num_samples", "20"]
    if script == "leaderboard.py" and "--submissions" in args:
        return args + ["--timeout", "20", "--checked", "4"]
    if script == "scripts/make_course_data.py":
        return args + ["--n_test", "40"]
    return args


@pytest.fixture
def folder(tmp_path, fid_cache):
    """A scratch folder as a student's clone would look from inside: configs/ and models/ of the
    repository, MNIST and the session's FID cache in data/."""
    for sub in ("configs", "models"):
        (tmp_path / sub).symlink_to(REPO / sub)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "MNIST").symlink_to(f"{DATA_ROOT}/MNIST")
    (tmp_path / "data" / "fid_cache").symlink_to(fid_cache)
    return tmp_path


def test_every_readme_command_runs_in_order(folder):
    cmds = commands((REPO / "README.md").read_text())
    assert len(cmds) > 20 and NOT_RUN <= set(cmds)
    given = {"bob.npz": folder / "outputs" / "alice" / "samples.npz"}  # "an npz handed in from elsewhere"
    for cmd in cmds:
        if cmd in NOT_RUN:
            continue
        argv = shlex.split(cmd)
        for name, source in given.items():
            if name in argv and not (folder / name).exists():
                (folder / name).write_bytes(source.read_bytes())
        if argv[0] in ("mkdir", "cp"):
            proc = subprocess.run(argv, cwd=folder, capture_output=True, text=True)
        elif argv[0] == "python":
            proc = run(argv[1], *with_tiny(argv[1], argv[2:]), cwd=folder, timeout=240)
        elif argv[0] == "torchrun":
            assert argv[1:3] == ["--nproc_per_node", "4"], cmd
            proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                                   str(REPO / argv[3]), *with_tiny(argv[3], argv[4:])], cwd=folder,
                                  capture_output=True, text=True, timeout=240)
        else:
            raise AssertionError(f"the README runs {argv[0]}, which this test does not know: {cmd}")
        assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-1500:]}\n{proc.stderr[-2500:]}"
    assert (folder / "results" / "leaderboard.md").is_file() and (folder / "my_check" / "leaderboard.md").is_file()
    assert "alice" in (folder / "my_check" / "leaderboard.md").read_text()
