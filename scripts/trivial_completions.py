"""The floor of the inpainting tables: completions that learn nothing, in sample.py's format.

    python scripts/trivial_completions.py [--n 10000] [--mask center8] [--mask_size K] [--val_size 5000]
        [--suffix S] [--data_root data] [--out_root outputs]

zero_fill leaves the hole black; pixel_mean fills each hole pixel with its mean over the training
digits (those outside the first --val_size of the validation split, as a model trained with
data.val_size would see them). Both write OUT_ROOT/NAME/inpaint/completions.npz and .json for the
first --n test digits of evaluate.py's seed, so `evaluate.py --student_name zero_fill --task inpaint
--n_eval N` scores them like any model. --suffix is appended to both names, so another mask's rows
(e.g. `--mask center12 --suffix _12`) do not overwrite these.
"""
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataio import masks  # noqa: E402
from dataio.images import save_npz  # noqa: E402
from dataio.mnist import EVAL_SEED, eval_indices, load_mnist, validation_split  # noqa: E402
from common.errors import ArgumentParser, exit_on_user_error  # noqa: E402
from common.fileio import ensure_dir, write_json  # noqa: E402


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000, help="test digits (evaluate.py's seed picks them)")
    p.add_argument("--mask", default="center8", choices=("center", "center8", "center12"))
    p.add_argument("--mask_size", type=int, default=8, help="hole side for --mask center")
    p.add_argument("--val_size", type=int, default=5000, help="training digits held out, not averaged")
    p.add_argument("--suffix", default="", help="appended to both names (zero_fillSUFFIX, pixel_meanSUFFIX)")
    p.add_argument("--data_root", default="data")
    p.add_argument("--out_root", default="outputs")
    args = p.parse_args(argv)
    indices = eval_indices(args.n)
    test = load_mnist(args.data_root, train=False)[0][indices].numpy()
    hole = masks.make(args.mask, args.n, size=args.mask_size)[:, 0].numpy()
    train = load_mnist(args.data_root, train=True)[0]
    train = train[validation_split(len(train), args.val_size)[0]].double().mean(0).numpy()
    fills = {f"zero_fill{args.suffix}": ("zero fill", np.zeros((28, 28))),
             f"pixel_mean{args.suffix}": ("per-pixel training mean", train)}
    kind, size = masks.resolve(args.mask, args.mask_size)
    for name, (method, fill) in fills.items():
        start = time.perf_counter()
        images = np.where(hole, np.rint(fill).astype(np.uint8), test)
        seconds = time.perf_counter() - start
        out = ensure_dir(Path(args.out_root) / name / "inpaint")
        save_npz(out / "completions.npz", images=images, indices=indices.numpy(), masks=hole)
        write_json(out / "completions.json", {"student_name": name, "n": args.n, "seed": EVAL_SEED, "method": method,
                                              "task": "trivial", "mask": kind, "mask_size": size, "train_seconds": 0,
                                              "seconds_per_image": round(seconds / args.n, 6)})
        print(f"{name}: {args.n} completions -> {out}/completions.npz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
