"""Classifier-free guidance strength against quality and correctness, for a class-conditional checkpoint.

    python scripts/guidance_sweep.py --checkpoint checkpoints/cond_default/final.pt --weights 0 0.5 1 2 4 \
        --grid docs/images/guidance_grid.png

For each guidance weight w: 5,000 balanced samples (sample i is digit i % 10, its noise keyed by i, so
every weight starts from the same noise), their FID with its bootstrap spread, the share that the
shipped classifier (the LeNet behind the FID) labels as the requested digit, overall and per digit,
and seconds per 1,000 digits (w > 0 evaluates the network twice per step). Rows are stored in --rows
as they are measured, so a killed sweep resumes. The grid has a row per digit and, for each weight,
the same --columns noises. Prints a markdown table and the best weight for FID and for accuracy.
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from dataio import plots  # noqa: E402
from engine import checkpoint, config  # noqa: E402
from tasks import for_config  # noqa: E402
from common.errors import ArgumentParser, UserError, exit_on_user_error  # noqa: E402
from tasks.generation import class_labels, classes_are_digits, digit_grid, generate  # noqa: E402
from common.runtime import pick_device  # noqa: E402
from engine.rows import Rows  # noqa: E402
from metrics import features  # noqa: E402
from metrics.evaluation import fid_with_spread, lenet_reference, training_reference  # noqa: E402


def table(rows: list[dict]) -> str:
    out = ["| guidance w | FID | classifier agrees | worst digit | s / 1,000 digits |", "| --- | --- | --- | --- | --- |"]
    for r in sorted(rows, key=lambda r: r["guidance"]):
        if r["accuracy"] is None:  # a model conditioned on clusters, not digits
            agrees = "- | -"
        else:
            worst = int(np.argmin(r["accuracy_per_digit"]))
            agrees = f"{r['accuracy']:.1%} | {worst}: {r['accuracy_per_digit'][worst]:.1%}"
        out.append(f"| {r['guidance']:g} | {r['fid']:.1f} +- {r['fid_std']:.1f} | {agrees} | {r['seconds_per_1000']:.0f} |")
    return "\n".join(out) + "\n"


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="a class-conditional checkpoint (model.num_classes=10)")
    p.add_argument("--weights", nargs="+", type=float, default=[0, 0.5, 1, 2, 4])
    p.add_argument("--num_samples", type=int, default=5000)
    p.add_argument("--sampler", help="default: the checkpoint's sample.sampler")
    p.add_argument("--steps", type=int, help="default: the checkpoint's sample.steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--interval", type=float, nargs=2, metavar=("LO", "HI"),
                   help="guide only at levels [LO, HI] x T (sample.guidance_interval; default: the checkpoint's)")
    p.add_argument("--columns", type=int, default=4, help="grid: samples per digit and weight")
    p.add_argument("--reference", default="test", choices=("test", "train"),
                   help="FID against the test digits (the reported number), or 10,000 training digits (to choose "
                        "a weight without looking at test digits)")
    p.add_argument("--data_root", default="data")
    p.add_argument("--cache_dir", default="data/fid_cache")
    p.add_argument("--rows", help="JSON file of measured rows (default: results/sweeps/guidance_NAME.json)")
    p.add_argument("--grid", help="write the grid here (PNG)")
    args = p.parse_args(argv)
    if min(args.weights) < 0 or args.num_samples < 10 * args.columns or args.num_samples < 20:
        raise UserError("--weights must be >= 0, and --num_samples at least 20 and 10 x --columns")
    ckpt_path = Path(args.checkpoint)
    device = pick_device("auto")
    ckpt, cfg, model = checkpoint.load_model(ckpt_path, device=device)
    if not cfg.model.num_classes or not for_config(cfg).makes_digits:
        raise UserError(f"{ckpt_path} is not a class-conditional digit generator; train one with model.num_classes=10")
    digits = classes_are_digits(cfg.model.num_classes, cfg.data.labels)  # else no agreement to measure
    sampler, steps = args.sampler or cfg.sample.sampler, args.steps or cfg.sample.steps
    if args.interval:  # checked by the config's own rule
        config.apply_overrides(cfg, [f"sample.guidance_interval=[{args.interval[0]}, {args.interval[1]}]"],
                               f"{ckpt_path}'s config")
    interval = list(cfg.sample.guidance_interval)
    ref = lenet_reference(args.data_root, args.cache_dir)[1] if args.reference == "test" else \
        training_reference(args.data_root)
    lenet = features.load_lenet()
    key = {"weights_sha256": checkpoint.weights_sha256(ckpt), "num_samples": args.num_samples, "seed": args.seed,
           "sampler": sampler, "steps": steps, "columns": args.columns, "reference": args.reference}
    if interval != [0, 1]:  # rows measured before the interval existed guided everywhere
        key["guidance_interval"] = interval
    store = Rows(args.rows or f"results/sweeps/guidance_{ckpt_path.parent.name}.json", key, checkpoint=str(ckpt_path))
    labels = class_labels(args.num_samples, -1, cfg.model.num_classes).numpy() % 10  # the digits generate() asks for
    picks = digit_grid(args.columns)  # row d: digit d
    grid = {}
    for w in args.weights:
        row = store.find(guidance=w)
        if row is None:
            start = time.perf_counter()
            images = generate(model, cfg, args.num_samples, seed=args.seed, sampler=sampler, steps=steps, eta=0.0,
                              batch_size=cfg.sample.batch_size, device=device, guidance=w, digit=-1, progress=False,
                              guidance_interval=interval)
            seconds = time.perf_counter() - start
            feats, probs = features.extract(lenet, images, progress=False)
            right = probs.argmax(1) == labels
            fid, fid_std = fid_with_spread(feats, ref)
            row = store.add({"guidance": w, "seconds_per_1000": 1000 * seconds / args.num_samples,
                             "fid": fid, "fid_std": fid_std,
                             "accuracy": float(right.mean()) if digits else None,
                             "accuracy_per_digit": [float(right[labels == d].mean()) for d in range(10)] if digits
                             else None,
                             "grid": images[picks].tolist()})
            agrees = f", classifier agrees {row['accuracy']:.1%}" if digits else ""
            print(f"w = {w:g}: FID {row['fid']:.2f} +- {row['fid_std']:.2f}{agrees}, "
                  f"{row['seconds_per_1000']:.1f} s per 1,000 digits", flush=True)
        grid[w] = np.asarray(row["grid"], np.uint8)
    rows = [r for r in store.rows if r["guidance"] in args.weights]
    print(f"\n{args.num_samples} balanced samples per weight ({sampler} x{steps}, seed {args.seed}"
          + (f", guided at levels [{interval[0]:g}, {interval[1]:g}] x T" if interval != [0, 1] else "")
          + "); FID against the "
          f"{args.reference} digits with the shipped LeNet features +- bootstrap spread; checkpoint {ckpt_path}\n")
    print(table(rows))
    best_fid = min(rows, key=lambda r: r["fid"])
    print(f"best FID: w = {best_fid['guidance']:g} ({best_fid['fid']:.1f})", end="")
    if digits:
        best_acc = max(rows, key=lambda r: r["accuracy"])
        print(f"; best accuracy: w = {best_acc['guidance']:g} ({best_acc['accuracy']:.1%})", end="")
    print()
    if args.grid:
        plots.digit_panels(args.grid, {f"w = {w:g}": grid[w] for w in sorted(grid)},
                           f"{ckpt_path}: rows are digits 0-9, the same noise in every panel")
        print(f"grid: {args.grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
