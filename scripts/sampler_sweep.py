"""FID against sampling cost for every sampler, from one checkpoint: a markdown table, a plot, and
the fewest network evaluations at which some sampler comes within 10% of the best FID.

    python scripts/sampler_sweep.py --checkpoint checkpoints/cpu_default/final.pt --nfe 5 10 20 50 100 \
        --num_samples 5000 --plot docs/images/sampler_sweep.png

Rows: ddpm, ddim (eta 0), ddim_eta1 (eta 1), dpmpp_2m, euler, heun (Karras sigmas), each at the most
steps within every budget of network evaluations (Heun takes two per step but the last). Every row
(FID of the EMA weights' samples with its bootstrap spread, seconds per 1,000 digits) is stored in
--rows as soon as it is measured, keyed by the sha256 of the weights sampled (checkpoint.weights_sha256,
which a bit-identical retrain keeps), and the digits of the row being measured are saved every --chunk
digits, so a killed sweep resumes where it stopped. Seconds are
this machine's at the moment: time the rows alone on a quiet machine. A class-conditional
checkpoint is sampled balanced over the digits with --guidance (default: its own sample.guidance);
a guided evaluation runs the network on a doubled batch, which the seconds show.

Sweeps that share the machine (two at a time, OMP_NUM_THREADS=1 each, different --samplers, one
--rows file) time nothing useful; once they are done, `--time N` re-times every stored row on N
samples with nothing else running and stores those seconds (and the threads) in the row instead;
`--stored` prints the table of what is stored so far, leaving the budgets not yet measured blank:

    OMP_NUM_THREADS=1 python scripts/sampler_sweep.py --checkpoint C --samplers ddpm ddim ddim_eta1 &
    OMP_NUM_THREADS=1 python scripts/sampler_sweep.py --checkpoint C --samplers dpmpp_2m euler heun &
    wait; python scripts/sampler_sweep.py --checkpoint C --time 500
"""
import functools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from dataio import plots  # noqa: E402
from diffusion.samplers import evaluations, steps_for  # noqa: E402
from engine import checkpoint  # noqa: E402
from tasks import for_config  # noqa: E402
from common.errors import ArgumentParser, UserError, exit_on_user_error  # noqa: E402
from tasks.generation import generate  # noqa: E402
from common.runtime import pick_device  # noqa: E402
from engine.rows import Rows  # noqa: E402
from metrics.evaluation import fid_with_spread, lenet_reference  # noqa: E402

VARIANTS = {"ddpm": ("ddpm", 0.0), "ddim": ("ddim", 0.0), "ddim_eta1": ("ddim", 1.0), "dpmpp_2m": ("dpmpp_2m", 0.0),
            "euler": ("euler", 0.0), "heun": ("heun", 0.0)}


def table(rows: list[dict], variants: list[str], budgets: list[int]) -> str:
    """One line per sampler, one column per budget: FID +- spread (actual evaluations, s / 1,000)."""
    cell = {(r["variant"], r["budget"]): r for r in rows}
    out = ["| sampler | " + " | ".join(f"{b} evaluations" for b in budgets) + " |", "| --- |" + " --- |" * len(budgets)]
    for v in variants:
        cells = [cell.get((v, b)) for b in budgets]
        out.append(f"| {v} | " + " | ".join("" if r is None else f"{r['fid']:.1f} +- {r['fid_std']:.1f} "
                                             f"({r['nfe']}, {r['seconds_per_1000']:.0f} s)" for r in cells) + " |")
    return "\n".join(out) + "\n"


def fewest_within(rows: list[dict], share: float = 0.10) -> dict:
    """The row with the fewest evaluations whose FID is within `share` of the best FID of all rows."""
    best = min(r["fid"] for r in rows)
    return min((r for r in rows if r["fid"] <= (1 + share) * best), key=lambda r: (r["nfe"], r["fid"]))


@exit_on_user_error
def main():
    p = ArgumentParser(description="FID against network evaluations for every sampler")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--samplers", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--nfe", nargs="+", type=int, default=[5, 10, 20, 50, 100], help="budgets of network evaluations")
    p.add_argument("--num_samples", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--guidance", type=float, help="class-conditional models: guidance weight (default: the "
                   "checkpoint's sample.guidance; the default config's is 0.25)")
    p.add_argument("--batch_size", type=int, help="samples per batch (default: the checkpoint's sample.batch_size); "
                   "the samples do not depend on it, the seconds do")
    p.add_argument("--chunk", type=int, default=500, help="digits made between saves: a row killed midway "
                   "resumes from its last chunk (a multiple of --batch_size keeps the digits those of one run)")
    p.add_argument("--time", type=int, metavar="N", help="re-time every stored row on N samples (run it alone)")
    p.add_argument("--stored", action="store_true", help="print (and plot) the stored rows only; measure nothing, "
                   "so budgets not measured yet stay blank")
    p.add_argument("--data_root", default="data")
    p.add_argument("--cache_dir", default="data/fid_cache")
    p.add_argument("--rows", help="JSON file of measured rows (default: results/sweeps/sampler_NAME.json)")
    p.add_argument("--plot", help="write the plot here (PNG)")
    args = p.parse_args()
    if min(args.nfe) < 1 or args.num_samples < 2:
        raise UserError("--nfe budgets must be >= 1 and --num_samples >= 2 (FID needs a covariance)")
    if (args.batch_size is not None and args.batch_size < 1) or (args.time is not None and args.time < 1) \
            or args.chunk < 1:
        raise UserError("--batch_size, --chunk and --time must be >= 1")
    if args.stored and args.time:
        raise UserError("--stored measures nothing and --time re-times rows: give one of them")
    ckpt_path = Path(args.checkpoint)
    device = pick_device("auto")
    ckpt, cfg, model = checkpoint.load_model(ckpt_path, device=device)
    if not for_config(cfg).makes_digits:
        raise UserError(f"{ckpt_path} is not an MNIST generation checkpoint; the sweep scores digits")
    guidance = cfg.sample.guidance if args.guidance is None else args.guidance
    if guidance and not cfg.model.num_classes:
        raise UserError(f"--guidance needs a class-conditional checkpoint; {ckpt_path} is unconditional")
    key = {"weights_sha256": checkpoint.weights_sha256(ckpt), "num_samples": args.num_samples, "seed": args.seed,
           "guidance": guidance}
    store = Rows(args.rows or f"results/sweeps/sampler_{ckpt_path.parent.name}.json", key, checkpoint=str(ckpt_path))
    batch_size = args.batch_size or cfg.sample.batch_size

    @functools.cache
    def reference():  # loaded for the first row measured: re-timing and reprinting score nothing
        return lenet_reference(args.data_root, args.cache_dir)

    def make(sampler, steps, eta, indices, n=args.num_samples, log=True):
        images = generate(model, cfg, n, seed=args.seed, sampler=sampler, steps=steps, eta=eta, guidance=guidance,
                          batch_size=batch_size, device=device, progress=False, indices=indices)
        if log:
            print(f"  {sampler} x{steps}: digits {indices[0]}-{indices[-1]} of {n} made", flush=True)
        return images

    def timed(sampler, steps, eta, n):
        start = time.perf_counter()
        make(sampler, steps, eta, np.arange(n), n, log=False)
        return 1000 * (time.perf_counter() - start) / n

    for variant in args.samplers:
        sampler, eta = VARIANTS[variant]
        for budget in args.nfe:
            row = store.find(variant=variant, budget=budget)
            if args.time and row:
                seconds = timed(sampler, row["steps"], eta, args.time)
                store.add({**row, "seconds_per_1000": seconds, "threads": torch.get_num_threads(),
                           "timed_on": args.time}, replace={"variant": variant, "budget": budget})
                print(f"{variant} x{row['steps']}: {seconds:.1f} s per 1,000 digits ({args.time} digits, "
                      f"{torch.get_num_threads()} threads)", flush=True)
            if row or args.time or args.stored:
                continue
            steps = min(steps_for(sampler, budget), cfg.diffusion.timesteps)
            images, seconds = store.generate(f"{variant}_x{budget}", args.num_samples, args.chunk,
                                             functools.partial(make, sampler, steps, eta))
            seconds *= 1000 / args.num_samples
            extract, ref = reference()
            fid, fid_std = fid_with_spread(extract(images), ref)
            row = store.add({"variant": variant, "sampler": sampler, "eta": eta, "budget": budget, "steps": steps,
                             "nfe": evaluations(sampler, steps), "seconds_per_1000": seconds,
                             "threads": torch.get_num_threads(), "timed_on": args.num_samples,
                             "fid": fid, "fid_std": fid_std})
            print(f"{variant} x{steps} ({row['nfe']} evaluations): FID {row['fid']:.2f} +- {row['fid_std']:.2f}, "
                  f"{row['seconds_per_1000']:.1f} s per 1,000 digits", flush=True)
    rows = [r for r in store.rows if r["variant"] in args.samplers and r["budget"] in args.nfe]
    if not rows:
        raise UserError(f"no rows stored in {store.path} for these samplers and budgets: run the sweep without --time")
    print(f"\nFID (shipped LeNet features, {args.num_samples} samples, seed {args.seed}, guidance {guidance:g}) "
          "+- bootstrap spread, "
          f"(network evaluations, seconds per 1,000 digits on this machine); checkpoint {ckpt_path}\n")
    print(table(rows, args.samplers, args.nfe))
    best, fast = min(rows, key=lambda r: r["fid"]), fewest_within(rows)
    print(f"best FID: {best['variant']} at {best['nfe']} evaluations, {best['fid']:.1f}; fewest evaluations within "
          f"10% of it: {fast['variant']} at {fast['nfe']} ({fast['fid']:.1f})")
    if args.plot:
        lines = {v: [(r["nfe"], r["fid"], r["fid_std"], r["seconds_per_1000"]) for r in rows if r["variant"] == v]
                 for v in args.samplers}
        floor = float(np.mean(reference()[1]["floor"]))
        plots.sampler_sweep(args.plot, {v: pts for v, pts in lines.items() if pts}, floor,
                            f"{ckpt_path}: {args.num_samples} samples per point")
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
