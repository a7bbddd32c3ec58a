"""Every Makefile target runs its exact commands (`make -f Makefile TARGET` from a scratch folder, with
tiny arguments through the Makefile's *_ARGS variables), so a change of a default cannot break a target
unseen. `make test` and `make venv` are what CI itself runs (.ci/run) on a fresh clone."""
import json
import re
import subprocess
import sys

import pytest

from tests.conftest import DATA_ROOT, REPO, TINY


def make(folder, *args, timeout: float = 600) -> subprocess.CompletedProcess:
    """make TARGET from `folder` with this interpreter, never (re)building the virtual environment."""
    return subprocess.run(["make", "-f", str(REPO / "Makefile"), "-o", f"{REPO}/.venv/.installed",
                           f"PY={sys.executable}", *map(str, args)], cwd=folder, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def folder(tmp_path, fid_cache):
    """A scratch working folder whose data/ holds MNIST and the session's FID cache."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "MNIST").symlink_to(f"{DATA_ROOT}/MNIST")
    (tmp_path / "data" / "fid_cache").symlink_to(fid_cache)
    return tmp_path


def test_make_demo_trains_samples_scores_and_make_clean_removes_it(folder):
    (folder / "results").mkdir()
    (folder / "results" / "other.json").write_text("{}")
    tiny = " ".join(t for t in TINY if not t.startswith("data.root"))
    proc = make(folder, "demo", "NAME=d", f"TRAIN_ARGS={tiny} train.steps=2 data.subset=1000",
                "SAMPLE_ARGS=--num_samples 30 --steps 2 --batch_size 16")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (folder / "checkpoints" / "d" / "final.pt").exists() and (folder / "outputs" / "d" / "grid.png").exists()
    result = json.loads((folder / "results" / "d.json").read_text())
    assert result["num_samples"] == 30 and result["sampling"]["num_classes"] == 100
    assert "label_agreement" in result, "the demo is class-conditional: its labels are scored"
    assert "sample grid: outputs/d/grid.png" in proc.stdout

    assert make(folder, "clean", "NAME=d").returncode == 0
    assert not any((folder / sub / "d").exists() for sub in ("checkpoints", "outputs"))
    assert sorted(p.name for p in (folder / "results").iterdir()) == ["other.json"], "clean removes only NAME's"


def test_make_moons_runs_the_two_moons_recipe(folder):
    from tasks import moons
    from metrics import two_sample

    # a known floor in its cache, as tests/test_moons.py does (the real one takes a minute)
    path = moons.floor_path(0.05, folder / "moons_cache")
    path.parent.mkdir()
    path.write_text(json.dumps({f"{k}_floor{s}": v for k in two_sample.METRICS for s, v in (("", 0.01), ("_std", 0.001))}))
    proc = make(folder, "moons", f"MOONS_ARGS=--train-steps 3 --num-samples 200 --sample-steps 5 --no-progress "
                                 f"--cache_dir {path.parent}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (folder / "checkpoints" / "moons" / "final.pt").exists()
    assert list((folder / "results").glob("moons*.json")), list(folder.rglob("*"))


def test_make_bench_prints_speeds_and_the_ratios_against_diffusers_at_equal_parameters(folder):
    before = sorted(folder.iterdir())
    # FAST_PATHS off here: torch.compile alone would take minutes
    proc = make(folder, "bench", "BENCH_ARGS=--train_steps 1 --sample_n 4", "FAST_PATHS=")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    speeds = [l for l in lines if l.startswith(("train: ", "sample: "))]  # scripts/benchmark.py, three configs
    assert len(speeds) == 6 and all(float(l.split()[1]) > 0 for l in speeds), speeds
    assert [("one-pass" in l) for l in speeds if l.startswith("sample")] == [False, False, True]
    sizes = next(l for l in lines if l.startswith("parameters: "))  # benchmarks/bench.py
    count = lambda who: int(re.search(who + r" ([\d,]+) ", sizes).group(1).replace(",", ""))
    ours = count("this project")
    assert count("same layout") == ours, "the same layout is the same network in diffusers' code"
    assert abs(count("DDPM layout") - ours) <= 0.1 * ours and "blocks per level" in sizes
    table = [l.split(" | ") for l in lines if l.startswith("| ") and " | " in l]
    rows = [r for r in table[2:] if r[1][0].isdigit()]
    assert len(rows) == 5 and sum("DDPM layout" in r[0] for r in rows) == 2, table
    for r in rows:
        a, b, ratio = float(r[1]), float(r[3]), float(r[5].split("x")[0])
        low, high = map(float, r[5].split("(")[1].split(")")[0].split("-"))
        assert a > 0 and b > 0 and ratio == pytest.approx(a / b, rel=0.02) and low <= high
    assert sorted(folder.iterdir()) == before, "no files written"
