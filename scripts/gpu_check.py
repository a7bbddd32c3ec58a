"""One command that proves the CUDA path works and measures it: train, sample, evaluate, cross-check.

    python scripts/gpu_check.py [--steps 4000] [--out docs/data/gpu_check.json]   # on a GPU, <= 9 minutes
    python scripts/gpu_check.py --smoke --out /tmp/gpu_check.json                 # the same steps, seconds, CPU

Trains configs/gpu.yaml (its first --steps steps: the cut is named in the output) on the GPU, samples
5,000 digits there, scores them (FID, x floor, label agreement), regenerates 64 of them on the CPU
from the same checkpoint and reports the largest mean absolute difference in gray levels (what
grading.provenance tolerates across hardware), runs the CUDA tests (tests/test_cuda.py), and writes
one JSON summary. --smoke runs every step on the CPU with a tiny model and few samples, so that
tests/test_gpu_check.py keeps the script from rotting where no GPU is.
"""
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from common.errors import ArgumentParser, UserError, exit_on_user_error  # noqa: E402
from common.fileio import write_json  # noqa: E402
from common.runtime import versions  # noqa: E402
from engine import checkpoint, config  # noqa: E402
from engine.trainer import RunPaths, train  # noqa: E402
from grading import provenance  # noqa: E402
from grading.submissions import score_digits  # noqa: E402
from grading.regenerate import grader_settings  # noqa: E402
from tasks.generate import generate_from, sampling_record  # noqa: E402
from tasks.generation import conditioning  # noqa: E402

# the smoke run: a network of a few thousand weights, a few steps, a few samples
SMOKE = ["model.channels=8", "model.channel_mult=[1,2]", "model.attn_levels=[]", "model.num_res_blocks=1",
         "diffusion.timesteps=100", "train.batch_size=8", "train.warmup_steps=1", "train.log_every=1",
         "train.sample_every=0", "train.eval_every=0", "train.eval_samples=1000", "train.ckpt_every=2", "train.bf16=false", "sample.steps=3",
         "sample.batch_size=32"]


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="every step on the CPU in seconds (what the tests run)")
    p.add_argument("--steps", type=int, help="training steps of configs/gpu.yaml (default 4000; smoke: 4)")
    p.add_argument("--num_samples", type=int, help="default 5000; smoke: 40")
    p.add_argument("--out", default=str(REPO / "docs" / "data" / "gpu_check.json"))
    p.add_argument("--data_root", default="data")
    p.add_argument("--cache_dir", default="data/fid_cache")
    p.add_argument("--work", help="where the run's checkpoint and samples go (default: a temporary folder)")
    args = p.parse_args(argv)
    device = torch.device("cpu" if args.smoke else "cuda")
    if not args.smoke and not torch.cuda.is_available():
        raise UserError("no CUDA device here; run on a GPU machine, or pass --smoke for the CPU rehearsal")
    steps = args.steps or (4 if args.smoke else 4000)
    n = args.num_samples or (40 if args.smoke else 5000)
    overrides = (SMOKE if args.smoke else []) + [f"train.steps={steps}", f"data.root={args.data_root}",
                                                 f"train.device={device.type}"]
    cfg = config.load(REPO / "configs" / "gpu.yaml", overrides)
    work = Path(args.work or tempfile.mkdtemp(prefix="gpu_check_"))
    paths = RunPaths.for_name("gpu_check", work)
    summary = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
               "smoke": args.smoke, "torch": torch.__version__, "cuda": torch.version.cuda, **versions(),
               "config": "configs/gpu.yaml", "cut": f"train.steps={steps} of {config.load(REPO / 'configs' / 'gpu.yaml').train.steps}",
               "overrides": overrides}
    wall = time.perf_counter()

    start = time.perf_counter()
    train(cfg, "gpu_check", restart=True, paths=paths, progress=False)
    summary["train_s"] = round(time.perf_counter() - start, 1)
    ckpt = checkpoint.load(paths.final)
    summary["train_images_per_s"] = round(steps * cfg.train.batch_size / float(ckpt["train_seconds"]), 1)

    ckpt, cfg, model = checkpoint.load_model(paths.final, device=device)
    s = cfg.sample
    settings = grader_settings(cfg, s.seed, n)  # the config's sample.*, balanced over the digits
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    images = generate_from(model, cfg, settings, device=device, guide=checkpoint.load_guide(ckpt, cfg, paths.final, device))
    summary["sample_s"] = round(time.perf_counter() - start, 1)
    summary["sample_images_per_s"] = round(n / summary["sample_s"], 1) if summary["sample_s"] else None

    start = time.perf_counter()
    result = score_digits(images, "gpu_check", paths.final, {**settings, **conditioning(cfg)},
                          data_root=args.data_root, cache_dir=args.cache_dir, progress=False)
    summary.update(evaluate_s=round(time.perf_counter() - start, 1), fid=result["fid"],
                   fid_std=result["fid_bootstrap_std"], x_floor=result["fid_over_floor"],
                   label_agreement=result.get("label_agreement"), num_samples=n)

    meta = sampling_record(settings, ema=True)
    check = provenance.verify(paths.final, meta, images, k=min(64, n), seed=0, device=torch.device("cpu"))
    summary["cpu_regeneration"] = {k: check[k] for k in ("matched", "checked", "max_mean_abs_diff", "tolerance")}

    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", str(REPO / "tests" / "test_cuda.py")], cwd=REPO,
                           capture_output=True, text=True, env={**os.environ, "GPU_CHECK_DEVICE": device.type})
    summary["cuda_tests"] = (tests.stdout.strip().splitlines() or ["no output"])[-1]
    summary["cuda_tests_passed"] = tests.returncode == 0
    summary["wall_s"] = round(time.perf_counter() - wall, 1)
    write_json(Path(args.out), summary)
    print(json.dumps(summary, indent=1))
    print(f"-> {args.out}")
    return 0 if summary["cuda_tests_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
