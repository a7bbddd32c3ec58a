"""Choose autoguidance's guide after training: the EMA weights of a kept snapshot (train.keep_every).

    python scripts/set_guide.py --checkpoint checkpoints/NAME/final.pt \\
        --snapshot checkpoints/NAME/snapshots/step_0001200.pt [--autoguidance 1.2]

Writes into the checkpoint (atomically) what a run with train.guide_step=STEP would have kept: the
snapshot's EMA weights as the guide, train.guide_step = the snapshot's step, and with --autoguidance
that weight as sample.autoguidance; the config.yaml beside the checkpoint gets the same two keys. The
guide does not change training, so this equals retraining with train.guide_step=STEP. The snapshot
must come from the same recipe (the same config, apart from the keys that do not change the weights:
train.guide_step, keep_every, ckpt_every, log_every, sample_every and sample.*), earlier in training.
Try candidates first with sample.py on a copy, scored by `evaluate.py --reference train`.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.errors import ArgumentParser, UserError, exit_on_user_error  # noqa: E402
from common.fileio import write_text  # noqa: E402
from engine import checkpoint, config  # noqa: E402

FREE = {"train": ("guide_step", "keep_every", "ckpt_every", "log_every", "sample_every")}


def weights_recipe(cfg_dict: dict) -> dict:
    """The config less what does not change the trained weights."""
    return {sec: {k: v for k, v in keys.items() if k not in FREE.get(sec, ())}
            for sec, keys in cfg_dict.items() if sec != "sample"}


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--snapshot", required=True)
    p.add_argument("--autoguidance", type=float, help="also set sample.autoguidance (> 0)")
    args = p.parse_args(argv)
    path, snap_path = Path(args.checkpoint), Path(args.snapshot)
    ckpt, snap = checkpoint.load(path), checkpoint.load(snap_path)
    cfg, snap_cfg = checkpoint.config_of(ckpt, path), checkpoint.config_of(snap, snap_path)
    if weights_recipe(cfg.to_dict()) != weights_recipe(snap_cfg.to_dict()):
        raise UserError(f"{snap_path} was trained with another config than {path}; use a snapshot of the same run")
    if not 0 < snap["step"] < ckpt["step"]:
        raise UserError(f"{snap_path} is from step {snap['step']}, not before {path}'s step {ckpt['step']}")
    if args.autoguidance is not None and args.autoguidance <= 0:
        raise UserError(f"--autoguidance must be > 0, got {args.autoguidance}")
    cfg.train.guide_step = int(snap["step"])
    if args.autoguidance is not None:
        cfg.sample.autoguidance = args.autoguidance
    cfg = config.from_dict(cfg.to_dict(), f"{path} with the guide of {snap_path}")  # the config rules again
    checkpoint.save(path, {**ckpt, "guide": snap["ema"]["model"], "config": cfg.to_dict()})
    beside = path.parent / "config.yaml"
    if beside.is_file():
        write_text(beside, config.save_yaml(cfg))
    print(f"{path}: guide = the EMA weights of step {snap['step']} ({snap_path}), sample.autoguidance "
          f"{cfg.sample.autoguidance:g}" + (f"; {beside} updated" if beside.is_file() else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
