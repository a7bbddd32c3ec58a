"""Print and plot learning curves: FID (and label agreement) against images seen and training minutes.

    python scripts/learning_curve.py NAME                    # the training-time FIDs of its log (train.eval_every)
    python scripts/learning_curve.py NAME [NAME ...] --snapshots [--num_samples 1000] [--reference train|test]
        [--out PNG] [--rows JSON]

Without --snapshots it reads checkpoints/NAME/log.tsv and config.yaml and prints FID against training
minutes and images seen. With --snapshots it scores every checkpoint a run kept (train.keep_every:
checkpoints/NAME/snapshots/step_*.pt, then final.pt) with the run's own sample.* settings, autoguidance
included once the guide exists (train.guide_step): the FID of --num_samples digits against training digits
(by default, so that choosing a length does not tune to the test digits) and, for class-conditional runs,
the share the shipped classifier reads as the digit asked for. Rows are stored as measured (default
results/curves/NAME.json), so a rerun only scores new snapshots. The plot: outputs/NAME/learning_curve.png,
or --out.
"""
import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.errors import ArgumentParser, UserError, exit_on_user_error  # noqa: E402
from common.runtime import pick_device  # noqa: E402
from dataio.plots import learning_curve, learning_curves  # noqa: E402
from engine import checkpoint, config  # noqa: E402
from engine.rows import Rows  # noqa: E402
from metrics import features  # noqa: E402
from metrics.evaluation import fid_with_spread, floor_mean, lenet_reference, training_floor, training_reference  # noqa: E402
from tasks.generate import generate_from, guidance_words  # noqa: E402
from tasks.generation import conditioning  # noqa: E402
from grading.regenerate import grader_settings  # noqa: E402
from grading.submissions import label_agreement  # noqa: E402


def from_log(name: str, run: Path, out: Path) -> None:
    """The training-time FIDs of train.eval_every, as a table and a plot."""
    log, cfg_path = run / "log.tsv", run / "config.yaml"
    if not log.is_file() or not cfg_path.is_file():
        raise UserError(f"{run} has no log.tsv and config.yaml; train it first (train.py --student_name {name})")
    cfg = config.load(cfg_path, migrate=True)  # written by train.py, maybe before keys moved
    with open(log, newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r.get("fid")]
    if not rows:
        raise UserError(f"{log} holds no FID; train with train.eval_every=K (e.g. {cfg.train.steps // 8}), "
                        f"or keep snapshots (train.keep_every=K) and pass --snapshots")
    steps = [int(r["step"]) for r in rows]
    minutes = [float(r["train_s"]) / 60 for r in rows]
    images = [s * cfg.train.batch_size for s in steps]
    fid = [float(r["fid"]) for r in rows]
    floor = floor_mean(cfg.data.root)
    s = cfg.sample
    print(f"{name}: FID of {cfg.train.eval_samples} EMA samples ({s.sampler} x{s.steps}) during training; "
          f"floor {floor:.2f}")
    print("| step | images seen | training minutes | FID | x floor |")
    print("| --- | --- | --- | --- | --- |")
    for st, im, mi, fd in zip(steps, images, minutes, fid):
        print(f"| {st} | {im:,} | {mi:.1f} | {fd:.2f} | {fd / floor:.1f} |")
    learning_curve(out, minutes, images, fid, floor,
                   f"{name}: FID of {cfg.train.eval_samples} samples, {s.sampler} x{s.steps}")


def snapshot_rows(name: str, run: Path, args, ref, lenet, device) -> list[dict]:
    """One row per kept checkpoint of the run: step, images seen, training minutes, FID, agreement."""
    paths = sorted((run / "snapshots").glob("step_*.pt")) + [run / "final.pt"]
    paths = [p for p in paths if p.is_file()]
    if not paths:
        raise UserError(f"{run} holds no snapshots/step_*.pt or final.pt; train with train.keep_every=K")
    store = Rows(args.rows or f"results/curves/{name}.json",
                 {"num_samples": args.num_samples, "reference": args.reference, "seed": args.seed}, run=str(run))
    rows = []
    for path in paths:
        ckpt, cfg, model = checkpoint.load_model(path, device=device)
        sha = checkpoint.weights_sha256(ckpt)
        row = store.find(weights_sha256=sha)
        if row is None:
            guide = checkpoint.load_guide(ckpt, cfg, path, device)
            settings = grader_settings(cfg, args.seed, args.num_samples)
            settings["autoguidance"] = settings["autoguidance"] if guide is not None else 0.0
            start = time.perf_counter()
            images = generate_from(model, cfg, settings, device=device, guide=guide)
            seconds = time.perf_counter() - start
            feats, probs = features.extract(lenet, images, progress=False)
            fid, fid_std = fid_with_spread(feats, ref)
            asked = {**conditioning(cfg), "digit": -1}
            agree = label_agreement(probs, asked).get("label_agreement")
            row = store.add({"weights_sha256": sha, "checkpoint": str(path), "step": int(ckpt["step"]),
                             "images": int(ckpt["step"]) * cfg.train.batch_size,
                             "train_minutes": float(ckpt.get("train_seconds", 0.0)) / 60, "fid": fid, "fid_std": fid_std,
                             "label_agreement": agree, "guidance": settings["guidance"],
                             "autoguidance": settings["autoguidance"],
                             "guidance_interval": settings["guidance_interval"], "sampler": settings["sampler"],
                             "steps": settings["steps"], "sample_seconds": seconds})
            print(f"{name} step {row['step']}: FID {fid:.2f} +- {fid_std:.2f}"
                  + (f", label agreement {agree:.1%}" if agree is not None else "") + f" ({seconds:.0f} s)", flush=True)
        if not rows or rows[-1]["weights_sha256"] != sha:  # final.pt repeats the last snapshot when steps % keep_every == 0
            rows.append(row)
    return rows


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("--checkpoints", default="checkpoints")
    p.add_argument("--snapshots", action="store_true", help="score the run's kept checkpoints (train.keep_every)")
    p.add_argument("--num_samples", type=int, default=1000, help="--snapshots: digits per checkpoint")
    p.add_argument("--reference", default="train", choices=("train", "test"), help="--snapshots: FID against")
    p.add_argument("--seed", type=int, default=0, help="--snapshots: sampling seed")
    p.add_argument("--rows", help="--snapshots with one NAME: the rows file (default results/curves/NAME.json)")
    p.add_argument("--data_root", default="data")
    p.add_argument("--cache_dir", default="data/fid_cache")
    p.add_argument("--out", help="the PNG (default: outputs/NAME/learning_curve.png, NAME the first)")
    p.add_argument("--labels", nargs="+", help="--snapshots: the plot's name for each run (default: NAME)")
    args = p.parse_args(argv)
    out = Path(args.out) if args.out else Path("outputs") / args.names[0] / "learning_curve.png"
    if not args.snapshots:
        if len(args.names) > 1:
            raise UserError("several runs need --snapshots (a log's FIDs are plotted one run at a time)")
        from_log(args.names[0], Path(args.checkpoints) / args.names[0], out)
        print(f"plot: {out}")
        return 0
    if args.num_samples < 20 or (args.rows and len(args.names) > 1):
        raise UserError("--num_samples must be at least 20, and --rows names one run's file (give one NAME)")
    labels = args.labels or args.names
    if len(labels) != len(args.names):
        raise UserError(f"--labels names {len(labels)} runs, but {len(args.names)} NAMEs were given")
    device = pick_device("auto")
    ref = training_reference(args.data_root) if args.reference == "train" else \
        lenet_reference(args.data_root, args.cache_dir)[1]
    lenet = features.load_lenet()
    real = training_floor(args.data_root, args.num_samples, ref, lenet)
    curves = {}
    for name, label in zip(args.names, labels):
        rows = snapshot_rows(name, Path(args.checkpoints) / name, args, ref, lenet, device)
        curves[label] = rows
        print(f"\n{name} ({label}): {args.num_samples} digits per checkpoint, its sample.* settings, FID against "
              f"{args.reference} digits (+- bootstrap spread); {args.num_samples} real training digits score "
              f"{real:.2f} so (fewer than 5,000 digits bias FID upwards: compare rows with each other)")
        print("| step | images seen | training minutes | FID | label agreement | sampler |")
        print("| --- | --- | --- | --- | --- | --- |")
        for r in rows:
            agree = f"{r['label_agreement']:.1%}" if r["label_agreement"] is not None else "-"
            how = f"{r['sampler']} x{r['steps']}" + guidance_words(r)
            print(f"| {r['step']} | {r['images']:,} | {r['train_minutes']:.1f} | {r['fid']:.2f} +- {r['fid_std']:.2f} | "
                  f"{agree} | {how} |")
    learning_curves(out, {n: ([r["images"] for r in rs], [r["fid"] for r in rs],
                              [r["label_agreement"] for r in rs]) for n, rs in curves.items()}, real,
                    f"FID of {args.num_samples} digits against {args.reference} digits, and label agreement")
    print(f"plot: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
