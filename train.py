"""Train a diffusion model on MNIST from a YAML config.

    python train.py --config configs/default.yaml --student_name alice [section.key=value ...]

Writes checkpoints/NAME/{last.pt, final.pt, config.yaml, log.tsv} and outputs/NAME/train_grid_STEP.png.
Running the same command again resumes from last.pt unless --restart is given.
Several processes: torchrun --nproc_per_node N train.py ... (DistributedDataParallel; each process
takes 1/N of every train.batch_size batch; rank 0 writes; resume works with any N).
"""
import sys
from pathlib import Path

from engine import config
from common.errors import ArgumentParser, exit_on_user_error
from common.fileio import check_name
from engine.trainer import train


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--config", required=True, help="YAML file, e.g. configs/default.yaml")
    p.add_argument("--student_name", help="run name (default: the config file's name)")
    p.add_argument("--restart", action="store_true", help="ignore an existing last.pt and start from step 0")
    p.add_argument("--device", help="shorthand for train.device=... (auto, cpu, cuda, mps)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", metavar="section.key=value")
    args = p.parse_args(argv)
    overrides = args.overrides + ([f"train.device={args.device}"] if args.device else [])
    cfg = config.load(args.config, overrides)
    name = check_name(args.student_name or Path(args.config).stem)
    status = train(cfg, name, restart=args.restart, progress=not args.no_progress)
    return 0 if status == "done" else 130


if __name__ == "__main__":
    sys.exit(main())
