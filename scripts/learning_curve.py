"""Print and plot a run's learning curve from the training-time FIDs in its log (train.eval_every).

    python scripts/learning_curve.py NAME [--checkpoints checkpoints] [--out PNG]

Reads checkpoints/NAME/log.tsv and checkpoints/NAME/config.yaml; prints a markdown table of FID
against training minutes and images seen, and writes the plot (default outputs/NAME/learning_curve.png).
"""
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataio.plots import learning_curve  # noqa: E402
from engine import config  # noqa: E402
from common.errors import ArgumentParser, UserError, exit_on_user_error  # noqa: E402
from metrics.evaluation import floor_mean  # noqa: E402


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name")
    p.add_argument("--checkpoints", default="checkpoints")
    p.add_argument("--out", help="the PNG (default: outputs/NAME/learning_curve.png)")
    args = p.parse_args(argv)
    run = Path(args.checkpoints) / args.name
    log, cfg_path = run / "log.tsv", run / "config.yaml"
    if not log.is_file() or not cfg_path.is_file():
        raise UserError(f"{run} has no log.tsv and config.yaml; train it first (train.py --student_name {args.name})")
    cfg = config.load(cfg_path, migrate=True)  # written by train.py, maybe before keys moved
    with open(log, newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r.get("fid")]
    if not rows:
        raise UserError(f"{log} holds no FID; train with train.eval_every=K (e.g. {cfg.train.steps // 8})")
    steps = [int(r["step"]) for r in rows]
    minutes = [float(r["train_s"]) / 60 for r in rows]
    images = [s * cfg.train.batch_size for s in steps]
    fid = [float(r["fid"]) for r in rows]
    floor = floor_mean(cfg.data.root)
    s = cfg.sample
    print(f"{args.name}: FID of {cfg.train.eval_samples} EMA samples ({s.sampler} x{s.steps}) during training; "
          f"floor {floor:.2f}")
    print("| step | images seen | training minutes | FID | x floor |")
    print("| --- | --- | --- | --- | --- |")
    for st, im, mi, fd in zip(steps, images, minutes, fid):
        print(f"| {st} | {im:,} | {mi:.1f} | {fd:.2f} | {fd / floor:.1f} |")
    out = Path(args.out) if args.out else Path("outputs") / args.name / "learning_curve.png"
    learning_curve(out, minutes, images, fid, floor,
                   f"{args.name}: FID of {cfg.train.eval_samples} samples, {s.sampler} x{s.steps}")
    print(f"plot: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
