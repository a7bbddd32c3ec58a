"""The training loop, the same for every task (tasks/): AdamW, warmup + cosine/constant lr, clipping,
accumulation, EMA, atomic checkpoints, exact resume, Ctrl-C/SIGTERM safe, DDP under torchrun."""
from __future__ import annotations

import contextlib
import csv
import math
import signal
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from common.errors import UserError
from common.fileio import ensure_dir, write_text
from common.progress import bar as progress_bar
from common.runtime import keyed_generator, pick_device, seed_everything
from dataio.mnist import batch_indices
from diffusion.schedule import from_config
from common import distributed
from engine import checkpoint
from engine.config import Config, save_yaml
from engine.ema import EMA
from tasks import build_network, for_config

LOG_FIELDS = ("step", "epoch", "loss", "lr", "grad_norm", "images_per_s", "hole_mse", "hole_l1", "ssim", "train_s",
              "fid", "val_hole_mse")  # every task's columns (Task.log_fields, Task.validation_field)


def lr_factor(step: int, warmup: int, total: int, schedule: str) -> float:
    """Linear warmup over `warmup` steps, then constant or cosine decay to 0 at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class RunPaths:
    ckpt_dir: Path
    out_dir: Path

    @classmethod
    def for_name(cls, name: str, root: Path = Path(".")) -> "RunPaths":
        return cls(root / "checkpoints" / name, root / "outputs" / name)

    @property
    def last(self) -> Path:
        return self.ckpt_dir / "last.pt"

    @property
    def final(self) -> Path:
        return self.ckpt_dir / "final.pt"

    @property
    def best(self) -> Path:
        return self.ckpt_dir / "best.pt"

    @property
    def log(self) -> Path:
        return self.ckpt_dir / "log.tsv"

    def snapshot(self, step: int) -> Path:
        """train.keep_every's checkpoint of `step` (scripts/learning_curve.py --snapshots scores them)."""
        return self.ckpt_dir / "snapshots" / f"step_{step:07d}.pt"


class StopFlag:
    """SIGINT/SIGTERM set a flag; the loop saves and stops after the current step.
    A second Ctrl-C stops at once (last.pt keeps the previous save)."""

    def __init__(self):
        self.signal = None

    def __enter__(self):
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame):
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


def _keep_log_until(path: Path, step: int) -> None:
    """Drop log rows written after the checkpoint we resume from, so they are not duplicated."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if int(r["step"]) <= step]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, LOG_FIELDS, delimiter="\t")
        w.writeheader()
        w.writerows(rows)


@dataclass
class Run:
    """What a checkpoint restores: the network, its EMA, the optimizer and lr schedule, the step, the
    training seconds so far and the best validation score (best.pt)."""
    model: torch.nn.Module
    ema: EMA
    opt: torch.optim.Optimizer
    lr_sched: torch.optim.lr_scheduler.LambdaLR
    step: int = 0
    train_s: float = 0.0
    best_val: float = math.inf
    guide: dict | None = None  # the EMA weights at train.guide_step (autoguidance's guide network)

    @classmethod
    def new(cls, cfg: Config, device) -> "Run":
        t = cfg.train
        model = build_network(cfg).to(device, memory_format=torch.channels_last if t.channels_last else torch.preserve_format)
        # one fused kernel on CUDA, multi-tensor ops elsewhere (same update, fewer small ops)
        fast = {"fused": True} if device.type == "cuda" and t.fused_adam else {"foreach": True}
        opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay, **fast)
        lr_sched = torch.optim.lr_scheduler.LambdaLR(
            opt, partial(lr_factor, warmup=t.warmup_steps, total=t.steps, schedule=t.lr_schedule))
        return cls(model, EMA(model, t.ema_decay, t.ema_warmup, t.ema_sigma_rel), opt, lr_sched)

    def state(self, cfg: Config, world: int) -> dict:  # the unwrapped module: checkpoints load into a plain model
        return {"kind": "diffusion", "config": cfg.to_dict(), "step": self.step, "model": self.model.state_dict(),
                "ema": self.ema.state_dict(), "optimizer": self.opt.state_dict(), "scheduler": self.lr_sched.state_dict(),
                "rng": checkpoint.rng_state(), "world_size": world, "train_seconds": self.train_s,
                "best_val_hole_mse": self.best_val, **({"guide": self.guide} if self.guide is not None else {})}

    def resume(self, cfg: Config, path: Path) -> None:
        """Load last.pt, refusing one trained with another model, diffusion or task config."""
        ckpt = checkpoint.load(path)
        old = checkpoint.config_of(ckpt, path)
        for section in ("model", "diffusion", "task"):
            if getattr(old, section) != getattr(cfg, section):
                raise UserError(f"{path} was trained with a different {section} config; resume with the same "
                                f"config, or pass --restart (or another --student_name) to start over")
        checkpoint.load_weights(self.model, ckpt["model"], path)
        checkpoint.load_weights(self.ema.model, ckpt["ema"]["model"], path, "EMA")
        self.ema.updates = ckpt["ema"]["updates"]
        self.opt.load_state_dict(ckpt["optimizer"])
        self.lr_sched.load_state_dict(ckpt["scheduler"])
        self.step = ckpt["step"]
        self.train_s = float(ckpt.get("train_seconds", 0.0))
        self.best_val = float(ckpt.get("best_val_hole_mse", math.inf))
        self.guide = ckpt.get("guide")
        checkpoint.set_rng_state(ckpt["rng"])  # rank 0's; the other processes move on to their own streams


class Log:
    """log.tsv (rank 0) and the progress bar's postfix. Losses and gradient norms stay on the device
    and are read once per row, as means over all processes."""

    def __init__(self, path: Path, ctx, n_examples: int, batch_size: int):
        self.ctx, self.n_examples, self.batch_size = ctx, n_examples, batch_size
        self.file = open(path, "a", newline="") if ctx.main else contextlib.nullcontext()
        self.writer = csv.DictWriter(self.file, LOG_FIELDS, delimiter="\t") if ctx.main else None
        if ctx.main and self.file.tell() == 0:
            self.writer.writeheader()
        self.reset()

    def reset(self) -> None:
        self.losses, self.norms, self.parts, self.tick, self.seen = [], [], {}, time.perf_counter(), 0

    def add(self, loss: torch.Tensor, parts: dict, accum: int) -> None:
        self.losses.append(loss.detach())
        for key, v in parts.items():
            self.parts[key] = self.parts.get(key, 0.0) + v.detach() / accum

    def pause(self, seconds: float) -> None:
        """Keep time spent on evaluations and pictures out of images/s."""
        self.tick += seconds

    def row(self, step: int, lr: float, train_s: float, validation: dict, bar) -> None:
        loss, norm, *parts = distributed.mean_over(self.ctx, torch.stack(
            [torch.stack(self.losses).float().mean(), torch.stack(self.norms).float().mean(),
             *(v.float() / len(self.norms) for v in self.parts.values())]).tolist())
        if self.ctx.main:
            row = {"step": step, "epoch": f"{step * self.batch_size / self.n_examples:.2f}", "loss": f"{loss:.5f}",
                   "lr": f"{lr:.3e}", "grad_norm": f"{norm:.4f}",
                   "images_per_s": f"{self.seen / (time.perf_counter() - self.tick):.1f}", "train_s": f"{train_s:.2f}",
                   **{k: f"{v:.3f}" if k == "fid" else f"{v:.6f}" for k, v in validation.items()},
                   **{f"hole_{k}" if k != "ssim" else k: f"{v:.5f}" for k, v in zip(self.parts, parts)}}
            self.writer.writerow(row)
            self.file.flush()
            bar.set_postfix(loss=row["loss"], img_s=row["images_per_s"])
        self.reset()


def train(cfg: Config, name: str, *, restart: bool = False, paths: RunPaths | None = None,
          progress: bool = True) -> str:
    """Train (or resume) the run `name` on its task; returns "done" or "stopped". Under torchrun every
    process runs this: each computes its share of every global batch, DistributedDataParallel
    averages the gradients, and rank 0 alone writes files."""
    paths, t, task = paths or RunPaths.for_name(name), cfg.train, for_config(cfg)
    ctx, device, micro = _start(cfg, paths)
    data = task.data(cfg)
    if t.data_on_device:  # MNIST is 47 MB as uint8: batches are then gathered on the device
        data = data.to(device)
    run = Run.new(cfg, device)
    if paths.last.exists() and not restart:
        run.resume(cfg, paths.last)
        if ctx.rank:
            seed_everything(t.seed + ctx.rank + 1_000_003 * run.step)
        if ctx.main:
            _keep_log_until(paths.log, run.step)
            print(f"resuming {name} from {paths.last} at step {run.step}")
    elif restart and paths.log.exists() and ctx.main:
        paths.log.unlink()
    if ctx.main:
        write_text(paths.ckpt_dir / "config.yaml", save_yaml(cfg))
    model, sched = run.model, from_config(cfg.diffusion)
    wrapped = model if ctx.world == 1 else torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)
    if t.compile:  # the compiled wrapper runs the steps; model (its weights) is what EMA and checkpoints see
        wrapped = torch.compile(wrapped)

    def save(*targets: Path) -> None:
        distributed.check_replicas(ctx, model)
        if ctx.main:
            state = run.state(cfg, ctx.world)
            for target in targets:
                checkpoint.save(ensure_dir(target.parent) / target.name, state)

    rows = slice(ctx.rank, None, ctx.world)  # this process's rows of every global micro-batch
    clip = t.clip_grad if t.clip_grad > 0 else float("inf")
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=t.bf16)
    every = task.validation_every(cfg)
    if ctx.main and every:
        task.prepare_validation(cfg, data)
    log = Log(paths.log, ctx, len(data.examples), t.batch_size)
    stopped, clock = False, time.perf_counter()  # train_s: seconds of this schedule, validations excluded
    model.train()
    with StopFlag() as stop, log.file, progress_bar(t.steps, name, "steps", initial=run.step,
                                                    enabled=progress and ctx.main) as bar:
        while run.step < t.steps and not stopped:
            for k in range(t.grad_accum):
                index = run.step * t.grad_accum + k
                idx = batch_indices(len(data.examples), micro, t.seed, index)
                # gradients are averaged across processes once per step, at the last micro-batch
                sync = contextlib.nullcontext() if ctx.world == 1 or k == t.grad_accum - 1 else wrapped.no_sync()
                with sync:
                    with autocast:
                        loss, parts = task.loss(wrapped, cfg, sched, data, idx, keyed_generator(t.seed, index), rows,
                                                device, t.channels_last)
                    (loss / t.grad_accum).backward()
                log.add(loss, parts, t.grad_accum)
            log.norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), clip))
            run.opt.step()
            run.opt.zero_grad(set_to_none=True)
            run.lr_sched.step()
            run.step += 1
            log.seen += t.batch_size
            if run.step % t.ema_every == 0:
                run.ema.update(model)
            if run.step == t.guide_step:
                run.guide = {k: v.detach().clone() for k, v in run.ema.model.state_dict().items()}
            bar.update(1)
            stopped = distributed.any_flag(ctx, stop.signal is not None)
            now = time.perf_counter()
            run.train_s, clock = run.train_s + now - clock, now
            last = run.step == t.steps
            validating = every and (run.step % every == 0 or last)
            score = task.validate(run.ema.model, cfg, data, device) if validating and ctx.main else None
            if validating:  # validations stay out of train_s and images/s
                spent = time.perf_counter() - now
                clock += spent
                log.pause(spent)
            if validating and task.keeps_best and distributed.any_flag(ctx, score is not None and score < run.best_val):
                run.best_val = score if ctx.main else run.best_val
                save(paths.best)
            validation = {task.validation_field: score} if score is not None else {}
            if run.step % t.log_every == 0 or last or validating:
                log.row(run.step, run.opt.param_groups[0]["lr"], run.train_s, validation, bar)
            if ctx.main and t.sample_every and (run.step % t.sample_every == 0 or last):
                drawn = time.perf_counter()
                task.pictures(run.ema.model, cfg, paths.out_dir, run.step, data, device)
                log.pause(time.perf_counter() - drawn)
            if run.step % t.ckpt_every == 0:
                save(paths.last)
            if t.keep_every and run.step % t.keep_every == 0:
                save(paths.snapshot(run.step))
    return _finish(run, ctx, save, paths, stopped, t)


def _start(cfg: Config, paths: RunPaths):
    """(distributed context, device, images per micro-batch): processes joined, folders made, seeds set."""
    t = cfg.train
    requested = pick_device(t.device)
    ctx = distributed.init(requested)
    device = distributed.device_for(ctx, requested)
    micro = t.batch_size // t.grad_accum
    if micro % ctx.world:
        raise UserError(f"train.batch_size / train.grad_accum = {micro} images per step cannot be split over "
                        f"{ctx.world} processes; use a multiple of {ctx.world} or fewer processes")
    if ctx.main:
        ensure_dir(paths.ckpt_dir)
        ensure_dir(paths.out_dir)
    seed_everything(t.seed + ctx.rank)  # dropout and inpainting masks differ between processes
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = t.tf32
    return ctx, device, micro


def _finish(run: Run, ctx, save, paths: RunPaths, stopped: bool, t) -> str:
    """Save last.pt (and final.pt when the schedule is done) and leave the process group."""
    if stopped:
        if run.step % t.ckpt_every:
            save(paths.last)
        if ctx.main:
            print(f"stopped at step {run.step}/{t.steps}; saved {paths.last}; run the same command to resume")
        distributed.close(ctx)
        return "stopped"
    save(paths.last, paths.final)
    if ctx.main:
        print(f"done: {paths.final}")
    distributed.close(ctx)
    return "done"
