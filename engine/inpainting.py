"""Completing masked digits, composed from masks, a network and (for diffusion) the inpainting sampler.

Three tasks share one trainer and one checkpoint format (config key task.name):
  generate: an unconditional or class-conditional denoiser; it inpaints training-free (DDIM + data
            consistency, RePaint) through diffusion/inpaint.py;
  inpaint:  a denoiser that also sees the masked image, the mask and optional coordinate channels
            (seed 000); trained with a hole-weighted diffusion loss, sampled with the same loop;
  complete: one forward pass from the masked image and mask to the image (no diffusion): the MSE
            regression baseline, or the completion network of models/completion.py with L1 + SSIM.
"""
from __future__ import annotations

import numpy as np
import torch

from dataio import masks as masks_mod
from dataio.images import displayable
from dataio.mnist import to_model_range, to_uint8
from diffusion.inpaint import inpaint
from diffusion.process import config_loss
from diffusion.schedule import from_config
from engine.generation import keyed_generator
from engine.progress import bar as progress_bar
from metrics.inpainting import masked_mean, ssim

TASKS = ("generate", "inpaint", "complete")
# keys completions' generators apart from generation's keyed_generator(seed, i) and training's
# keyed_generator(seed, batch): numpy pads short seeds with zeros, so (seed, i) = (seed, i, 0, 0)
COMPLETION_STREAM = 0x636F6D70


def completion_generators(seed: int, images: range, draw: int, repeats: int, member: int = 0) -> list:
    """One generator per (image, repeat), image-major, as `estimate` takes them: completion r of image i
    of ensemble member m draws from keyed_generator(seed, COMPLETION_STREAM, i, draw, r, m)."""
    return [keyed_generator(seed, COMPLETION_STREAM, i, draw, r, member) for i in images for r in range(repeats)]


def conditioning(y: torch.Tensor, mask: torch.Tensor, coord_conv: bool) -> torch.Tensor:
    """Extra input channels: the masked image, the mask (1 on the hole) and, with coord_conv, the
    x and y pixel coordinates in [-1, 1] (Liu et al. 2018, CoordConv). Count: models.model.inputs."""
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


def forward_complete(model, y: torch.Tensor, mask: torch.Tensor, coord_conv: bool) -> torch.Tensor:
    """A direct completion network's output (model range); its time input is a constant 0."""
    return model(conditioning(y, mask, coord_conv), torch.zeros(len(y), device=y.device))


def loss(model, sched, x0: torch.Tensor, mask: torch.Tensor, cfg, generator: torch.Generator | None = None,
         t: torch.Tensor | None = None, noise: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Training loss of an inpaint or complete task on clean images x0 (model range) and masks.

    inpaint: the diffusion loss of cfg.diffusion with per-pixel weight hole_weight on the hole and
             1 on the context, the denoiser conditioned on the masked x0.
    complete: in [0, 1] units, loss_mse * MSE(hole) + loss_l1 * L1(hole)
              + loss_ssim * (1 - SSIM(composite, x0)), the composite keeping the known pixels.
    inpaint draws its levels, noise and self-conditioning coin from `generator` unless t and noise are given.
    Returns (loss, parts to log as 0-d tensors, left on the device)."""
    task = cfg.task
    y = masks_mod.apply(x0, mask)
    if task.name == "inpaint":
        weight = torch.where(mask, task.hole_weight, 1.0).to(x0.dtype)
        denoiser = conditional(model, conditioning(y, mask, task.coord_conv))
        value = config_loss(denoiser, sched, x0, cfg.diffusion, generator, pixel_weight=weight, t=t, noise=noise)
        return value, {}
    pred = (forward_complete(model, y, mask, task.coord_conv).float() + 1) / 2
    target = (x0.float() + 1) / 2
    mse = masked_mean((pred - target) ** 2, mask).mean()
    l1 = masked_mean((pred - target).abs(), mask).mean()
    value = task.loss_mse * mse + task.loss_l1 * l1
    parts = {"mse": mse.detach(), "l1": l1.detach()}
    if task.loss_ssim:
        s = ssim(torch.where(mask, pred, target), target).mean()
        value = value + task.loss_ssim * (1 - s)
        parts["ssim"] = s.detach()
    return value, parts


def stop_level(cfg) -> int:
    """The level at which a diffusion completion stops (sample.mean_at * T); 0 = a finished sample."""
    return round(cfg.sample.mean_at * cfg.diffusion.timesteps)


def estimate(model, cfg, x0: torch.Tensor, m: torch.Tensor, generator, *, mean_of: int = 1) -> torch.Tensor:
    """One batch: a model's completion of x0 (model range, on its device) on bool masks m, as float
    clamped to the model range [-1, 1] (the image it stands for), with the known pixels of x0.
    Diffusion tasks use cfg.sample (steps, eta, spacing, dc_repeats, jump_length, dc_fixed_z,
    init_from_y) and average `mean_of` independent completions per image (an estimate of the
    posterior mean), or with sample.mean_at > 0 the clean estimates at level mean_at * T
    (diffusion/inpaint.py); a class-conditional generate model is run with its "no label" token.
    `generator`: one CPU generator, or one per row of the repeated batch (len(x0) * mean_of, image-major)."""
    s, task = cfg.sample, cfg.task.name
    if task == "complete":
        with torch.inference_mode():
            x = forward_complete(model, masks_mod.apply(x0, m), m, cfg.task.coord_conv).float()
        return masks_mod.paste(x0, x.clamp(-1, 1), m)
    b = len(x0)
    x0, m = x0.repeat_interleave(mean_of, 0), m.repeat_interleave(mean_of, 0)
    y = masks_mod.apply(x0, m)
    if task == "inpaint":
        denoiser = conditional(model, conditioning(y, m, cfg.task.coord_conv))
    elif cfg.model.num_classes:
        null = torch.full((len(y),), cfg.model.num_classes, device=y.device)
        denoiser = lambda x, t: model(x, t, null)
    else:
        denoiser = model
    x = inpaint(denoiser, from_config(cfg.diffusion), y, m, generator, steps=s.steps, eta=s.eta,
                prediction=cfg.diffusion.prediction, clip_x0=s.clip_x0, spacing=s.spacing,
                self_cond=cfg.diffusion.self_cond, repeats=s.dc_repeats, jump_length=s.jump_length,
                fixed_z=s.dc_fixed_z, init_from_y=s.init_from_y, stop_at=stop_level(cfg))
    return x.view(b, mean_of, *x.shape[1:]).mean(1).clamp(-1, 1)


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
    (model, cfg) pair, its cfg.sample.mean_of completions averaged), known pixels pasted back, then
    rounded to uint8 once. Models that estimate E[x | y] with partly independent errors average to a
    better estimate of it (an ensemble; weights as fitted by scripts/fit_ensemble.py)."""
    if len(members) != len(weights):
        raise ValueError(f"{len(members)} ensemble members but {len(weights)} weights")
    return _complete([(model, cfg, cfg.sample.mean_of) for model, cfg in members], weights, images, masks,
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
    tasks = sorted({cfg.task.name for _, cfg, _ in members})
    desc = (tasks[0] if tasks == ["complete"] else f"{'/'.join(tasks)} x{members[0][1].sample.steps}") + (
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
