"""The two-moons test bed (docs/moons.md): the moons task (a denoiser of 2D points trained on
make_moons), its samples with their plots, and scores against the target with the sampling floor.
Shared by the trainer, sample.py, evaluate.py and moons.py."""
from __future__ import annotations

import datetime
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch

from dataio import moons, plots
from diffusion.process import config_loss
from tasks.base import Task, TrainData, levels_and_noise
from dataio.images import read_npz, save_npz
from common.runtime import versions
from common.errors import UserError
from common.fileio import ensure_dir, write_json
from tasks.generation import generate
from metrics import two_sample

POINT_DIM = 2  # a sample is one 2D point: one "channel" per coordinate
FLOOR_SEEDS = 10  # draws from the true law averaged for the floor
STRIP_FRACTIONS = (1.0, 0.4, 0.2, 0.1, 0.05, 0.0)  # reverse-process strip: levels as fractions of T
STRIP_POINTS = 2000  # points per panel


class Trajectory:
    """A generate() callback that keeps x_t of the first batch's first STRIP_POINTS points."""

    def __init__(self):
        self.states: list[tuple[float, np.ndarray]] = []

    def __call__(self, batch_start: int, level: float, x) -> None:
        if batch_start == 0:
            self.states.append((level, x[:STRIP_POINTS].float().cpu().numpy()))

    def strip(self) -> list[tuple[float, np.ndarray]]:
        """The states nearest to STRIP_FRACTIONS of the first level, from the noise to the samples
        (denser near 0, where the shape appears)."""
        levels = np.array([level for level, _ in self.states])
        picks = dict.fromkeys(int(np.abs(levels - f * levels[0]).argmin()) for f in STRIP_FRACTIONS)
        return [self.states[i] for i in picks]


def sample_and_save(model, cfg, out_dir: Path, meta: dict, *, n: int, seed: int, device, sampler: str | None = None,
                    steps: int | None = None, spacing: str | None = None, sigmas: str | None = None,
                    eta: float | None = None, batch_size: int | None = None, progress: bool = True) -> tuple[np.ndarray, dict]:
    """Generate n points (options default to cfg.sample) and write them with their plots:
    samples.npz (points float32 (n, 2), noise), samples.json (meta plus what made them),
    moons.png (target vs generated), generated.png and reverse.png (the reverse process).
    Returns the points and the samples.json record."""
    s = cfg.sample
    opts = {"sampler": sampler or s.sampler, "steps": steps or s.steps, "spacing": spacing or s.spacing,
            "sigmas": sigmas or s.sigmas, "eta": s.eta if eta is None else eta, "batch_size": batch_size or s.batch_size}
    trajectory = Trajectory()
    start = time.perf_counter()
    points = generate(model, cfg, n, seed=seed, device=device, callback=trajectory, progress=progress,
                      shape=(POINT_DIM,), **opts)
    seconds = time.perf_counter() - start
    noise = cfg.data.noise
    meta = {**meta, "num_samples": n, "seed": seed, **opts, "data": cfg.data.__dict__, "seconds": round(seconds, 2),
            "points_per_s": round(n / seconds, 1), "versions": versions(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    save_npz(out_dir / "samples.npz", points=points, noise=np.float64(noise))
    write_json(out_dir / "samples.json", meta)
    plots.comparison(out_dir / "moons.png", moons.target(noise), points,
                     f"{meta.get('student_name', '')}: {opts['sampler']} x{opts['steps']}")
    plots.scatter(out_dir / "generated.png", [(f"generated ({n})", points, plots.COLORS["generated"])])
    plots.reverse_strip(out_dir / "reverse.png", trajectory.strip())
    return points, meta


def load_samples(path: Path, arrays: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, float]:
    """(points float64 (n, 2), the data noise they were trained for) from a samples.npz (or its
    arrays, when the caller has read them already)."""
    arrays = read_npz(path, fix="rerun sample.py") if arrays is None else arrays
    points = arrays["points"]
    if points.ndim != 2 or points.shape[1] != 2 or not np.isfinite(points).all():
        raise UserError(f"{path}: points must be finite float (N, 2), got {points.dtype} {points.shape}")
    return points.astype(np.float64), float(arrays.get("noise", 0.05))


def floor_path(noise: float, cache_dir: str | Path) -> Path:
    return Path(cache_dir) / f"moons_floor_noise{noise:g}_n{moons.TARGET_SIZE}_seeds{FLOOR_SEEDS}.json"


def floor(noise: float, cache_dir: str | Path) -> dict:
    """Mean and std over FLOOR_SEEDS draws of each distance between the target and 5,000 points
    from the true continuous law: what a perfect generator scores. Cached as JSON."""
    path = floor_path(noise, cache_dir)
    if path.is_file():
        return json.loads(path.read_text())
    target = moons.target(noise)
    draws = [two_sample.distances(target, moons.sample_true(moons.TARGET_SIZE, noise, seed))
             for seed in range(FLOOR_SEEDS)]
    result = {f"{k}_floor{stat}": float(fn([d[k] for d in draws]))
              for k in two_sample.METRICS for stat, fn in (("", np.mean), ("_std", np.std))}
    write_json(ensure_dir(path.parent) / path.name, result)
    return result


def score(points: np.ndarray, noise: float, cache_dir: str | Path) -> dict:
    """The three distances to the target, the floor, and each distance as a multiple of its floor."""
    d = two_sample.distances(points, moons.target(noise))
    fl = floor(noise, cache_dir)
    return {**d, **fl, **{f"{k}_x_floor": d[k] / fl[f"{k}_floor"] for k in two_sample.METRICS}}


def write_result(path: Path, name: str, points: np.ndarray, noise: float, cache_dir: str | Path,
                 samples: str, sampling: dict | None) -> dict:
    """Score the points and write the result JSON (as evaluate.py does for every entry)."""
    metrics = score(points, noise, cache_dir)
    write_json(path, {
        "student_name": name, "task": "moons", "num_samples": len(points), "noise": noise, **metrics,
        "samples": samples, "samples_sha256": hashlib.sha256(points.tobytes()).hexdigest(), "sampling": sampling,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "versions": versions()})
    return metrics


def summary(name: str, m: dict) -> str:
    return (f"{name}: MMD {m['mmd']:.6f} (x{m['mmd_x_floor']:.2f}), energy {m['energy']:.6f} "
            f"(x{m['energy_x_floor']:.2f}), SW1 {m['sw1']:.6f} (x{m['sw1_x_floor']:.2f}) "
            f"[floor {m['mmd_floor']:.4f} / {m['energy_floor']:.4f} / {m['sw1_floor']:.4f}]")


class MoonsTask(Task):
    """data.name: moons. Unconditional diffusion on 2D points; pictures are scatters of the EMA model's
    samples; scored by MMD, energy distance and sliced Wasserstein against the target (score())."""
    name = "moons"

    def inputs(self, cfg) -> dict:
        return {"image_channels": POINT_DIM, "in_channels": POINT_DIM * (2 if cfg.diffusion.self_cond else 1),
                "num_classes": cfg.model.num_classes}

    def sample_shape(self, cfg) -> tuple[int, ...]:
        return (POINT_DIM,)

    def data(self, cfg) -> TrainData:
        d = cfg.data
        return TrainData(torch.from_numpy(moons.make_moons(d.n, d.noise, cfg.train.seed if d.seed < 0 else d.seed)).float())

    def loss(self, model, cfg, sched, data, idx, g, rows, device, channels_last=False):
        x0 = data.examples[idx[rows].to(data.examples.device)].to(device)
        t, noise = levels_and_noise(sched, cfg.diffusion, len(idx), x0, g, rows)
        return config_loss(model, sched, x0, cfg.diffusion, generator=g, t=t, noise=noise), {}

    def write_samples(self, model, cfg, out_dir, settings, source, *, device, ctx, progress, guide=None) -> str:
        """samples.npz (points), samples.json and the plots (sample_and_save); one process."""
        n = settings["num_samples"]
        sample_and_save(model, cfg, out_dir, {**source, "device": str(device)}, n=n, seed=settings["seed"],
                        device=device, progress=progress,
                        **{k: settings[k] for k in ("sampler", "steps", "spacing", "sigmas", "eta", "batch_size")})
        return (f"{n} points -> {out_dir}/samples.npz; plots: {out_dir}/moons.png, {out_dir}/generated.png, "
                f"{out_dir}/reverse.png")

    def pictures(self, ema_model, cfg, out_dir, step, data, device):
        s = cfg.sample
        points = generate(ema_model, cfg, s.num_samples, seed=s.seed, sampler=s.sampler, steps=s.steps, eta=s.eta,
                          batch_size=s.batch_size, device=device, progress=False, shape=(POINT_DIM,))
        plots.scatter(Path(out_dir) / f"train_scatter_{step:07d}.png",
                      [(f"EMA samples, step {step}", points, plots.COLORS["generated"])])
