"""Generate digits, or complete masked test digits, with a trained checkpoint.

    python sample.py --checkpoint checkpoints/alice/final.pt --student_name alice [--num_samples 5000]
        [--sampler ddim|ddpm|dpmpp_2m|euler|heun] [--steps S] [--spacing trailing|uniform|leading]
        [--eta E] [--batch_size B] [--seed K] [--no-ema] [--guidance W] [--digit D] [--no-progress]
        [sample.KEY=VALUE ...]
    python sample.py --checkpoint ... --task inpaint [--mask center|box|half|pixels|center8|center12]
        [--mask_size K] [--n N] [--mean_of K] [inpaint.dc_repeats=R inpaint.jump_length=J inpaint.mean_at=F ...]
    python sample.py --checkpoint ... --task course --input masked.npz --out submission.npz
    python sample.py --checkpoint a.pt b.pt ... [--weights WA WB ...] --task inpaint|course ...

generate writes outputs/NAME/samples/00000.png..., outputs/NAME/samples.npz (uint8 N x 28 x 28,
key "images"), outputs/NAME/grid.png (first 100) and outputs/NAME/samples.json (what made them).
torchrun --nproc_per_node N sample.py ... splits generate's samples over N processes; every sample
has its own noise (seeded by --seed and its index), so the files are the same for any N or
--batch_size. A two-moons checkpoint (the moons task) writes outputs/NAME/samples.npz (float32 N x 2, key
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
import sys
import time
from pathlib import Path

import numpy as np
import torch

from dataio import masks
from common.errors import ArgumentParser, UserError, exit_on_user_error
from common.fileio import check_name, ensure_dir, sha256_file, write_json
from common.runtime import pick_device, timing
from dataio.images import read_course_npz, save_npz, save_rows, value_scale
from dataio.mnist import EVAL_SEED, eval_indices, load_mnist
from diffusion.samplers import SAMPLERS, SIGMAS, SPACINGS
from common import distributed
from engine import checkpoint, config
from tasks import for_config
from tasks.completion import complete_ensemble, panel_rows

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
    p.add_argument("--mean_of", type=int, help="inpaint/course: average K completions per image (inpaint.mean_of)")
    p.add_argument("--input", help="course: npz of masked 28x28 digits")
    p.add_argument("--out", help="course: where to write the completed npz")
    p.add_argument("--data_root", default="data", help="inpaint: torchvision MNIST root")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights instead of the EMA")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    p.add_argument("--out_root", default="outputs", help="outputs go to OUT_ROOT/NAME/")
    p.add_argument("overrides", nargs="*", help="sample.KEY=VALUE (e.g. sample.sampler=ddpm); inpaint/course also "
                   "inpaint.KEY=VALUE and task.mask*=VALUE")
    args = p.parse_args(argv)
    # --checkpoint takes several files, so KEY=VALUE right after it lands there: move it back
    args.overrides = [c for c in args.checkpoint if "=" in c and not Path(c).is_file()] + args.overrides
    args.checkpoint = [c for c in args.checkpoint if c not in args.overrides]
    return args


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
    if args.task == "generate" and (args.mask or args.mask_size or args.mean_of):
        raise UserError("--mask, --mask_size and --mean_of are for --task inpaint or course")
    if args.task == "generate" and any(not o.startswith("sample.") for o in args.overrides):
        bad = next(o for o in args.overrides if not o.startswith("sample."))
        raise UserError(f"override {bad!r}: generating digits takes sample.KEY=VALUE overrides only")
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
        cfg, model, guide, source = load_member(args, ckpt_path, device)
        task = for_config(cfg)
        if ctx.world > 1 and (args.task != "generate" or not task.makes_digits):
            raise UserError(f"torchrun splits MNIST generation only; run --task {args.task} with a {task.name} model "
                            "as one process (python sample.py ...)")
        if args.task == "generate":
            status = generate_digits(args, cfg, model, guide, device, name, source, ctx)
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
    """(config, network with the EMA or raw weights on device, the guide network of autoguidance or None,
    what to record of the checkpoint)."""
    ckpt, cfg, model = checkpoint.load_model(ckpt_path, ema=not args.no_ema, device=device)
    if args.steps is not None and args.steps > cfg.diffusion.timesteps:
        raise UserError(f"--steps {args.steps} exceeds the {cfg.diffusion.timesteps} training timesteps of "
                        f"{ckpt_path}; use at most that")
    guide = checkpoint.load_guide(ckpt, cfg, ckpt_path, device)
    return cfg, model, guide, {"checkpoint": str(ckpt_path), "checkpoint_sha256": sha256_file(ckpt_path),
                               "checkpoint_step": int(ckpt["step"]), "ema": not args.no_ema,
                               "train_seconds": round(float(ckpt.get("train_seconds", 0.0)), 1)}


def generate_digits(args, cfg, model, guide, device, name: str, source: dict, ctx: distributed.Context) -> int:
    ckpt_path = source["checkpoint"]
    config.apply_overrides(cfg, args.overrides, f"{ckpt_path}'s config")  # sample.KEY=VALUE; the flags win
    s, task = cfg.sample, for_config(cfg)
    n = args.num_samples or s.num_samples
    digit = s.digit if args.digit is None else args.digit
    settings = {"sampler": args.sampler or s.sampler, "steps": args.steps or s.steps, "eta": s.eta if args.eta is None
                else args.eta, "seed": s.seed if args.seed is None else args.seed, "spacing": args.spacing or s.spacing,
                "sigmas": args.sigmas or s.sigmas, "guidance": s.guidance if args.guidance is None else args.guidance,
                "autoguidance": s.autoguidance, "guidance_interval": list(s.guidance_interval), "digit": digit,
                "num_samples": n, "batch_size": args.batch_size or s.batch_size}
    if s.autoguidance and guide is None:
        raise UserError(f"{ckpt_path} holds no guide weights for sample.autoguidance; train with train.guide_step > 0 "
                        "or sample with sample.autoguidance=0")
    if args.digit is not None and not 0 <= args.digit <= 9:
        raise UserError(f"--digit must be one of 0-9, got {args.digit}")
    if settings["guidance"] < 0:
        raise UserError(f"--guidance must be >= 0, got {settings['guidance']}")
    if (args.guidance or args.digit is not None) and not cfg.model.num_classes:
        raise UserError(f"{ckpt_path} is an unconditional model: --guidance and --digit need one trained with "
                        "model.num_classes=10")
    if settings["guidance"] > 0 and not cfg.train.label_dropout:
        raise UserError(f"{ckpt_path} was trained with train.label_dropout=0, so its 'no label' prediction is untrained "
                        "and guidance would extrapolate from it; sample with --guidance 0")
    if settings["sampler"] in ("euler", "heun") and cfg.diffusion.zero_terminal_snr:
        raise UserError(f"--sampler {settings['sampler']} needs a finite sigma_max, but {ckpt_path} was trained with "
                        "zero_terminal_snr; use ddim, ddpm or dpmpp_2m")
    if n < ctx.world:
        raise UserError(f"{ctx.world} processes for {n} samples: use at most {n} processes")
    out_dir = Path(args.out_root) / name
    if ctx.main:
        ensure_dir(out_dir)  # checked before the long part, after the cheap checks
    done = task.write_samples(model, cfg, out_dir, settings, {"student_name": name, **source}, device=device, ctx=ctx,
                              progress=ctx.main and not args.no_progress, guide=guide)
    if ctx.main:
        print(done)
    return 0


def completion_config(args, cfg, ckpt_path) -> None:
    """Fold the inpainting flags and KEY=VALUE overrides into cfg (validated like a config file)."""
    if args.sampler not in (None, "ddim"):
        raise UserError(f"inpainting walks DDIM steps (eta sets the noise); --sampler {args.sampler} does not apply")
    allowed = [o for o in args.overrides if o.startswith(("sample.", "inpaint.", "task.mask"))]
    if len(allowed) < len(args.overrides):
        bad = next(o for o in args.overrides if o not in allowed)
        raise UserError(f"override {bad!r}: sample.py can only change sample.*, inpaint.* and task.mask* keys")
    flags = {"sample.steps": args.steps, "sample.eta": args.eta, "sample.spacing": args.spacing,
             "sample.batch_size": args.batch_size, "inpaint.mean_of": args.mean_of,
             "task.mask": COURSE_MASK if args.task == "course" else args.mask, "task.mask_size": args.mask_size}
    task = for_config(cfg)
    if not task.completes:
        raise UserError(f"{ckpt_path} is a {task.name} model; --task {args.task} completes MNIST digits")
    if (cfg.data.channels, cfg.data.image_size) != (1, 28):
        raise UserError(f"{ckpt_path} was trained on {cfg.data.channels} x {cfg.data.image_size} x "
                        f"{cfg.data.image_size} images; --task {args.task} completes 28 x 28 MNIST digits")
    given = [*allowed, *(f"{k}={v}" for k, v in flags.items() if v is not None)]
    task.check_completion_overrides(given, ckpt_path)
    config.apply_overrides(cfg, given, f"{ckpt_path}'s config")


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
    if any(for_config(c).stochastic for _, c in members):  # more draws of the same digits show the posterior
        for draw in range(1, PANEL_SAMPLES):
            rows.append(run(originals[:PANEL_DIGITS], mask[:PANEL_DIGITS], draw, progress=False))
    save_rows(out_dir / "samples.png", panel_rows(originals[:PANEL_DIGITS], mask[:PANEL_DIGITS], rows))
    save_npz(out_dir / "completions.npz", images=done, indices=indices.numpy(), masks=mask[:, 0].numpy())
    method = ensemble_name([c for _, c in members], weights)
    write_json(out_dir / "completions.json", {
        "student_name": name, "n": len(indices), "seed": seed, "method": method, **source,
        "task": k.name, "mask": k.mask, "mask_size": k.mask_size, "mask_fraction": k.mask_fraction,
        "sample": cfg.sample.__dict__, "inpaint": cfg.inpaint.__dict__, "seconds_per_image": round(seconds / len(indices), 4),
        **timing(device, seconds, len(indices))})
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
    return for_config(cfg).method_name(cfg)


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
