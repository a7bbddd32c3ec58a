"""UNet against transformer at equal training wall-clock: the transformer tuned within the same budget.

    python scripts/unet_vs_transformer.py --unet checkpoints/cond_default/final.pt \
        --grid docs/images/unet_vs_transformer.png

The UNet is a trained checkpoint of configs/default.yaml (without --unet, checkpoints/default/final.pt,
trained first if it is missing). Its budget is its steps of its batch at its own training speed. Every
transformer (configs/default.yaml with model.name=transformer and the candidate's settings, CANDIDATES)
gets the steps that take the same time at its speed; both speeds are measured by scripts/benchmark.py on
`--threads` threads, the same way, so let the first run (it benchmarks) have the machine to itself. The
trainings and samplings run on the threads the environment gives (OMP_NUM_THREADS): the budget is in steps.

0. `--stage bench`: only the speeds and the budget (the other stages start with what of it they lack).
1. `--stage tune`: each candidate trains for `--tune_fraction` of the budget and is scored by the FID of
   1,000 samples against 10,000 training digits (scripts/guidance_sweep.py --reference train). The test
   digits choose nothing.
2. `--stage final`: the best-scored candidate trains for the whole budget; 5,000 samples of it and of the
   UNet are scored against the test digits (sample.py, evaluate.py); the table, and the grids side by side.

Without --stage, tune and final. Every step is skipped when its output exists (a killed run resumes), so two
processes can tune different --candidates side by side (OMP_NUM_THREADS=1 each, after the benchmarks);
the speeds and scores are kept in --rows. Every transformer run keeps the UNet's share of warm-up steps
and averages its weights over the last ~20% of the run (EMA decay 1 - 5 / steps, as 0.999 for 5,400).
KEY=VALUE arguments change configs/default.yaml for every run (the UNet's budget included). Runs are
written under the current folder (checkpoints/, outputs/, results/), like train.py's.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from dataio import plots  # noqa: E402
from engine import checkpoint, config  # noqa: E402
from common.errors import ArgumentParser, UserError, exit_on_user_error  # noqa: E402
from common.fileio import sha256_file  # noqa: E402
from tasks.generation import digit_grid  # noqa: E402
from engine.rows import Rows  # noqa: E402
from models.model import num_parameters  # noqa: E402
from tasks import build_network  # noqa: E402

DEFAULT = "configs/default.yaml"
CANDIDATES = {  # name: overrides of configs/default.yaml
    "p4_w128_d6": ["model.patch_size=4", "model.width=128", "model.depth=6", "train.lr=1e-3"],
    "p4_w128_d6_lr3e-4": ["model.patch_size=4", "model.width=128", "model.depth=6", "train.lr=3e-4"],
    "p4_w192_d8": ["model.patch_size=4", "model.width=192", "model.depth=8", "train.lr=5e-4"],
    "p2_w96_d6": ["model.patch_size=2", "model.width=96", "model.depth=6", "train.lr=1e-3"],
}
TRANSFORMER = ["model.name=transformer", "model.num_heads=4"]


def run(script: str, args: list, threads: int | None = None) -> str:
    """Run one of the project's scripts in the current folder, on `threads` threads if given (else the
    environment's); its stdout, or a UserError with its last lines."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None
    proc = subprocess.run([sys.executable, str(REPO / script), *map(str, args)], capture_output=True, text=True,
                          env=env)
    if proc.returncode:
        raise UserError(f"{script} failed: {(proc.stderr or proc.stdout).strip()[-400:]}")
    return proc.stdout


def train_speed(overrides: list[str], threads: int, steps: int) -> float:
    """Training images/s of configs/default.yaml with `overrides` (scripts/benchmark.py)."""
    out = run("scripts/benchmark.py", ["--config", REPO / DEFAULT, "--train_steps", steps, "--sample_n", 2, *overrides],
              threads)
    return float(re.search(r"train: ([\d.]+) images/s", out).group(1))


def trained(name: str, overrides: list[str]) -> Path:
    """checkpoints/NAME/final.pt of configs/default.yaml with `overrides`, trained (or resumed) if missing."""
    final = Path("checkpoints") / name / "final.pt"
    if not final.is_file():
        print(f"training {name}: {' '.join(overrides)}", flush=True)
        run("train.py", ["--config", REPO / DEFAULT, "--student_name", name, "--no-progress", *overrides])
    return final


def schedule(steps: int, unet: config.Config) -> list[str]:
    """The UNet's schedule scaled to `steps`: its share of warm-up, EMA over the last ~20% (1 - 5 / steps)."""
    warmup = round(unet.train.warmup_steps * steps / unet.train.steps)
    return [f"train.steps={steps}", f"train.warmup_steps={warmup}", f"train.ema_decay={max(0.0, 1 - 5 / steps):.5f}",
            "train.eval_every=0"]


def parameters(model) -> str:
    return f"{num_parameters(model) / 1e6:.2f}M"


def digit_rows(name: str, columns: int = 6) -> np.ndarray:
    """(10, columns, 28, 28): row d holds the first samples of digit d (sample i is digit i % 10)."""
    images = np.load(Path("outputs") / name / "samples.npz")["images"]
    return images[digit_grid(min(columns, len(images) // 10))]


@exit_on_user_error
def main() -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--unet", help="a trained configs/default.yaml checkpoint (default: train checkpoints/default)")
    p.add_argument("--stage", choices=("bench", "tune", "final"), help="default: tune and final (each benchmarks "
                   "first what it lacks; `bench` only that)")
    p.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    p.add_argument("--guidance", type=float, default=0.25)
    p.add_argument("--threads", type=int, default=2, help="threads of the speed benchmarks")
    p.add_argument("--tune_fraction", type=float, default=0.25, help="share of the budget per tuning run")
    p.add_argument("--bench_steps", type=int, default=30, help="training steps timed per speed")
    p.add_argument("--tune_samples", type=int, default=1000, help="samples per tuning FID")
    p.add_argument("--num_samples", type=int, default=5000, help="samples per final FID")
    p.add_argument("--data_root", default="data")
    p.add_argument("--cache_dir", default="data/fid_cache")
    p.add_argument("--rows", default="results/sweeps/unet_vs_transformer.json")
    p.add_argument("--grid", help="write the two models' samples side by side here (PNG)")
    p.add_argument("overrides", nargs="*", help="KEY=VALUE changes of configs/default.yaml for every run")
    args = p.parse_args()
    if not 0 < args.tune_fraction <= 1:
        raise UserError(f"--tune_fraction must be in (0, 1], the share of the budget per tuning run; got "
                        f"{args.tune_fraction:g}")
    unet_cfg = config.load(REPO / DEFAULT, args.overrides)  # the budget, and a check of the overrides
    unet = Path(args.unet) if args.unet else trained("default", args.overrides)
    data = ["--data_root", args.data_root, "--cache_dir", args.cache_dir]

    def test_fid(name: str, ckpt: Path) -> dict:
        """results/NAME.json for --num_samples samples of `ckpt` (sampled and scored if missing)."""
        result = Path("results") / f"{name}.json"
        if not result.is_file():
            run("sample.py", ["--checkpoint", ckpt, "--student_name", name, "--guidance", args.guidance,
                              "--num_samples", args.num_samples])
            run("evaluate.py", ["--student_name", name, "--no-progress", *data])
        return json.loads(result.read_text())

    store = Rows(args.rows, {"unet_sha256": sha256_file(unet), "threads": args.threads}, unet=str(unet))

    def transformer(candidate: str) -> list[str]:
        return TRANSFORMER + CANDIDATES[candidate] + args.overrides

    def speed(name: str, overrides: list[str]) -> float:
        row = store.find(kind="speed", name=name) or store.add(
            {"kind": "speed", "name": name, "images_per_s": train_speed(overrides, args.threads, args.bench_steps)})
        return row["images_per_s"]

    unet_speed = speed("unet", args.overrides)
    budget = unet_cfg.train.steps * unet_cfg.train.batch_size / unet_speed  # seconds at this speed

    def steps(candidate: str) -> int:
        return round(budget * speed(candidate, transformer(candidate)) / unet_cfg.train.batch_size)

    for c in args.candidates:  # every speed before any training, which would slow the benchmarks
        steps(c)
    print(f"budget: {unet_cfg.train.steps} steps of {unet_cfg.train.batch_size} at {unet_speed:.1f} images/s "
          f"= {budget / 60:.1f} minutes on {args.threads} thread(s) as benchmarked", flush=True)
    if args.stage == "bench":
        return 0
    if args.stage in (None, "tune"):
        for c in args.candidates:
            if store.find(kind="tune", name=c):
                continue
            short = max(1, round(steps(c) * args.tune_fraction))
            ckpt = trained(f"tf_{c}_q", transformer(c) + schedule(short, unet_cfg))
            sweep_rows = Path("results") / "sweeps" / f"guidance_tf_{c}_q_train.json"
            run("scripts/guidance_sweep.py", ["--checkpoint", ckpt, "--weights", args.guidance, "--num_samples",
                                              args.tune_samples, "--columns", 1, "--reference", "train",
                                              "--rows", sweep_rows, *data])
            scored = json.loads(sweep_rows.read_text())["rows"][0]
            store.add({"kind": "tune", "name": c, "steps": short, "fid_train": scored["fid"],
                       "fid_train_std": scored["fid_std"]})
            print(f"{c}: {short} steps, FID against training digits {scored['fid']:.1f} +- {scored['fid_std']:.1f}",
                  flush=True)
    tuned = [r for r in store.rows if r["kind"] == "tune"]
    print("\n| transformer | settings | parameters | images/s | steps in the budget | tuning steps | "
          "FID (1,000, training digits) |\n| --- | --- | --- | --- | --- | --- | --- |")
    for r in sorted(tuned, key=lambda r: r["fid_train"]):
        c = r["name"]
        size = parameters(build_network(config.load(REPO / DEFAULT, transformer(c))))
        print(f"| {c} | {' '.join(CANDIDATES[c])} | {size} | "
              f"{store.find(kind='speed', name=c)['images_per_s']:.1f} | "
              f"{steps(c)} | {r['steps']} | {r['fid_train']:.1f} +- {r['fid_train_std']:.1f} |")
    if args.stage == "tune":
        return 0
    missing = [c for c in args.candidates if not any(r["name"] == c for r in tuned)]
    if missing:
        raise UserError(f"candidates not tuned yet: {' '.join(missing)}; run --stage tune first")
    best = min((r for r in tuned if r["name"] in args.candidates), key=lambda r: r["fid_train"])["name"]
    tf = trained(f"tf_{best}", transformer(best) + schedule(steps(best), unet_cfg))
    results = {"unet": test_fid(unet.parent.name, unet), "transformer": test_fid(f"tf_{best}", tf)}
    print(f"\nFID of {args.num_samples} samples against the test digits (+- bootstrap spread), guidance "
          f"{args.guidance:g}, equal training time ({budget / 60:.1f} minutes as benchmarked)\n")
    print("| model | settings | parameters | images/s | steps x batch | training minutes (logged) | FID | precision | "
          "recall |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, ckpt, settings, key in (("UNet", unet, " ".join([DEFAULT, *args.overrides]), "unet"),
                                       ("transformer", tf, " ".join(CANDIDATES[best]), best)):
        stored, cfg, model = checkpoint.load_model(ckpt)
        r, rate = results["transformer" if key == best else "unet"], store.find(kind="speed", name=key)["images_per_s"]
        print(f"| {label} | {settings} | {parameters(model)} | "
              f"{rate:.1f} | {cfg.train.steps} x {cfg.train.batch_size} | "
              f"{stored.get('train_seconds', 0) / 60:.1f} | {r['fid']:.1f} +- {r['fid_bootstrap_std']:.1f} | "
              f"{r['precision']:.3f} | {r['recall']:.3f} |")
    if args.grid:
        plots.digit_panels(args.grid, {f"UNet, FID {results['unet']['fid']:.1f}": digit_rows(unet.parent.name),
                                       f"transformer, FID {results['transformer']['fid']:.1f}":
                                       digit_rows(f"tf_{best}")},
                           f"equal training time, guidance {args.guidance:g}: rows are digits 0-9")
        print(f"grid: {args.grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
