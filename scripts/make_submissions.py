"""Lay out a folder of hand-ins: honest ones, the cheats a grader must catch, and broken code.

    python scripts/make_submissions.py --out submissions alice=outputs/cpu_default [bob=outputs/demo ...]
        [--no_samples dave=checkpoints/dave/final.pt ...] [--student_code carol=DIR ...]
    python leaderboard.py --submissions submissions [--run_student_code]

Each NAME=OUTPUT_DIR (a sample.py output folder) becomes submissions/NAME/ with the checkpoint that
its samples.json names, that run's config.yaml, samples.npz and samples.json. --no_samples hands in a
checkpoint and its config only (the grader makes the samples); --student_code hands in a checkpoint,
config and model.py from a student's copy of the repository DIR (DIR/checkpoints/NAME/final.pt).
The first NAME=OUTPUT_DIR is also handed in with its samples replaced by 5,000 training digits
(copycat), 5,000 test digits (tester), black images (blackout), one in ten training digits (mixer),
and with a model.py that raises (raises), hangs (hangs) or returns cropped samples (cropped).
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


BROKEN_CODE = {"raises": "raise RuntimeError('my network is not finished')\n",
               "hangs": "import time\ntime.sleep(10 ** 6)\n",
               "cropped": "import numpy\n_save = numpy.save\nnumpy.save = lambda f, a, **k: _save(f, a[:, :14], **k)\n"}


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
    p.add_argument("--no_samples", nargs="*", default=[], metavar="NAME=CHECKPOINT")
    p.add_argument("--student_code", nargs="*", default=[], metavar="NAME=STUDENT_REPO")
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
    test = load_mnist(args.data_root, train=False)[0].numpy()
    hand_in(out, "tester", run, test[rng.choice(len(test), len(images), replace=False)])
    shipped = (Path(__file__).resolve().parents[1] / "models" / "model.py").read_text()
    ckpt = Path(json.loads((run / "samples.json").read_text())["checkpoint"])
    for name, code in BROKEN_CODE.items():
        folder = ensure_dir(out / name)
        shutil.copy(ckpt, folder / "final.pt")
        shutil.copy(ckpt.parent / "config.yaml", folder / "my_config.yaml")
        (folder / "model.py").write_text(shipped + code)
    for entry in args.no_samples:
        name, _, path = entry.partition("=")
        folder = ensure_dir(out / check_name(name))
        shutil.copy(path, folder / "final.pt")
        shutil.copy(Path(path).parent / "config.yaml", folder / "my_config.yaml")
    for entry in args.student_code:
        name, _, repo = entry.partition("=")
        folder = ensure_dir(out / check_name(name))
        run_dir = Path(repo) / "checkpoints" / name
        shutil.copy(run_dir / "final.pt", folder / "final.pt")
        shutil.copy(run_dir / "config.yaml", folder / "my_config.yaml")
        shutil.copy(Path(repo) / "models" / "model.py", folder / "model.py")
    total = len(runs) + 4 + len(BROKEN_CODE) + len(args.no_samples) + len(args.student_code)
    print(f"{total} hand-ins -> {out}/; grade them with python leaderboard.py --submissions {out} --run_student_code")
    return 0


if __name__ == "__main__":
    sys.exit(main())
