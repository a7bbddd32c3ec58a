"""Lay out a folder of submissions, honest ones and the three cheats a grader must catch.

    python scripts/make_submissions.py --out submissions alice=outputs/cpu_default [bob=outputs/demo ...]
    python leaderboard.py --submissions submissions

Each NAME=OUTPUT_DIR (a sample.py output folder) becomes submissions/NAME/ with the checkpoint that
its samples.json names, that run's config.yaml, samples.npz and samples.json: what a student hands
in. The first one is also handed in three more times, with its samples replaced by 5,000 training
digits (copycat), by black images (blackout), and one in ten by training digits (mixer).
"""
import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataio.images import load_digits, save_npz  # noqa: E402
from dataio.mnist import load_mnist  # noqa: E402
from common.errors import ArgumentParser, UserError, exit_on_user_error  # noqa: E402
from common.fileio import check_name, ensure_dir  # noqa: E402


def hand_in(out: Path, name: str, run: Path, images: np.ndarray) -> None:
    meta = json.loads((run / "samples.json").read_text())
    ckpt = Path(meta["checkpoint"])
    folder = ensure_dir(out / check_name(name))
    shutil.copy(ckpt, folder / "final.pt")
    shutil.copy(ckpt.parent / "config.yaml", folder / "config.yaml")
    shutil.copy(run / "samples.json", folder / "samples.json")
    save_npz(folder / "samples.npz", images=images)


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("entries", nargs="+", metavar="NAME=OUTPUT_DIR")
    p.add_argument("--out", default="submissions")
    p.add_argument("--data_root", default="data")
    args = p.parse_args(argv)
    runs = []
    for entry in args.entries:
        name, _, folder = entry.partition("=")
        run = Path(folder)
        if not (run / "samples.json").is_file() or not (run / "samples.npz").is_file():
            raise UserError(f"{entry}: {run} has no samples.json and samples.npz; pass a sample.py output folder")
        checkpoint = Path(json.loads((run / "samples.json").read_text())["checkpoint"])
        if not checkpoint.is_file():
            raise UserError(f"{entry}: the checkpoint {checkpoint} that made these samples is gone")
        runs.append((name, run, load_digits(run / "samples.npz")))
    out = Path(args.out)
    for name, run, images in runs:
        hand_in(out, name, run, images)
    _, run, images = runs[0]
    train = load_mnist(args.data_root, train=True)[0].numpy()
    rng = np.random.default_rng(0)
    mixed = images.copy()
    mixed[::10] = train[rng.choice(len(train), len(mixed[::10]), replace=False)]
    hand_in(out, "copycat", run, train[rng.choice(len(train), len(images), replace=False)])
    hand_in(out, "blackout", run, np.zeros_like(images))
    hand_in(out, "mixer", run, mixed)
    print(f"{len(runs) + 3} submissions -> {out}/; grade them with python leaderboard.py --submissions {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
