"""The training loop: AdamW, warmup + cosine/constant lr, clipping, accumulation, EMA,
atomic checkpoints, exact resume, Ctrl-C/SIGTERM safe."""
from __future__ import annotations

import contextlib
import csv
import math
import random
import signal
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from dataio import augment, masks
from dataio.folder import load_pairs
from dataio.images import save_grid, save_rows
from dataio.moons import make_moons
from dataio.plots import COLORS, scatter
from dataio.mnist import batch_indices, load_mnist, to_model_range, validation_split
from diffusion.process import config_levels, config_loss
from diffusion.schedule import from_config
from engine import checkpoint, distributed
from engine.config import Config, save_yaml
from engine.ema import EMA
from engine.errors import UserError
from engine.fileio import ensure_dir, write_text
from engine import inpainting
from engine.generation import generate, keyed_generator, pick_device
from engine.progress import bar as progress_bar
from metrics.evaluation import lenet_fid
from models.model import build_model

LOG_FIELDS = ("step", "epoch", "loss", "lr", "grad_norm", "images_per_s", "hole_mse", "hole_l1", "ssim", "train_s",
              "fid", "val_hole_mse")
PANEL_DIGITS = 8  # test digits in the inpainting panels written during training


def lr_factor(step: int, warmup: int, total: int, schedule: str) -> float:
    """Linear warmup over `warmup` steps, then constant or cosine decay to 0 at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1 + math.cos(math.pi * progress))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


def _data(cfg: Config):
    """(training examples, labels or None, fixed masks or None, panel images, panel masks,
    validation digits or None). Examples are uint8 images, or float 2D points for moons (see _batch).
    MNIST: data.val_size digits are held out first (dataio.mnist.validation_split), then data.subset
    keeps the first of the others; masks are drawn per batch from task.mask; the panel shows the
    first test digits. Folder pairs: each image has its own mask; the panel shows the first pairs."""
    d, k = cfg.data, cfg.task
    if d.name == "moons":
        points = make_moons(d.n, d.noise, cfg.train.seed if d.seed < 0 else d.seed)
        return torch.from_numpy(points).float(), None, None, None, None, None
    if d.name == "folder":
        images, fixed = load_pairs(d.occluded_dir, d.original_dir, d.image_size, d.channels, d.mask_thresh)
        if d.subset:
            images, fixed = images[:d.subset], fixed[:d.subset]
        return images, None, fixed, images[:PANEL_DIGITS], fixed[:PANEL_DIGITS], None
    images, labels = load_mnist(d.root, train=True, download=d.download)
    keep, held_out = validation_split(len(images), d.val_size)
    val = images[held_out] if d.val_size else None
    images, labels = images[keep], labels[keep]
    if d.subset:
        images, labels = images[:d.subset], labels[:d.subset]
    if k.name == "generate":
        return images, labels, None, None, None, val
    panel = load_mnist(d.root, train=False, download=d.download)[0][:PANEL_DIGITS]
    gen = torch.Generator().manual_seed(cfg.sample.seed)
    return images, labels, None, panel, masks.make(k.mask, len(panel), size=k.mask_size, fraction=k.mask_fraction,
                                                   generator=gen), val


def _batch(examples: torch.Tensor, idx: torch.Tensor, device, channels_last: bool) -> torch.Tensor:
    """A training batch in model range on the device: uint8 images -> [-1, 1] (NHWC with
    channels_last); points are used as they are. `examples` may already live on the device."""
    x = examples[idx.to(examples.device)].to(device)
    if x.dtype != torch.uint8:
        return x
    x = to_model_range(x)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _panel(model, cfg: Config, originals: torch.Tensor, m: torch.Tensor, device) -> list[np.ndarray]:
    """Rows of an inpainting panel: masked inputs, completions, originals (uint8, for save_rows)."""
    done = inpainting.complete(model, cfg, originals, m, cfg.sample.seed, batch_size=len(originals), device=device,
                               progress=False)
    return inpainting.panel_rows(originals, m, [done])


def _micro_loss(model, cfg: Config, diff_sched, images, labels, fixed_masks, idx, g, rows, device):
    """(loss, hole terms) of this process's rows of one micro-batch (global indices idx). `g` holds
    the micro-batch's randomness (timesteps, noise, label dropout, the self-conditioning coin),
    drawn for the whole global batch: every process draws the same and keeps its rows, so a run
    on N processes matches a single-process run with the same global batch."""
    task, micro = cfg.task, len(idx)
    x0 = _batch(images, idx[rows], device, cfg.train.channels_last)
    if task.name != "generate":  # folder pairs bring their own masks; MNIST draws them from task.mask
        d = cfg.data
        theta = augment.jitter_params(micro, g, x0.shape[-2:], shift=d.shift, rotate=d.rotate, scale=d.scale)
        if theta is not None:
            x0 = augment.apply(x0, theta[rows])
            x0 = x0.contiguous(memory_format=torch.channels_last) if cfg.train.channels_last else x0
        m = fixed_masks[idx[rows].to(fixed_masks.device)] if fixed_masks is not None else masks.make(
            task.mask, micro, size=task.mask_size, fraction=task.mask_fraction, hw=x0.shape[-2:], generator=g)[rows]
        if task.name == "complete":
            return inpainting.loss(model, diff_sched, x0, m.to(device), cfg)
        t, noise = _levels_and_noise(diff_sched, cfg.diffusion, micro, x0, g, rows)
        return inpainting.loss(model, diff_sched, x0, m.to(device), cfg, generator=g, t=t, noise=noise)
    y = None
    if cfg.model.num_classes:  # label dropout: the "no label" token trains the unconditional model for CFG
        drop = torch.rand(micro, generator=g) < cfg.train.label_dropout
        y = labels[idx.to(labels.device)].masked_fill(drop.to(labels.device), cfg.model.num_classes)[rows].to(device)
    t, noise = _levels_and_noise(diff_sched, cfg.diffusion, micro, x0, g, rows)
    return config_loss(model, diff_sched, x0, cfg.diffusion, generator=g, labels=y, t=t, noise=noise), {}


def _levels_and_noise(diff_sched, d, micro: int, x0: torch.Tensor, g: torch.Generator, rows: slice):
    """This process's rows of the levels and noise drawn from `g` for the whole global micro-batch."""
    t = config_levels(diff_sched, micro, d, g)[rows].to(x0.device)
    noise = torch.randn((micro, *x0.shape[1:]), generator=g)[rows].to(x0.device, x0.dtype)
    return t, noise


def _pictures(ema_model, cfg: Config, paths: RunPaths, step: int, panel, panel_masks, device) -> None:
    """EMA samples during training: a scatter (moons), a digit grid, or an inpainting panel."""
    s = cfg.sample
    if cfg.task.name != "generate":
        save_rows(paths.out_dir / "inpaint" / f"panel_{step:07d}.png", _panel(ema_model, cfg, panel, panel_masks, device))
        return
    moons = cfg.data.name == "moons"
    out = generate(ema_model, cfg, s.num_samples if moons else s.grid_size, seed=s.seed, sampler=s.sampler,
                   steps=s.steps, eta=s.eta, batch_size=s.batch_size, device=device, progress=False)
    if moons:
        scatter(paths.out_dir / f"train_scatter_{step:07d}.png", [(f"EMA samples, step {step}", out, COLORS["generated"])])
    else:
        save_grid(paths.out_dir / f"train_grid_{step:07d}.png", out)


def _eval_fid(ema_model, cfg: Config, fid, device) -> float:
    """FID of train.eval_samples EMA digits drawn with the sample.* settings (seed sample.seed)."""
    s = cfg.sample
    digits = generate(ema_model, cfg, cfg.train.eval_samples, seed=s.seed, sampler=s.sampler, steps=s.steps, eta=s.eta,
                      batch_size=s.batch_size, device=device, progress=False)
    return fid(digits)


def _val_hole_mse(ema_model, cfg: Config, val: torch.Tensor, device) -> float:
    """Hole MSE ([0, 1] units, the mean over digits of each digit's mean over its hole) of the EMA
    model's completions of the validation digits; the masks and the sampling noise come from
    sample.seed, so every evaluation of a run scores the same task."""
    k, s = cfg.task, cfg.sample
    gen = torch.Generator().manual_seed(s.seed)
    hole = masks.make(k.mask, len(val), size=k.mask_size, fraction=k.mask_fraction, generator=gen)
    done = inpainting.complete(ema_model, cfg, val, hole, s.seed, batch_size=s.batch_size, device=device,
                               mean_of=s.mean_of, progress=False)
    err2 = ((torch.from_numpy(done).double() - val.double()) / 255) ** 2
    hole = hole[:, 0].double()
    return float(((err2 * hole).sum((1, 2)) / hole.sum((1, 2))).mean())


def train(cfg: Config, name: str, *, restart: bool = False, paths: RunPaths | None = None,
          progress: bool = True) -> str:
    """Train (or resume) the run `name`; returns "done" or "stopped". Under torchrun every process
    runs this: each computes its share of every global batch, DistributedDataParallel averages
    the gradients, and rank 0 alone writes files."""
    paths = paths or RunPaths.for_name(name)
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
    images, labels, fixed_masks, panel, panel_masks, val = _data(cfg)
    if t.data_on_device:  # MNIST is 47 MB as uint8: batches are then gathered on the device
        images, labels, fixed_masks = (None if a is None else a.to(device) for a in (images, labels, fixed_masks))
    model = build_model(cfg).to(device, memory_format=torch.channels_last if t.channels_last else torch.preserve_format)
    ema = EMA(model, t.ema_decay, t.ema_warmup, t.ema_sigma_rel)
    # one fused kernel on CUDA, multi-tensor ops elsewhere (same update, fewer small ops)
    fast = {"fused": True} if device.type == "cuda" and t.fused_adam else {"foreach": True}
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay, **fast)
    lr_sched = torch.optim.lr_scheduler.LambdaLR(
        opt, partial(lr_factor, warmup=t.warmup_steps, total=t.steps, schedule=t.lr_schedule))
    diff_sched = from_config(cfg.diffusion)

    step, train_s, best_val = 0, 0.0, math.inf
    if paths.last.exists() and not restart:
        ckpt = checkpoint.load(paths.last)
        old = checkpoint.config_of(ckpt, paths.last)
        for section in ("model", "diffusion", "task"):
            if getattr(old, section) != getattr(cfg, section):
                raise UserError(f"{paths.last} was trained with a different {section} config; resume with the same "
                                f"config, or pass --restart (or another --student_name) to start over")
        checkpoint.load_weights(model, ckpt["model"], paths.last)
        checkpoint.load_weights(ema.model, ckpt["ema"]["model"], paths.last, "EMA")
        ema.updates = ckpt["ema"]["updates"]
        opt.load_state_dict(ckpt["optimizer"])
        lr_sched.load_state_dict(ckpt["scheduler"])
        step = ckpt["step"]
        train_s = float(ckpt.get("train_seconds", 0.0))
        best_val = float(ckpt.get("best_val_hole_mse", math.inf))
        checkpoint.set_rng_state(ckpt["rng"])  # rank 0's; the others move on to their own streams
        if ctx.rank:
            seed_everything(t.seed + ctx.rank + 1_000_003 * step)
        if ctx.main:
            _keep_log_until(paths.log, step)
            print(f"resuming {name} from {paths.last} at step {step}")
    elif restart and paths.log.exists() and ctx.main:
        paths.log.unlink()
    if ctx.main:
        write_text(paths.ckpt_dir / "config.yaml", save_yaml(cfg))
    wrapped = model if ctx.world == 1 else torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)
    if t.compile:  # the compiled wrapper runs the steps; model (its weights) is what EMA and checkpoints see
        wrapped = torch.compile(wrapped)

    def payload() -> dict:  # the unwrapped module: checkpoints load into a plain model
        return {"kind": "diffusion", "config": cfg.to_dict(), "step": step, "model": model.state_dict(),
                "ema": ema.state_dict(), "optimizer": opt.state_dict(), "scheduler": lr_sched.state_dict(),
                "rng": checkpoint.rng_state(), "world_size": ctx.world, "train_seconds": train_s,
                "best_val_hole_mse": best_val}

    def save(*targets: Path) -> None:
        distributed.check_replicas(ctx, model)
        if ctx.main:
            state = payload()
            for target in targets:
                checkpoint.save(target, state)

    rows = slice(ctx.rank, None, ctx.world)  # this process's rows of every global micro-batch
    clip = t.clip_grad if t.clip_grad > 0 else float("inf")
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=t.bf16)
    fid = lenet_fid(cfg.data.root) if ctx.main and t.eval_every else None
    log_file = open(paths.log, "a", newline="") if ctx.main else contextlib.nullcontext()
    log = csv.DictWriter(log_file, LOG_FIELDS, delimiter="\t") if ctx.main else None
    if ctx.main and log_file.tell() == 0:
        log.writeheader()
    losses, norms, part_sums, tick, seen = [], [], {}, time.perf_counter(), 0
    stopped = False
    clock = time.perf_counter()  # train_s: seconds of this schedule so far, training-time FIDs excluded
    model.train()
    with StopFlag() as stop, log_file, progress_bar(t.steps, name, "steps", initial=step,
                                                    enabled=progress and ctx.main) as bar:
        while step < t.steps and not stopped:
            for k in range(t.grad_accum):
                index = step * t.grad_accum + k
                idx = batch_indices(len(images), micro, t.seed, index)
                # gradients are averaged across processes once per step, at the last micro-batch
                sync = contextlib.nullcontext() if ctx.world == 1 or k == t.grad_accum - 1 else wrapped.no_sync()
                with sync:
                    with autocast:
                        loss, parts = _micro_loss(wrapped, cfg, diff_sched, images, labels, fixed_masks, idx,
                                                  keyed_generator(t.seed, index), rows, device)
                    (loss / t.grad_accum).backward()
                for key, v in parts.items():
                    part_sums[key] = part_sums.get(key, 0.0) + v.detach() / t.grad_accum
                losses.append(loss.detach())  # on the device: read once per log line, not synced every step
            norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), clip))
            opt.step()
            opt.zero_grad(set_to_none=True)
            lr_sched.step()
            step += 1
            seen += t.batch_size
            if step % t.ema_every == 0:
                ema.update(model)
            bar.update(1)
            stopped = distributed.any_flag(ctx, stop.signal is not None)
            now = time.perf_counter()
            train_s, clock = train_s + now - clock, now
            evaluating, score = t.eval_every and (step % t.eval_every == 0 or step == t.steps), None
            validating, val_mse = t.val_every and (step % t.val_every == 0 or step == t.steps), None
            if (evaluating or validating) and ctx.main:  # evaluations stay out of train_s and images/s
                score = _eval_fid(ema.model, cfg, fid, device) if evaluating else None
                val_mse = _val_hole_mse(ema.model, cfg, val, device) if validating else None
                spent = time.perf_counter() - now
                clock, tick = clock + spent, tick + spent
            if validating and distributed.any_flag(ctx, val_mse is not None and val_mse < best_val):
                best_val = val_mse if ctx.main else best_val
                save(paths.best)

            if step % t.log_every == 0 or step == t.steps or evaluating or validating:  # means over all processes
                loss_mean, norm_mean, *part_means = distributed.mean_over(ctx, torch.stack(
                    [torch.stack(losses).float().mean(), torch.stack(norms).float().mean(),
                     *(v.float() / len(norms) for v in part_sums.values())]).tolist())
                if ctx.main:
                    row = {"step": step, "epoch": f"{step * t.batch_size / len(images):.2f}", "loss": f"{loss_mean:.5f}",
                           "lr": f"{opt.param_groups[0]['lr']:.3e}", "grad_norm": f"{norm_mean:.4f}",
                           "images_per_s": f"{seen / (time.perf_counter() - tick):.1f}", "train_s": f"{train_s:.2f}",
                           "fid": "" if score is None else f"{score:.3f}",
                           "val_hole_mse": "" if val_mse is None else f"{val_mse:.6f}",
                           **{f"hole_{k}" if k != "ssim" else k: f"{v:.5f}" for k, v in zip(part_sums, part_means)}}
                    log.writerow(row)
                    log_file.flush()
                    bar.set_postfix(loss=row["loss"], img_s=row["images_per_s"])
                losses, norms, part_sums, tick, seen = [], [], {}, time.perf_counter(), 0
            if ctx.main and t.sample_every and (step % t.sample_every == 0 or step == t.steps):
                drawn = time.perf_counter()
                _pictures(ema.model, cfg, paths, step, panel, panel_masks, device)
                tick += time.perf_counter() - drawn  # keep sampling time out of images/s
            if step % t.ckpt_every == 0:
                save(paths.last)

    if stopped:
        if step % t.ckpt_every:
            save(paths.last)
        if ctx.main:
            print(f"stopped at step {step}/{t.steps}; saved {paths.last}; run the same command to resume")
        distributed.close(ctx)
        return "stopped"
    save(paths.last, paths.final)
    if ctx.main:
        print(f"done: {paths.final}")
    distributed.close(ctx)
    return "done"
