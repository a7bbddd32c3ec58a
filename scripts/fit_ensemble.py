"""Fit the weights of an ensemble of completion checkpoints on the validation digits, and print the command.

    python scripts/fit_ensemble.py checkpoints/a/best.pt checkpoints/b/best.pt ... [--val_size N]
        [--out ensemble.json] [--data_root data] [--batch_size 500]

Every checkpoint must have been trained with data.val_size >= N (default: the smallest of theirs), so
that none of them saw the first N validation digits (dataio.mnist.validation_split). Each member
completes them on its own config's mask (all must agree) and the script prints each member's hole MSE,
the equal-weight mean's and the least-squares weights' (an affine combination, the weights summing to
1, fitted to the hole pixels: Breiman 1996, "Stacked regressions"). The fitted score is measured on
the digits it was fitted to, so it is slightly optimistic; with a handful of weights and 5,000 digits
of 64 hole pixels the optimism is small. --out writes the checkpoints and weights as JSON.
"""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataio import masks  # noqa: E402
from dataio.mnist import load_mnist, to_model_range, validation_split  # noqa: E402
from engine import checkpoint  # noqa: E402
from tasks import for_config  # noqa: E402
from common.errors import ArgumentParser, UserError, exit_on_user_error  # noqa: E402
from common.fileio import write_json  # noqa: E402
from tasks.completion import affine_least_squares, completion_generators, estimate  # noqa: E402
from common.progress import bar  # noqa: E402


def hole_mse(pred: np.ndarray, target: np.ndarray, n_images: int) -> float:
    """Mean over images of each image's mean squared error over its hole pixels (equal-sized holes), of
    float estimates: sample.py rounds them to 1/255 levels, which adds about 1e-6, and clips the
    weighted sum to [0, 1], which can only lower its error."""
    return float(((pred - target) ** 2).reshape(n_images, -1).mean(1).mean())


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+", help="completion checkpoints (task inpaint or complete)")
    p.add_argument("--val_size", type=int, help="validation digits to fit on (default: the smallest val_size)")
    p.add_argument("--out", help="write {checkpoints, weights, scores} here as JSON")
    p.add_argument("--data_root", default="data")
    p.add_argument("--batch_size", type=int, default=500)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    loaded = [checkpoint.load_model(c) for c in args.checkpoints]
    cfgs = [cfg for _, cfg, _ in loaded]
    held = min(c.data.val_size for c in cfgs)
    n = args.val_size or held
    if held == 0 or not 1 <= n <= held:
        raise UserError(f"every checkpoint must hold out the validation digits: data.val_size is "
                        f"{[c.data.val_size for c in cfgs]}; fit on at most {held} (train with data.val_size=5000)")
    holes = {masks.resolve(c.task.mask, c.task.mask_size) for c in cfgs}
    if len(holes) > 1 or next(iter(holes))[0] != "center" or not all(for_config(c).masked for c in cfgs):
        raise UserError(f"the members must be completion models (task inpaint or complete) of one center mask: "
                        f"got masks {sorted(holes)}, tasks {sorted({c.task.name for c in cfgs})}")
    images = load_mnist(args.data_root, train=True)[0]
    val = images[validation_split(len(images), held)[1][:n]]
    hole = masks.make("center", n, size=next(iter(holes))[1])
    target = (val.double() / 255)[hole[:, 0]].numpy()
    preds = []
    for member, (path, (_, c, model)) in enumerate(zip(args.checkpoints, loaded)):
        out = []
        with bar(n, str(path), "digits", enabled=not args.no_progress) as progress:
            for s in range(0, n, args.batch_size):
                part = slice(s, s + args.batch_size)
                gens = completion_generators(c.sample.seed, range(n)[part], 0, c.inpaint.mean_of, member)  # as sample.py
                x = estimate(model, c, to_model_range(val[part]), hole[part], gens, mean_of=c.inpaint.mean_of)
                out.append(((x.double() + 1) / 2)[hole[part]])
                progress.update(len(x))
        preds.append(torch.cat(out).numpy())
    preds = np.stack(preds)
    w = affine_least_squares(preds, target)
    equal = np.full(len(preds), 1 / len(preds))
    scores = {str(path): hole_mse(pr, target, n) for path, pr in zip(args.checkpoints, preds)}
    print(f"| member | validation hole MSE ({n} digits) | fitted weight |\n| --- | --- | --- |")
    for (path, score), wk in zip(scores.items(), w):
        print(f"| {path} | {score:.5f} | {wk:+.3f} |")
    eq, fit = hole_mse(equal @ preds, target, n), hole_mse(w @ preds, target, n)
    print(f"| equal weights | {eq:.5f} | |\n| fitted weights (fitted on these digits) | {fit:.5f} | |")
    print("sample.py --checkpoint " + " ".join(args.checkpoints) + " --weights " + " ".join(f"{x:.4f}" for x in w)
          + " --task course --input test_data.npz --out submission.npz")
    if args.out:
        write_json(args.out, {"checkpoints": args.checkpoints, "weights": [round(float(x), 6) for x in w],
                              "val_size": n, "member_val_hole_mse": scores, "equal_val_hole_mse": eq,
                              "fitted_val_hole_mse": fit})
    return 0


if __name__ == "__main__":
    sys.exit(main())
