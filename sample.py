"""Generate digits, or complete masked test digits, with a trained checkpoint.

    python sample.py --checkpoint checkpoints/alice/final.pt --student_name alice [--num_samples 5000]
        [--sampler ddim|ddpm|dpmpp_2m|euler|heun] [--steps S] [--spacing trailing|uniform|leading]
        [--eta E] [--batch_size B] [--seed K] [--no-ema] [--guidance W] [--digit D] [--no-progress]
    python sample.py --checkpoint ... --task inpaint [--mask center|box|half|pixels|center8|center12]
        [--mask_size K] [--n N] [--mean_of K] [sample.dc_repeats=R sample.jump_length=J sample.mean_at=F ...]
    python sample.py --checkpoint ... --task course --input masked.npz --out submission.npz
    python sample.py --checkpoint a.pt b.pt ... [--weights WA WB ...] --task inpaint|course ...

generate writes outputs/NAME/samples/00000.png..., outputs/NAME/samples.npz (uint8 N x 28 x 28,
key "images"), outputs/NAME/grid.png (first 100) and outputs/NAME/samples.json (what made them).
torchrun --nproc_per_node N sample.py ... splits generate's samples over N processes; every sample
has its own noise (seeded by --seed and its index), so the files are the same for any N or
--batch_size. A two-moons checkpoint (data.name: moons) writes outputs/NAME/samples.npz (float32 N x 2, key
"points") and the plots moons.png (target vs generated), generated.png and reverse.png.
inpaint completes N MNIST test digits (chosen by --seed, default 42, as evaluate.py expects) and
writes outputs/NAME/inpaint/completions.npz (images, indices, masks), completions.json and
samples.png (rows: masked input, completions (3 draws for diffusion), original). Any checkpoint works: task
generate inpaints training-free, inpaint conditions on the masked image, complete is one pass.
course fills the 8x8 center ([10:18, 10:18]) of every image in --input and writes --out in the
input's layout and dtype. Several checkpoints make an ensemble for inpaint and course: the weighted
mean of their completions (equal weights unless --weights; scripts/fit_ensemble.py fits them on
validation digits).
"""
import datetime
import sys
import time
from pathlib import Path

import numpy as np
import torch

from dataio import masks
from dataio.images import read_course_npz, save_grid, save_npz, save_rows, value_scale, write_png_folder
from dataio.mnist import EVAL_SEED, eval_indices, load_mnist
from diffusion.samplers import SAMPLERS, SIGMAS, SPACINGS
from engine import checkpoint, config, distributed, moons
from engine.errors import ArgumentParser, UserError, exit_on_user_error
from engine.fileio import atomic_dir, check_name, ensure_dir, sha256_file, write_json
from engine.generation import generate, pick_device
from engine.inpainting import complete_ensemble, panel_rows, stop_level

PANEL_DIGITS, PANEL_SAMPLES = 10, 3
COURSE_MASK = "center8"  # the course task: image[10:18, 10:18] = 0


def parse(argv):
    p = ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--checkpoint", required=True, nargs="+", help="a .pt file written by train.py; inpaint and "
                   "course take several (an ensemble)")
    p.add_argument("--weights", type=float, nargs="+", help="inpaint/course: one weight per checkpoint "
                   "(default: equal)")
    p.add_argument("--student_name", help="output name (default: the checkpoint's folder name)")
    p.add_argument("--task", default="generate", choices=("generate", "inpaint", "course"))
    p.add_argument("--num_samples", type=int, help="default: the config's sample.num_samples (5000)")
    p.add_argument("--sampler", choices=SAMPLERS, help="default: the config's sample.sampler")
    p.add_argument("--steps", type=int, help="denoising steps (default: sample.steps)")
    p.add_argument("--eta", type=float, help="DDIM noise scale (default: sample.eta)")
    p.add_argument("--spacing", choices=SPACINGS, help="timestep spacing (default: sample.spacing)")
    p.add_argument("--sigmas", choices=SIGMAS, help="euler/heun noise levels (default: sample.sigmas)")
    p.add_argument("--batch_size", type=int, help="default: sample.batch_size")
    p.add_argument("--seed", type=int, help=f"default: sample.seed; inpaint: {EVAL_SEED} (evaluate.py's test digits)")
    p.add_argument("--guidance", type=float, help="classifier-free guidance weight (class-conditional models)")
    p.add_argument("--digit", type=int, help="generate only this digit 0-9 (class-conditional models)")
    p.add_argument("--mask", choices=masks.MASKS, help="inpaint: mask kind (default: the config's task.mask)")
    p.add_argument("--mask_size", type=int, help="inpaint: hole side for center/box masks (default: task.mask_size)")
    p.add_argument("--n", type=int, default=500, help="inpaint: test digits to complete (default 500)")
    p.add_argument("--mean_of", type=int, help="inpaint/course: average K completions per image (sample.mean_of)")
    p.add_argument("--input", help="course: npz of masked 28x28 digits")
    p.add_argument("--out", help="course: where to write the completed npz")
    p.add_argument("--data_root", default="data", help="inpaint: torchvision MNIST root")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights instead of the EMA")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    p.add_argument("--out_root", default="outputs", help="outputs go to OUT_ROOT/NAME/")
    p.add_argument("overrides", nargs="*", help="inpaint/course: sample.KEY=VALUE or task.mask*=VALUE")
    return p.parse_args(argv)


@exit_on_user_error
def main(argv=None) -> int:
    args = parse(argv)
    paths = [Path(c) for c in args.checkpoint]
    name = check_name(args.student_name or paths[0].parent.name)
    for flag in ("num_samples", "steps", "batch_size", "n", "mean_of"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise UserError(f"--{flag} must be at least 1, got {getattr(args, flag)}")
    if args.eta is not None and args.eta < 0:
        raise UserError(f"--eta must be >= 0, got {args.eta}")
    if args.task == "generate" and (args.overrides or args.mask or args.mask_size or args.mean_of):
        raise UserError("--mask, --mask_size, --mean_of and KEY=VALUE overrides are for --task inpaint or course")
    if args.task == "course" and not (args.input and args.out):
        raise UserError("--task course needs --input masked.npz and --out submission.npz")
    if len(paths) > 1 and args.task == "generate":
        raise UserError("several --checkpoint files make an ensemble for --task inpaint or course; "
                        "generate takes one")
    weights = args.weights or [1 / len(paths)] * len(paths)
    if len(weights) != len(paths):
        raise UserError(f"--weights gives {len(weights)} weights for {len(paths)} checkpoints; give one per checkpoint")

    requested = pick_device(args.device)
    ctx = distributed.init(requested)  # under torchrun: --task generate splits the samples
    device = distributed.device_for(ctx, requested)
    members, sources = [], []
    for ckpt_path in paths:
        cfg, model, source = load_member(args, ckpt_path, device)
        if ctx.world > 1 and (args.task != "generate" or cfg.data.name == "moons"):
            raise UserError(f"torchrun splits MNIST generation only; run --task {args.task} "
                            f"{'(two moons) ' if cfg.data.name == 'moons' else ''}as one process (python sample.py ...)")
        if args.task == "generate":
            status = generate_digits(args, cfg, model, device, name, source, ctx)
            distributed.close(ctx)
            return status
        completion_config(args, cfg, ckpt_path)
        members.append((model, cfg))
        sources.append(source)
    source = sources[0] if len(sources) == 1 else {
        **{k: [s[k] for s in sources] for k in sources[0]}, "weights": weights}
    if args.task == "course":
        return course(args, members, weights, device)
    return inpaint_test_digits(args, members, weights, device, name, source)


def load_member(args, ckpt_path: Path, device):
    """(config, network with the EMA or raw weights on device, what to record of the checkpoint)."""
    ckpt, cfg, model = checkpoint.load_model(ckpt_path, ema=not args.no_ema, device=device)
    if args.steps is not None and args.steps > cfg.diffusion.timesteps:
        raise UserError(f"--steps {args.steps} exceeds the {cfg.diffusion.timesteps} training timesteps of "
                        f"{ckpt_path}; use at most that")
    return cfg, model, {"checkpoint": str(ckpt_path), "checkpoint_sha256": sha256_file(ckpt_path),
                        "checkpoint_step": int(ckpt["step"]), "ema": not args.no_ema,
                        "train_seconds": round(float(ckpt.get("train_seconds", 0.0)), 1)}


def generate_digits(args, cfg, model, device, name: str, source: dict, ctx: distributed.Context) -> int:
    ckpt_path, s = source["checkpoint"], cfg.sample
    if cfg.task.name != "generate":
        raise UserError(f"{ckpt_path} was trained for task.name={cfg.task.name}, which completes masked digits; "
                        "use --task inpaint or --task course")
    n = args.num_samples or s.num_samples
    sampler, steps, spacing = args.sampler or s.sampler, args.steps or s.steps, args.spacing or s.spacing
    sigmas = args.sigmas or s.sigmas
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
    if guidance > 0 and not cfg.train.label_dropout:
        raise UserError(f"{ckpt_path} was trained with train.label_dropout=0, so its 'no label' prediction is untrained "
                        "and guidance would extrapolate from it; sample with --guidance 0")
    if sampler in ("euler", "heun") and cfg.diffusion.zero_terminal_snr:
        raise UserError(f"--sampler {sampler} needs a finite sigma_max, but {ckpt_path} was trained with "
                        "zero_terminal_snr; use ddim, ddpm or dpmpp_2m")
    if n < ctx.world:
        raise UserError(f"{ctx.world} processes for {n} samples: use at most {n} processes")
    out_dir = Path(args.out_root) / name
    if ctx.main:
        ensure_dir(out_dir)  # checked before the long part, after the cheap checks

    if cfg.data.name == "moons":
        moons.sample_and_save(model, cfg, out_dir, {"student_name": name, **source, "device": str(device)}, n=n,
                              seed=seed, device=device, sampler=sampler, steps=steps, spacing=spacing,
                              sigmas=sigmas, eta=eta, batch_size=batch_size, progress=not args.no_progress)
        print(f"{n} points -> {out_dir}/samples.npz; plots: {out_dir}/moons.png, {out_dir}/generated.png, "
              f"{out_dir}/reverse.png")
        return 0
    start = time.perf_counter()
    images = generate(model, cfg, n, seed=seed, sampler=sampler, steps=steps, eta=eta, batch_size=batch_size,
                      device=device, spacing=spacing, sigmas=sigmas, guidance=guidance, digit=digit,
                      indices=ctx.share(n), progress=ctx.main and not args.no_progress)
    images = distributed.gather_to_main(ctx, images)  # every sample's noise is its own: the split changes nothing
    seconds = time.perf_counter() - start
    if not ctx.main:
        return 0
    meta = {"student_name": name, "num_samples": int(n), **source, "sampler": sampler, "steps": steps,
            "spacing": spacing, "sigmas": sigmas, "eta": eta, "guidance": guidance, "digit": digit, "seed": seed,
            "num_classes": cfg.model.num_classes,
            "batch_size": batch_size, "processes": ctx.world, **_timing(device, seconds, n)}
    with atomic_dir(out_dir / "samples") as tmp:
        write_png_folder(tmp, images)
    save_npz(out_dir / "samples.npz", images=images)
    save_grid(out_dir / "grid.png", images[:100], nrow=10)
    write_json(out_dir / "samples.json", meta)
    print(f"{n} samples in {seconds:.1f}s ({n / seconds:.1f} img/s) -> {out_dir}/samples/, "
          f"{out_dir}/samples.npz; grid: {out_dir}/grid.png")
    return 0


def _timing(device, seconds: float, n: int) -> dict:
    return {"device": str(device), "seconds": round(seconds, 2), "images_per_s": round(n / seconds, 2),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "versions": checkpoint.versions()}


def completion_config(args, cfg, ckpt_path) -> None:
    """Fold the inpainting flags and KEY=VALUE overrides into cfg (validated like a config file)."""
    if args.sampler not in (None, "ddim"):
        raise UserError(f"inpainting walks DDIM steps (eta sets the noise); --sampler {args.sampler} does not apply")
    allowed = [o for o in args.overrides if o.startswith(("sample.", "task.mask"))]
    if len(allowed) < len(args.overrides):
        bad = next(o for o in args.overrides if o not in allowed)
        raise UserError(f"override {bad!r}: sample.py can only change sample.* and task.mask* keys")
    flags = {"sample.steps": args.steps, "sample.eta": args.eta, "sample.spacing": args.spacing,
             "sample.batch_size": args.batch_size, "sample.mean_of": args.mean_of,
             "task.mask": COURSE_MASK if args.task == "course" else args.mask, "task.mask_size": args.mask_size}
    if cfg.data.name == "moons":
        raise UserError(f"{ckpt_path} generates 2D points (data.name=moons); --task {args.task} completes MNIST digits")
    if (cfg.data.channels, cfg.data.image_size) != (1, 28):
        raise UserError(f"{ckpt_path} was trained on {cfg.data.channels} x {cfg.data.image_size} x "
                        f"{cfg.data.image_size} images; --task {args.task} completes 28 x 28 MNIST digits")
    given = [*allowed, *(f"{k}={v}" for k, v in flags.items() if v is not None)]
    diffusion_only = [o for o in given if o.startswith("sample.") and not o.startswith("sample.batch_size")]
    if cfg.task.name == "complete" and diffusion_only:
        raise UserError(f"{ckpt_path} is a one-pass completion model (task.name=complete), deterministic and "
                        f"without sampling steps; {diffusion_only[0].split('=')[0]} needs a diffusion checkpoint")
    config.apply_overrides(cfg, given)


def inpaint_test_digits(args, members: list, weights: list[float], device, name: str, source: dict) -> int:
    cfg = members[0][1]
    k, s = cfg.task, cfg.sample
    holes = {(c.task.mask, c.task.mask_size, c.task.mask_fraction) for _, c in members}
    if len(holes) > 1:
        raise UserError(f"the checkpoints were trained on different masks {sorted(holes)}; "
                        "pass --mask and --mask_size to complete the same one with all of them")
    seed = EVAL_SEED if args.seed is None else args.seed
    indices = eval_indices(args.n, seed)
    originals = load_mnist(args.data_root, train=False)[0][indices]
    gen = torch.Generator().manual_seed(seed)
    mask = masks.make(k.mask, len(indices), size=k.mask_size, fraction=k.mask_fraction, generator=gen)
    out_dir = ensure_dir(Path(args.out_root) / name / "inpaint")

    def run(images, hole, draw=0, progress=not args.no_progress):
        return complete_ensemble(members, weights, images, hole, seed, batch_size=s.batch_size, device=device,
                                 draw=draw, progress=progress)

    start = time.perf_counter()
    done = run(originals, mask)
    seconds = time.perf_counter() - start
    rows = [done[:PANEL_DIGITS]]
    if any(c.task.name != "complete" for _, c in members):  # more draws of the same digits show the posterior
        for draw in range(1, PANEL_SAMPLES):
            rows.append(run(originals[:PANEL_DIGITS], mask[:PANEL_DIGITS], draw, progress=False))
    save_rows(out_dir / "samples.png", panel_rows(originals[:PANEL_DIGITS], mask[:PANEL_DIGITS], rows))
    save_npz(out_dir / "completions.npz", images=done, indices=indices.numpy(), masks=mask[:, 0].numpy())
    method = ensemble_name([c for _, c in members], weights)
    write_json(out_dir / "completions.json", {
        "student_name": name, "n": len(indices), "seed": seed, "method": method, **source,
        "task": k.name, "mask": k.mask, "mask_size": k.mask_size, "mask_fraction": k.mask_fraction,
        "sample": cfg.sample.__dict__, "seconds_per_image": round(seconds / len(indices), 4),
        **_timing(device, seconds, len(indices))})
    print(f"{len(indices)} completions ({method}) in {seconds:.1f}s -> {out_dir}/completions.npz; "
          f"panel: {out_dir}/samples.png")
    return 0


def ensemble_name(cfgs: list, weights: list[float]) -> str:
    """method_name of one model; for several, 'ensemble of K: ' and each member's weight and method."""
    if len(cfgs) == 1:
        return method_name(cfgs[0])
    names = [method_name(c) for c in cfgs]
    if len(set(names)) == 1:
        return f"ensemble of {len(cfgs)} {names[0]}s, weights " + "/".join(f"{w:.2f}" for w in weights)
    return f"ensemble of {len(cfgs)}: " + " + ".join(f"{w:.2f} x {n}" for w, n in zip(weights, names))


def method_name(cfg) -> str:
    """A short label of how completions are made, for tables."""
    s = cfg.sample
    if cfg.task.name == "complete":
        return "one-pass regression" if cfg.task.loss_mse and not cfg.task.loss_ssim else "one-pass completion"
    kind = "conditional" if cfg.task.name == "inpaint" else "training-free"
    resample = f", RePaint j{s.jump_length} r{s.dc_repeats}" if s.dc_repeats > 1 else ", DC"
    mean = f", mean of {s.mean_of}" if s.mean_of > 1 else ""
    if s.mean_at:
        mean += f"{' ' if mean else ', '}estimates at t = {stop_level(cfg)}"
    eta = f" eta {s.eta:g}" if s.eta else ""
    return f"{kind} DDIM x{s.steps}{eta}{resample}{mean}"


def course(args, members: list, weights: list[float], device) -> int:
    """Fill the course's 8x8 center of every image in --input; keep its layout, dtype and scale."""
    src, dst = Path(args.input), Path(args.out)
    key, arr = read_course_npz(src)
    flat = arr.reshape(len(arr), 28, 28)
    scale = value_scale(arr)
    as_u8 = np.clip(np.rint(flat.astype(np.float64) * (255.0 / scale)), 0, 255).astype(np.uint8)
    mask = masks.make(COURSE_MASK, len(flat))
    s = members[0][1].sample
    done = complete_ensemble(members, weights, torch.from_numpy(as_u8), mask, s.seed if args.seed is None else args.seed,
                             batch_size=s.batch_size,
                             device=device, progress=not args.no_progress)
    out = flat.copy()
    hole = mask[:, 0].numpy()
    out[hole] = done[hole] if arr.dtype == np.uint8 else (done[hole] * (scale / 255.0)).astype(arr.dtype)
    save_npz(dst, **{key: out.reshape(arr.shape)})
    print(f"filled the 8x8 center of {len(out)} images from {src} -> {dst} ({key}: {arr.shape} {arr.dtype})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
