"""Completing masked digits: the machinery every task's completions share, and the base of the two
tasks that train on masked digits (tasks/inpaint.py, tasks/complete.py).

Any checkpoint completes (Task.estimate): a generate model inpaints training-free (DDIM + data
consistency, RePaint) through diffusion/inpaint.py, an inpaint model conditions that loop on the
masked image, a complete model fills the hole in one forward pass. complete() and complete_ensemble()
run them over a set of digits, each completion with its own keyed noise.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from common.progress import bar as progress_bar
from common.runtime import keyed_generator
from dataio import augment, masks as masks_mod
from dataio.folder import load_pairs
from dataio.images import displayable, save_rows
from dataio.mnist import load_mnist, to_model_range, to_uint8
from diffusion.inpaint import inpaint
from diffusion.schedule import from_config
from tasks.base import PANEL_DIGITS, Task, TrainData, image_batch, mnist_training
# keys completions' generators apart from generation's keyed_generator(seed, i) and training's
# keyed_generator(seed, batch): numpy pads short seeds with zeros, so (seed, i) = (seed, i, 0, 0)
COMPLETION_STREAM = 0x636F6D70


def completion_generators(seed: int, images: range, draw: int, repeats: int, member: int = 0) -> list:
    """One generator per (image, repeat), image-major, as `estimate` takes them: completion r of image i
    of ensemble member m draws from keyed_generator(seed, COMPLETION_STREAM, i, draw, r, m)."""
    return [keyed_generator(seed, COMPLETION_STREAM, i, draw, r, member) for i in images for r in range(repeats)]


def conditioning_channels(image_channels: int, coord_conv: bool) -> int:
    """How many channels conditioning() adds: the network's input layout for inpaint and complete."""
    return image_channels + 1 + (2 if coord_conv else 0)


def conditioning(y: torch.Tensor, mask: torch.Tensor, coord_conv: bool) -> torch.Tensor:
    """Extra input channels: the masked image, the mask (1 on the hole) and, with coord_conv, the
    x and y pixel coordinates in [-1, 1] (Liu et al. 2018, CoordConv); conditioning_channels counts them."""
    n, _, h, w = y.shape
    parts = [y, mask.to(y.dtype)]
    if coord_conv:
        ys = torch.linspace(-1, 1, h, device=y.device, dtype=y.dtype).view(1, 1, h, 1).expand(n, 1, h, w)
        xs = torch.linspace(-1, 1, w, device=y.device, dtype=y.dtype).view(1, 1, 1, w).expand(n, 1, h, w)
        parts += [xs, ys]
    return torch.cat(parts, 1)


def conditional(model, cond: torch.Tensor):
    """The denoiser (x_t, t) -> model([x_t, cond], t) of a conditional inpainting model."""
    return lambda x, t, **kw: model(torch.cat([x, cond], 1), t, **kw)


def stop_level(cfg) -> int:
    """The level at which a diffusion completion stops (inpaint.mean_at * T); 0 = a finished sample."""
    return round(cfg.inpaint.mean_at * cfg.diffusion.timesteps)


def estimate(model, cfg, x0: torch.Tensor, m: torch.Tensor, generator, *, mean_of: int = 1) -> torch.Tensor:
    """One batch: a model's completion of x0 (model range, on its device) on bool masks m, as float
    clamped to the model range [-1, 1] (the image it stands for), with the known pixels of x0, made
    as the model's task makes them (Task.estimate). `generator`: one CPU generator, or one per row of
    the repeated batch (len(x0) * mean_of, image-major)."""
    from tasks import for_config
    return for_config(cfg).estimate(model, cfg, x0, m, generator, mean_of=mean_of)


def diffusion_estimate(make_denoiser, cfg, x0: torch.Tensor, m: torch.Tensor, generator, *,
                       mean_of: int = 1) -> torch.Tensor:
    """estimate() for a diffusion model: the inpainting loop of diffusion/inpaint.py with the denoiser
    make_denoiser(masked images, masks) gives, the sample.* steps, eta and spacing and the inpaint.*
    knobs (dc_repeats, jump_length, dc_fixed_z, init_from_y); averages `mean_of` independent
    completions per image (an estimate of the posterior mean), or with inpaint.mean_at > 0 the clean
    estimates at level mean_at * T."""
    s, k = cfg.sample, cfg.inpaint
    b = len(x0)
    x0, m = x0.repeat_interleave(mean_of, 0), m.repeat_interleave(mean_of, 0)
    y = masks_mod.apply(x0, m)
    x = inpaint(make_denoiser(y, m), from_config(cfg.diffusion), y, m, generator, steps=s.steps, eta=s.eta,
                prediction=cfg.diffusion.prediction, clip_x0=s.clip_x0, spacing=s.spacing,
                self_cond=cfg.diffusion.self_cond, repeats=k.dc_repeats, jump_length=k.jump_length,
                fixed_z=k.dc_fixed_z, init_from_y=k.init_from_y, stop_at=stop_level(cfg))
    return x.view(b, mean_of, *x.shape[1:]).mean(1).clamp(-1, 1)


def diffusion_method_name(cfg, kind: str) -> str:
    """'KIND DDIM xS[ eta E], DC|RePaint jJ rR[, mean of K][, estimates at t = L]'."""
    s, k = cfg.sample, cfg.inpaint
    resample = f", RePaint j{k.jump_length} r{k.dc_repeats}" if k.dc_repeats > 1 else ", DC"
    mean = f", mean of {k.mean_of}" if k.mean_of > 1 else ""
    if k.mean_at:
        mean += f"{' ' if mean else ', '}estimates at t = {stop_level(cfg)}"
    eta = f" eta {s.eta:g}" if s.eta else ""
    return f"{kind} DDIM x{s.steps}{eta}{resample}{mean}"


def complete(model, cfg, images: torch.Tensor, masks: torch.Tensor, seed: int, *, batch_size: int, device,
             mean_of: int = 1, draw: int = 0, progress: bool = True) -> np.ndarray:
    """Complete uint8 digits (N, 28, 28) on bool masks (N, 1, 28, 28) with a model trained for any
    task (see `estimate`); returns uint8 (N, 28, 28) whose known pixels equal the input's. Completion
    r of image i draws its noise from its own generator (completion_generators), so it is the same
    whatever the batch size; another `draw` is another sample of the same completions."""
    return _complete([(model, cfg, mean_of)], [1.0], images, masks, seed, draw, batch_size, device, progress)


def complete_ensemble(members: list, weights: list[float], images: torch.Tensor, masks: torch.Tensor,
                      seed: int, *, batch_size: int, device, draw: int = 0, progress: bool = True) -> np.ndarray:
    """complete() with several models: the weighted sum of the members' float estimates (each a
    (model, cfg) pair, its cfg.inpaint.mean_of completions averaged), known pixels pasted back, then
    rounded to uint8 once. Models that estimate E[x | y] with partly independent errors average to a
    better estimate of it (an ensemble; weights as fitted by scripts/fit_ensemble.py)."""
    if len(members) != len(weights):
        raise ValueError(f"{len(members)} ensemble members but {len(weights)} weights")
    return _complete([(model, cfg, cfg.inpaint.mean_of) for model, cfg in members], weights, images, masks,
                     seed, draw, batch_size, device, progress)


def affine_least_squares(preds: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Ensemble weights w (summing to 1) minimising ||preds.T @ w - target||^2; preds (K, P), target (P,).
    Solved through the KKT system [[2 A A^T, 1], [1^T, 0]] [w; lambda] = [2 A t; 1]."""
    k = len(preds)
    gram = preds @ preds.T
    kkt = np.zeros((k + 1, k + 1))
    kkt[:k, :k], kkt[:k, k], kkt[k, :k] = 2 * gram, 1, 1
    rhs = np.concatenate([2 * preds @ target, [1.0]])
    return np.linalg.lstsq(kkt, rhs, rcond=None)[0][:k]


def _complete(members: list, weights, images, masks, seed, draw, batch_size, device, progress) -> np.ndarray:
    out = []
    from tasks import for_config
    kinds = [for_config(cfg) for _, cfg, _ in members]
    names = "/".join(sorted({t.name for t in kinds}))
    desc = (f"{names} x{members[0][1].sample.steps}" if any(t.stochastic for t in kinds) else names) + (
        f" ensemble of {len(members)}" if len(members) > 1 else "")
    for model, _, _ in members:
        model.eval()
    with progress_bar(len(images), desc, "images", enabled=progress) as bar:
        for start in range(0, len(images), batch_size):
            x0 = to_model_range(images[start:start + batch_size]).to(device)
            m = masks[start:start + batch_size].to(device)
            rows = range(start, start + len(x0))
            x = sum(w * estimate(model, cfg, x0, m, completion_generators(seed, rows, draw, k, member), mean_of=k)
                    for member, ((model, cfg, k), w) in enumerate(zip(members, weights)))
            out.append(to_uint8(masks_mod.paste(x0, x, m)).numpy())
            bar.update(len(x0))
    return np.concatenate(out)


def panel_rows(originals: torch.Tensor, masks: torch.Tensor, completions: list[np.ndarray]) -> list[np.ndarray]:
    """Rows of an inpainting panel (for dataio.images.save_rows): the inputs with the hole black,
    each row of completions, the originals. originals uint8 (N, H, W) or (N, C, H, W)."""
    shown = originals.masked_fill(masks if originals.dim() == 4 else masks[:, 0], 0)
    return [displayable(a) for a in (shown.numpy(), *completions, originals.numpy())]


class MaskedTask(Task):
    """The tasks that train on masked digits (inpaint, complete): MNIST digits with masks drawn per
    batch from task.mask, or folder pairs that bring one mask per image (data.name: folder); optional
    jitter (data.shift/rotate/scale); panels of completed test digits during training; validation by
    the hole MSE of the validation digits' completions, the lowest kept as best.pt."""
    masked = True
    completes = True
    validation_field = "val_hole_mse"
    keeps_best = True

    def data(self, cfg) -> TrainData:
        """MNIST: the panel shows the first test digits with masks drawn by sample.seed. Folder pairs:
        each image has its own mask; the panel shows the first pairs."""
        d, k = cfg.data, cfg.task
        if d.name == "folder":
            images, fixed = load_pairs(d.occluded_dir, d.original_dir, d.image_size, d.channels, d.mask_thresh)
            if d.subset:
                images, fixed = images[:d.subset], fixed[:d.subset]
            return TrainData(images, masks=fixed, panel=images[:PANEL_DIGITS], panel_masks=fixed[:PANEL_DIGITS])
        images, labels, val = mnist_training(cfg)
        panel = load_mnist(d.root, train=False, download=d.download)[0][:PANEL_DIGITS]
        gen = torch.Generator().manual_seed(cfg.sample.seed)
        return TrainData(images, labels, panel=panel, val=val, panel_masks=masks_mod.make(
            k.mask, len(panel), size=k.mask_size, fraction=k.mask_fraction, generator=gen))

    def masked_batch(self, cfg, data: TrainData, idx, g, rows, device, channels_last: bool):
        """(clean images x0, their masks) of this process's rows: jittered by data.shift/rotate/scale
        and masked from task.mask (or the pairs' own masks), all drawn from `g` for the global batch."""
        d, k, micro = cfg.data, cfg.task, len(idx)
        x0 = image_batch(data.examples, idx[rows], device, channels_last)
        theta = augment.jitter_params(micro, g, x0.shape[-2:], shift=d.shift, rotate=d.rotate, scale=d.scale)
        if theta is not None:
            x0 = augment.apply(x0, theta[rows])
            x0 = x0.contiguous(memory_format=torch.channels_last) if channels_last else x0
        fixed = data.masks
        m = fixed[idx[rows].to(fixed.device)] if fixed is not None else masks_mod.make(
            k.mask, micro, size=k.mask_size, fraction=k.mask_fraction, hw=x0.shape[-2:], generator=g)[rows]
        return x0, m.to(device)

    def masked_loss(self, model, cfg, sched, x0: torch.Tensor, m: torch.Tensor, generator=None, *, t=None,
                    noise=None) -> tuple[torch.Tensor, dict]:
        """The loss of clean images x0 (model range) on bool masks m, and its parts to log."""
        raise NotImplementedError

    def pictures(self, ema_model, cfg, out_dir, step, data, device):
        """A panel: the masked test digits, the EMA model's completions, the originals."""
        done = complete(ema_model, cfg, data.panel, data.panel_masks, cfg.sample.seed, batch_size=len(data.panel),
                        device=device, progress=False)
        save_rows(Path(out_dir) / "inpaint" / f"panel_{step:07d}.png", panel_rows(data.panel, data.panel_masks, [done]))

    def validation_every(self, cfg) -> int:
        return cfg.train.val_every

    def validate(self, ema_model, cfg, data, device) -> float:
        """Hole MSE ([0, 1] units, the mean over digits of each digit's mean over its hole) of the EMA
        model's completions of the validation digits; the masks and the sampling noise come from
        sample.seed, so every evaluation of a run scores the same task."""
        k, s, val = cfg.task, cfg.sample, data.val
        gen = torch.Generator().manual_seed(s.seed)
        hole = masks_mod.make(k.mask, len(val), size=k.mask_size, fraction=k.mask_fraction, generator=gen)
        done = complete(ema_model, cfg, val, hole, s.seed, batch_size=s.batch_size, device=device,
                        mean_of=cfg.inpaint.mean_of, progress=False)
        err2 = ((torch.from_numpy(done).double() - val.double()) / 255) ** 2
        hole = hole[:, 0].double()
        return float(((err2 * hole).sum((1, 2)) / hole.sum((1, 2))).mean())
