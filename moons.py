"""The two-moons test bed with seed 004's command line: train, sample, score, plot, in one call.

    python moons.py --run [--train-steps N] [--batch-size B] [--lr LR] [--log-every K]
        [--sample-steps S] [--num-samples M] [--seed X] [--train-use-ema] [--sample-use-ema]
        [--ema-decay D] [--config configs/moons_seed.yaml] [--student_name moons] [section.key=value ...]

Each flag sets a key of the config (default configs/moons_seed.yaml, the seed's recipe; pass
--config configs/moons.yaml for this repository's best one); unset flags keep the config's values.
Training goes through the same trainer and checkpoints as train.py (checkpoints/NAME/), and
starts over unless --resume. Writes outputs/NAME/samples.npz with the plots moons.png (target vs
generated), generated.png and reverse.png, and results/NAME.json; prints the three metrics.
The EMA is always tracked (--train-use-ema is accepted for the seed's command lines); samples
use the raw weights unless --sample-use-ema, as in the seed.
"""
import sys
import time

from engine import checkpoint, config
from tasks import MOONS, for_config
from tasks import moons
from common.errors import ArgumentParser, UserError, exit_on_user_error
from common.fileio import check_name, ensure_dir
from common.runtime import pick_device
from engine.trainer import RunPaths, train
from tasks import build_network

FLAGS = {  # seed flag -> config keys it sets
    "train_steps": ("train.steps",), "batch_size": ("train.batch_size",), "lr": ("train.lr",),
    "log_every": ("train.log_every",), "sample_steps": ("sample.steps",), "num_samples": ("sample.num_samples",),
    "seed": ("train.seed", "sample.seed"), "ema_decay": ("train.ema_decay",),
}


def parse(argv):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", action="store_true", help="train, sample and evaluate (the seed's only action)")
    p.add_argument("--train-steps", dest="train_steps", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--log-every", dest="log_every", type=int)
    p.add_argument("--sample-steps", dest="sample_steps", type=int)
    p.add_argument("--num-samples", dest="num_samples", type=int)
    p.add_argument("--seed", type=int, help="one seed for the data, weights, batches and sampling noise")
    p.add_argument("--train-use-ema", dest="train_use_ema", action="store_true",
                   help="accepted for compatibility: the EMA is always tracked")
    p.add_argument("--sample-use-ema", dest="sample_use_ema", action="store_true", help="sample with the EMA weights")
    p.add_argument("--ema-decay", dest="ema_decay", type=float)
    p.add_argument("--config", default="configs/moons_seed.yaml")
    p.add_argument("--student_name", default="moons", help="run name for checkpoints/, outputs/ and results/")
    p.add_argument("--resume", action="store_true", help="continue checkpoints/NAME/last.pt instead of starting over")
    p.add_argument("--results", default="results")
    p.add_argument("--cache_dir", default="data/fid_cache", help="where the sampling floor is cached")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("overrides", nargs="*", metavar="section.key=value")
    return p.parse_args(argv)


@exit_on_user_error
def main(argv=None) -> int:
    args = parse(argv)
    if not args.run:
        raise UserError("nothing to do: pass --run to train, sample and evaluate")
    name = check_name(args.student_name)
    flags = [f"{key}={getattr(args, flag)}" for flag, keys in FLAGS.items() for key in keys
             if getattr(args, flag) is not None]
    cfg = config.load(args.config, args.overrides + flags)
    if for_config(cfg) is not MOONS:
        raise UserError(f"{args.config} has data.name={cfg.data.name}; moons.py runs two-moons configs "
                        "(configs/moons.yaml, configs/moons_seed.yaml)")
    progress = not args.no_progress
    paths = RunPaths.for_name(name)

    start = time.perf_counter()
    if train(cfg, name, restart=not args.resume, paths=paths, progress=progress) != "done":
        return 130
    train_seconds = time.perf_counter() - start

    ckpt = checkpoint.load(paths.final)
    model = build_network(cfg)
    weights = "ema" if args.sample_use_ema else "model"
    checkpoint.load_weights(model, ckpt["ema"]["model"] if args.sample_use_ema else ckpt["model"], paths.final, weights)
    device = pick_device(cfg.train.device)
    out_dir = ensure_dir(paths.out_dir)
    start = time.perf_counter()
    points, meta = moons.sample_and_save(
        model.to(device), cfg, out_dir,
        {"student_name": name, "checkpoint": str(paths.final), "ema": args.sample_use_ema, "device": str(device),
         "train_seconds": round(train_seconds, 2)},
        n=cfg.sample.num_samples, seed=cfg.sample.seed, device=device, progress=progress)
    sample_seconds = time.perf_counter() - start

    out = ensure_dir(args.results) / f"{name}.json"
    metrics = moons.write_result(out, name, points.astype("float64"), cfg.data.noise, ensure_dir(args.cache_dir),
                                 str(out_dir / "samples.npz"), meta)
    print(moons.summary(name, metrics))
    print(f"train {train_seconds:.1f}s, sample {sample_seconds:.1f}s; samples and plots in {out_dir}/ "
          f"(moons.png, generated.png, reverse.png); metrics in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
