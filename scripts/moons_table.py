"""Run the two-moons experiments (docs/moons.md) through moons.py and print their tables.

    python scripts/moons_table.py [--rows seed_40k,best_40k,...] [--samplers] [--reuse]

Each row is one moons.py command (printed before it runs); results go to results/moons_ROW.json.
--samplers also samples the best_5k_s0 checkpoint with each sampler of SAMPLERS (sample.py, then
evaluate.py) for a second table. --reuse prints rows whose result file already exists without
running them again. The floor and every multiple of it come from the result files
(tasks/moons.py). Times are moons.py's own.
"""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common.errors import ArgumentParser, UserError, exit_on_user_error  # noqa: E402
from tasks.moons import FLOOR_SEEDS  # noqa: E402

SEED_FLAGS = ["--batch-size", "512", "--lr", "1e-3", "--log-every", "500", "--sample-steps", "1000",
              "--num-samples", "5000"]
BEST = ["--config", "configs/moons.yaml", "--sample-use-ema"]
ROWS = {  # name -> (description, moons.py arguments)
    "seed_40k": ("seed baseline command", ["--train-steps", "40000", *SEED_FLAGS, "--seed", "42"]),
    "seed_ema_40k": ("seed baseline + EMA", ["--train-steps", "40000", *SEED_FLAGS, "--seed", "42",
                                             "--train-use-ema", "--sample-use-ema"]),
    "seed_ema_5k": ("seed + EMA, 5k steps", ["--train-steps", "5000", *SEED_FLAGS, "--seed", "42",
                                             "--train-use-ema", "--sample-use-ema"]),
    "best_40k": ("configs/moons.yaml", [*BEST, "--train-steps", "40000", "--seed", "42"]),
    "best_10k": ("configs/moons.yaml", [*BEST, "--train-steps", "10000", "--seed", "42"]),
    **{f"best_5k_s{s}": ("configs/moons.yaml", [*BEST, "--train-steps", "5000", "--seed", str(s)]) for s in (0, 1, 2)},
}
SAMPLERS = [  # sample.py options for the sampler table: (sampler, steps, extra flags)
    ("ddpm", 50, []), ("ddpm", 100, []), ("ddpm", 200, []), ("ddpm", 500, []), ("ddpm", 1000, []),
    ("ddim", 100, []), ("dpmpp_2m", 50, []), ("heun", 50, ["--sigmas", "karras"]),
    ("euler", 100, ["--sigmas", "discrete", "--spacing", "uniform"]),
    ("euler", 1000, ["--sigmas", "discrete", "--spacing", "uniform"]),
]


def _run(name: str, *args: str) -> str:
    cmd = [sys.executable, *args]
    print("$ python " + " ".join(args), file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode:
        raise UserError(f"{name} failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ''}")
    return proc.stdout


def run_row(name: str, args: list[str]) -> None:
    out = _run(name, "moons.py", "--run", *args, "--student_name", f"moons_{name}", "--no-progress")
    print(out.strip().splitlines()[-2], file=sys.stderr, flush=True)


def sampler_table(reuse: bool) -> None:
    """Every sampler of SAMPLERS on the best_5k_s0 checkpoint, sampling seed 42."""
    print("\n| sampler (configs/moons.yaml, 5,000 steps, seed 0) | MMD (x floor) | energy distance (x floor) "
          "| SW1 (x floor) | sampling time |")
    print("| --- | --- | --- | --- | --- |")
    for sampler, steps, extra in SAMPLERS:
        name = f"moons_best_5k_s0_{sampler}{steps}"
        path = REPO / "results" / f"{name}.json"
        if not (reuse and path.is_file()):
            _run(name, "sample.py", "--checkpoint", "checkpoints/moons_best_5k_s0/final.pt", "--student_name", name,
                 "--sampler", sampler, "--steps", str(steps), "--seed", "42", *extra)
            _run(name, "evaluate.py", "--student_name", name)
        r = json.loads(path.read_text())
        label = f"{sampler} x{steps}" + (f" ({' '.join(extra)})" if extra else "")
        print(f"| {label} | {metric_cells(r)} | {r['sampling']['seconds']:.1f} s |")


def metric_cells(r: dict) -> str:
    """MMD, energy and SW1 cells: each value with its multiple of the floor."""
    return " | ".join(f"{r[k]:.4f} (x{r[k + '_x_floor']:.2f})" for k in ("mmd", "energy", "sw1"))


def cells(r: dict) -> str:
    s = r["sampling"] or {}
    return f"{s.get('sampler')} x{s.get('steps')} | {metric_cells(r)} | {s.get('train_seconds', float('nan')):.0f} s"


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of {', '.join(ROWS)}")
    p.add_argument("--samplers", action="store_true", help="also the sampler table on best_5k_s0")
    p.add_argument("--reuse", action="store_true", help="print existing results instead of running them again")
    args = p.parse_args(argv)
    names = args.rows.split(",")
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        raise UserError(f"unknown row {unknown[0]}; choose from {', '.join(ROWS)}")
    results = {}
    for name in names:
        path = REPO / "results" / f"moons_{name}.json"
        if not (args.reuse and path.is_file()):
            run_row(name, ROWS[name][1])
        results[name] = json.loads(path.read_text())
    print("| run | recipe | train steps | sampler | MMD (x floor) | energy distance (x floor) | SW1 (x floor) "
          "| train time |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in names:
        r = results[name]
        steps = next(a for a, b in zip(ROWS[name][1][1:], ROWS[name][1]) if b == "--train-steps")
        print(f"| {name} | {ROWS[name][0]} | {int(steps):,} | {cells(r)} |")
    fives = [results[n] for n in names if n.startswith("best_5k_")]
    if fives:
        mean = {k: sum(r[f"{k}_x_floor"] for r in fives) / len(fives) for k in ("mmd", "energy", "sw1")}
        print(f"\nconfigs/moons.yaml at 5,000 steps, mean over {len(fives)} seeds: MMD x{mean['mmd']:.2f}, "
              f"energy x{mean['energy']:.2f}, SW1 x{mean['sw1']:.2f} the floor")
    r = next(iter(results.values()))
    print(f"floor (target vs the true law, mean +- std of {FLOOR_SEEDS} draws): MMD {r['mmd_floor']:.4f} +- {r['mmd_floor_std']:.4f}, "
          f"energy {r['energy_floor']:.4f} +- {r['energy_floor_std']:.4f}, SW1 {r['sw1_floor']:.4f} "
          f"+- {r['sw1_floor_std']:.4f}")
    if args.samplers:
        sampler_table(args.reuse)
    return 0


if __name__ == "__main__":
    sys.exit(main())
