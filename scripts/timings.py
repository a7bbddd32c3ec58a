"""How long each command of the README takes on this machine: a table for students, measured, not quoted.

    python scripts/timings.py --checkpoint checkpoints/NAME/final.pt [--train_steps 100] [--out results/timings.json]

Runs the real commands in a scratch folder, one after the other (run it with nothing else on the
machine), and prints a markdown table naming the CPU, the thread count and the date:
  train.py          configs/demo.yaml, default.yaml and unconditional.yaml for --train_steps steps each;
                    the whole run's time is extrapolated from the logged training seconds per image
                    (plus the measured start-up), since a full default run takes an hour on a slow CPU
  sample.py         5,000 digits from --checkpoint with its own settings, timed whole; DDPM x1000 timed on
                    20 digits and scaled to 5,000 (every digit costs the same)
  evaluate.py       5,000 digits, first with an empty cache (the test digits' statistics, the floor and the
                    copy thresholds are computed once) and then with the cache
  leaderboard.py    grading one hand-in (checkpoint, config, the 5,000 samples: 64 regenerated and scored)
"""
import datetime
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from common.errors import ArgumentParser, UserError, exit_on_user_error  # noqa: E402
from common.fileio import write_json  # noqa: E402
from engine import checkpoint, config  # noqa: E402
from tasks.generate import guidance_words  # noqa: E402

RECIPES = ("demo", "default", "unconditional")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(argv: list[str], cwd: Path) -> float:
    """Seconds of wall time of one command; its failure is an error that shows its last output."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *argv], cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise UserError(f"{' '.join(argv[:2])} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1][:200]}")
    return seconds


def minutes(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.1f} min"


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="a trained configs/default.yaml run's final.pt")
    p.add_argument("--train_steps", type=int, default=100, help="steps timed per recipe")
    p.add_argument("--data_root", default="data")
    p.add_argument("--out", default="results/timings.json")
    args = p.parse_args(argv)
    ckpt_path = Path(args.checkpoint).resolve()
    checkpoint.load(ckpt_path)  # a readable checkpoint, before minutes of work
    data = Path(args.data_root).resolve()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "data").mkdir()
        (work / "data" / "MNIST").symlink_to(data / "MNIST")
        for recipe in RECIPES:
            cfg = config.load(REPO / "configs" / f"{recipe}.yaml")
            wall = timed([str(REPO / "train.py"), "--config", str(REPO / "configs" / f"{recipe}.yaml"), "--student_name",
                          recipe, "--no-progress", f"train.steps={args.train_steps}", "train.sample_every=0",
                          f"train.warmup_steps={min(cfg.train.warmup_steps, args.train_steps - 1)}", "train.guide_step=0",
                          "sample.autoguidance=0"], work)
            train_s = float(checkpoint.load(work / "checkpoints" / recipe / "final.pt")["train_seconds"])
            per_image = train_s / (args.train_steps * cfg.train.batch_size)
            full = per_image * cfg.train.steps * cfg.train.batch_size + (wall - train_s)
            rows.append({"command": f"train.py --config configs/{recipe}.yaml", "what": f"{cfg.train.steps:,} steps of "
                         f"{cfg.train.batch_size} ({1 / per_image:.0f} images/s)", "seconds": full, "measured": "extrapolated "
                         f"from {args.train_steps} steps"})
        ckpt_cfg = checkpoint.config_of(checkpoint.load(ckpt_path), ckpt_path)
        s = ckpt_cfg.sample
        how = f"{s.sampler} x{s.steps}" + guidance_words(vars(s))
        wall = timed([str(REPO / "sample.py"), "--checkpoint", str(ckpt_path), "--student_name", "alice", "--no-progress"], work)
        rows.append({"command": "sample.py", "note": "5,000 digits", "what": how, "seconds": wall, "measured": "whole"})
        wall = timed([str(REPO / "sample.py"), "--checkpoint", str(ckpt_path), "--student_name", "ddpm", "--no-progress",
                      "--sampler", "ddpm", "--steps", "1000", "--num_samples", "20"], work)
        rows.append({"command": "sample.py --sampler ddpm --steps 1000", "what": "5,000 digits, the same guidance",
                     "seconds": wall * 5000 / 20, "measured": "scaled from 20 digits"})
        for label in ("first run: caches computed", "later runs"):
            wall = timed([str(REPO / "evaluate.py"), "--student_name", "alice", "--no-progress"], work)
            rows.append({"command": "evaluate.py", "note": label, "what": "5,000 digits: FID, precision/recall, KID, checks",
                         "seconds": wall, "measured": "whole"})
        hand_in = work / "hand_in" / "alice"
        hand_in.mkdir(parents=True)
        shutil.copy(ckpt_path, hand_in / "final.pt")
        (hand_in / "my_config.yaml").write_text((ckpt_path.parent / "config.yaml").read_text())
        for f in ("samples.npz", "samples.json"):
            shutil.copy(work / "outputs" / "alice" / f, hand_in / f)
        wall = timed([str(REPO / "leaderboard.py"), "--submissions", str(work / "hand_in"), "--results",
                      str(work / "graded")], work)
        rows.append({"command": "leaderboard.py --submissions", "note": "one hand-in", "what": "64 samples regenerated, all scored",
                     "seconds": wall, "measured": "whole"})
    record = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
              "date": datetime.date.today().isoformat(), "checkpoint": str(args.checkpoint), "rows": rows}
    write_json(args.out, record)
    print(f"Measured by `python scripts/timings.py --checkpoint {args.checkpoint}` on {record['date']}: "
          f"{record['cpu']}, {record['threads']} threads, torch {record['torch']}, nothing else running.\n")
    print("| command | what | time | how measured |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        note = f" ({r['note']})" if r.get("note") else ""
        print(f"| `{r['command']}`{note} | {r['what']} | {minutes(r['seconds'])} | {r['measured']} |")
    print(f"\n-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
