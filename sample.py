"""Generate digits from a trained checkpoint.

    python sample.py --checkpoint checkpoints/alice/final.pt --student_name alice [--num_samples 5000]
        [--sampler ddim|ddpm|dpmpp_2m|euler|heun] [--steps S] [--spacing trailing|uniform|leading]
        [--eta E] [--batch_size B] [--seed K] [--no-ema] [--guidance W] [--digit D]

Writes outputs/NAME/samples/00000.png..., outputs/NAME/samples.npz (uint8 N x 28 x 28, key
"images"), outputs/NAME/grid.png (first 100) and outputs/NAME/samples.json (what made them).
"""
import datetime
import sys
import time
from pathlib import Path

import torch

from dataio.images import save_grid, save_npz, write_png_folder
from diffusion.samplers import SAMPLERS, SPACINGS
from engine import checkpoint
from engine.errors import ArgumentParser, UserError, exit_on_user_error
from engine.fileio import atomic_dir, check_name, ensure_dir, sha256_file, write_json
from engine.generation import generate, pick_device
from models.model import build_model


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--checkpoint", required=True, help="a .pt file written by train.py")
    p.add_argument("--student_name", help="output name (default: the checkpoint's folder name)")
    p.add_argument("--num_samples", type=int, help="default: the config's sample.num_samples (5000)")
    p.add_argument("--sampler", choices=SAMPLERS, help="default: the config's sample.sampler")
    p.add_argument("--steps", type=int, help="denoising steps (default: sample.steps)")
    p.add_argument("--eta", type=float, help="DDIM noise scale (default: sample.eta)")
    p.add_argument("--spacing", choices=SPACINGS, help="timestep spacing (default: sample.spacing)")
    p.add_argument("--batch_size", type=int, help="default: sample.batch_size")
    p.add_argument("--seed", type=int, help="default: sample.seed")
    p.add_argument("--guidance", type=float, help="classifier-free guidance weight (class-conditional models)")
    p.add_argument("--digit", type=int, help="generate only this digit 0-9 (class-conditional models)")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights instead of the EMA")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--out_root", default="outputs", help="outputs go to OUT_ROOT/NAME/")
    args = p.parse_args(argv)

    ckpt_path = Path(args.checkpoint)
    name = check_name(args.student_name or ckpt_path.parent.name)
    for flag in ("num_samples", "steps", "batch_size"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise UserError(f"--{flag} must be at least 1, got {getattr(args, flag)}")
    if args.eta is not None and args.eta < 0:
        raise UserError(f"--eta must be >= 0, got {args.eta}")

    ckpt = checkpoint.load(ckpt_path)
    cfg = checkpoint.config_of(ckpt, ckpt_path)
    s = cfg.sample
    n = args.num_samples or s.num_samples
    sampler, steps, spacing = args.sampler or s.sampler, args.steps or s.steps, args.spacing or s.spacing
    eta = s.eta if args.eta is None else args.eta
    seed = s.seed if args.seed is None else args.seed
    batch_size = args.batch_size or s.batch_size
    guidance = s.guidance if args.guidance is None else args.guidance
    digit = s.digit if args.digit is None else args.digit
    if args.digit is not None and not 0 <= args.digit <= 9:
        raise UserError(f"--digit must be one of 0-9, got {args.digit}")
    if guidance < 0:
        raise UserError(f"--guidance must be >= 0, got {guidance}")
    if (args.guidance or args.digit is not None) and not cfg.model.num_classes:
        raise UserError(f"{ckpt_path} is an unconditional model: --guidance and --digit need one trained with "
                        "model.num_classes=10")
    if sampler in ("euler", "heun") and cfg.diffusion.zero_terminal_snr:
        raise UserError(f"--sampler {sampler} needs a finite sigma_max, but {ckpt_path} was trained with "
                        "zero_terminal_snr; use ddim, ddpm or dpmpp_2m")
    if steps > cfg.diffusion.timesteps:
        raise UserError(f"--steps {steps} exceeds the {cfg.diffusion.timesteps} training timesteps; use at most that")

    device = pick_device(args.device)
    model = build_model(cfg)
    use_ema = not args.no_ema
    checkpoint.load_weights(model, ckpt["ema"]["model"] if use_ema else ckpt["model"], ckpt_path,
                            "EMA" if use_ema else "model")
    model.to(device, memory_format=torch.channels_last)
    out_dir = ensure_dir(Path(args.out_root) / name)  # checked before the long part, after the cheap checks

    start = time.perf_counter()
    images = generate(model, cfg, n, seed=seed, sampler=sampler, steps=steps, eta=eta, batch_size=batch_size,
                      device=device, spacing=spacing, guidance=guidance, digit=digit)
    seconds = time.perf_counter() - start

    with atomic_dir(out_dir / "samples") as tmp:
        write_png_folder(tmp, images)
    save_npz(out_dir / "samples.npz", images=images)
    save_grid(out_dir / "grid.png", images[:100], nrow=10)
    write_json(out_dir / "samples.json", {
        "student_name": name, "num_samples": int(n), "checkpoint": str(ckpt_path),
        "checkpoint_sha256": sha256_file(ckpt_path), "checkpoint_step": int(ckpt["step"]), "ema": use_ema,
        "sampler": sampler, "steps": steps, "spacing": spacing, "eta": eta, "guidance": guidance, "digit": digit,
        "seed": seed, "batch_size": batch_size,
        "device": str(device), "seconds": round(seconds, 2), "images_per_s": round(n / seconds, 2),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": checkpoint.versions(),
    })
    print(f"{n} samples in {seconds:.1f}s ({n / seconds:.1f} img/s) -> {out_dir}/samples/, "
          f"{out_dir}/samples.npz; grid: {out_dir}/grid.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
