"""Choose autoguidance's guide and weight: FID (and label agreement) for each guide snapshot and weight.

    python scripts/autoguidance_sweep.py --checkpoint checkpoints/NAME/final.pt \\
        --guides checkpoints/NAME/snapshots/step_0000600.pt ... --weights 1.2 1.6 [--num_samples 2000]
        [--reference train] [--rows JSON]

Each guide is a snapshot of the same run (train.keep_every), earlier in training; each row samples
--num_samples digits with the checkpoint's sample.* settings, its classifier-free guidance included,
steered away from that snapshot's EMA weights with each weight, plus one row without autoguidance.
FIDs are against 10,000 training digits by default (choose without looking at the test digits).
Rows are stored as measured (default results/sweeps/autoguidance_NAME.json); rerunning skips them.
Keep the winner with scripts/set_guide.py.
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.errors import ArgumentParser, UserError, exit_on_user_error  # noqa: E402
from common.runtime import pick_device  # noqa: E402
from engine import checkpoint  # noqa: E402
from engine.rows import Rows  # noqa: E402
from grading.regenerate import grader_settings  # noqa: E402
from grading.submissions import label_agreement  # noqa: E402
from metrics import features  # noqa: E402
from metrics.evaluation import fid_with_spread, lenet_reference, training_floor, training_reference  # noqa: E402
from tasks.generate import generate_from  # noqa: E402
from tasks.generation import conditioning  # noqa: E402


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--guides", nargs="+", required=True, help="snapshots of the same run (their EMA weights guide)")
    p.add_argument("--weights", type=float, nargs="+", required=True, help="autoguidance weights (> 0)")
    p.add_argument("--num_samples", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reference", default="train", choices=("train", "test"))
    p.add_argument("--rows", help="JSON file of measured rows (default: results/sweeps/autoguidance_NAME.json)")
    p.add_argument("--data_root", default="data")
    p.add_argument("--cache_dir", default="data/fid_cache")
    args = p.parse_args(argv)
    if min(args.weights) <= 0 or args.num_samples < 20:
        raise UserError("--weights must be > 0 and --num_samples at least 20")
    device = pick_device("auto")
    path = Path(args.checkpoint)
    ckpt, cfg, model = checkpoint.load_model(path, device=device)
    guides = {}
    for g in args.guides:
        snap, snap_cfg, net = checkpoint.load_model(g, device=device)
        if snap_cfg.model != cfg.model or not 0 < snap["step"] < ckpt["step"]:
            raise UserError(f"{g} is not an earlier snapshot of {path}'s network (step {snap['step']})")
        guides[int(snap["step"])] = net
    ref = training_reference(args.data_root) if args.reference == "train" else \
        lenet_reference(args.data_root, args.cache_dir)[1]
    lenet = features.load_lenet()
    store = Rows(args.rows or f"results/sweeps/autoguidance_{path.parent.name}.json",
                 {"weights_sha256": checkpoint.weights_sha256({**ckpt, "guide": None}), "num_samples": args.num_samples,
                  "seed": args.seed, "reference": args.reference}, checkpoint=str(path))
    settings = grader_settings(cfg, args.seed, args.num_samples)
    wanted = [(0, 0.0)] + [(step, w) for step in sorted(guides) for w in args.weights]
    for step, w in wanted:
        if store.find(guide_step=step, autoguidance=w) is None:
            start = time.perf_counter()
            images = generate_from(model, cfg, {**settings, "autoguidance": w}, device=device, guide=guides.get(step))
            seconds = time.perf_counter() - start
            feats, probs = features.extract(lenet, images, progress=False)
            fid, fid_std = fid_with_spread(feats, ref)
            asked = {**conditioning(cfg), "digit": -1}
            agree = label_agreement(probs, asked).get("label_agreement")
            store.add({"guide_step": step, "autoguidance": w, "fid": fid, "fid_std": fid_std, "label_agreement": agree,
                       "seconds_per_1000": 1000 * seconds / args.num_samples})
            print(f"guide step {step}, autoguidance {w:g}: FID {fid:.2f} +- {fid_std:.2f}", flush=True)
    real = training_floor(args.data_root, args.num_samples, ref, lenet)
    s = cfg.sample
    print(f"\n{path}: {args.num_samples} digits per row ({s.sampler} x{s.steps}"
          + (f", guidance {s.guidance:g}" if s.guidance else "") + f", seed {args.seed}), FID against "
          f"{args.reference} digits +- bootstrap spread; {args.num_samples} real training digits score {real:.2f}\n")
    print("| guide (EMA of step) | autoguidance | FID | label agreement | s / 1,000 digits |")
    print("| --- | --- | --- | --- | --- |")
    for step, w in wanted:
        r = store.find(guide_step=step, autoguidance=w)
        agree = f"{r['label_agreement']:.1%}" if r["label_agreement"] is not None else "-"
        print(f"| {step or 'none'} | {w:g} | {r['fid']:.2f} +- {r['fid_std']:.2f} | {agree} | {r['seconds_per_1000']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
