"""FID against the number of sampling steps for each sampler, from one checkpoint; prints a
markdown table (and writes it with --out).

    python scripts/sampler_sweep.py --checkpoint checkpoints/demo/final.pt --steps 5 10 20 50 \
        --samplers ddim ddpm dpmpp_2m euler heun --num_samples 1000 --out results/sampler_sweep.md

FID with fewer than 5,000 samples is biased upwards: compare rows of one table, not with the leaderboard.
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from diffusion.samplers import SAMPLERS  # noqa: E402
from engine import checkpoint  # noqa: E402
from engine.errors import ArgumentParser, exit_on_user_error  # noqa: E402
from engine.fileio import write_text  # noqa: E402
from engine.generation import generate, pick_device  # noqa: E402
from metrics.evaluation import lenet_fid  # noqa: E402
from models.model import build_model  # noqa: E402


@exit_on_user_error
def main():
    p = ArgumentParser(description="FID against sampling steps for each sampler")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=SAMPLERS)
    p.add_argument("--steps", nargs="+", type=int, default=[5, 10, 20, 50])
    p.add_argument("--num_samples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data_root", default="data")
    p.add_argument("--cache_dir", default="data/fid_cache")
    p.add_argument("--out", help="also write the table to this file")
    args = p.parse_args()
    ckpt = checkpoint.load(args.checkpoint)
    cfg = checkpoint.config_of(ckpt, args.checkpoint)
    model = build_model(cfg)
    checkpoint.load_weights(model, ckpt["ema"]["model"], args.checkpoint, "EMA")
    device = pick_device("auto")
    model.to(device, memory_format=torch.channels_last)
    fid_of = lenet_fid(args.data_root, args.cache_dir)
    rows = []
    for sampler in args.samplers:
        cells = []
        for steps in args.steps:
            start = time.perf_counter()
            images = generate(model, cfg, args.num_samples, seed=args.seed, sampler=sampler, steps=steps, eta=0.0,
                              batch_size=cfg.sample.batch_size, device=device, progress=False)
            ms = 1000 * (time.perf_counter() - start) / args.num_samples
            fid = fid_of(images)
            cells.append(f"{fid:.1f} ({ms:.0f} ms)")
            print(f"{sampler} x{steps}: FID {fid:.2f}, {ms:.1f} ms/image", flush=True)
        rows.append(f"| {sampler} | " + " | ".join(cells) + " |")
    table = "\n".join([f"| sampler | " + " | ".join(f"{s} steps" for s in args.steps) + " |",
                       "| --- |" + " --- |" * len(args.steps), *rows]) + "\n"
    print(table)
    if args.out:
        write_text(args.out, f"FID (LeNet, {args.num_samples} samples, seed {args.seed}) and time per image, "
                             f"checkpoint {args.checkpoint}\n\n" + table)


if __name__ == "__main__":
    main()
