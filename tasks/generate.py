"""Task generate: digits from noise, unconditional or class-conditional (label dropout trains the
"no label" token that classifier-free guidance needs). Sampled by sample.py into a set of 5,000
digits that evaluate.py scores by FID; it also inpaints training-free (tasks/completion.py)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from common import distributed
from common.fileio import atomic_dir, write_json
from common.runtime import timing
from dataio.images import save_grid, save_npz, write_png_folder
from diffusion.process import config_loss
from models.embeddings import no_label
from tasks import completion
from tasks.base import Task, TrainData, image_batch, levels_and_noise, mnist_training
from tasks.generation import conditioning, generate

# what made a digit set, recorded in samples.json: with the checkpoint, sample i is a function of these
SETTINGS = ("sampler", "steps", "eta", "seed", "spacing", "sigmas", "guidance", "autoguidance", "guidance_interval",
            "digit", "num_samples")
# settings added after records were first written: an older samples.json that lacks one was made with this value
ADDED_SETTINGS = {"autoguidance": 0.0, "guidance_interval": [0.0, 1.0]}


def settings_of(record: dict) -> dict:
    """The SETTINGS of a samples.json record, older records' missing ADDED_SETTINGS filled in; a
    ValueError names the keys it lacks."""
    record = {**ADDED_SETTINGS, **record}
    missing = [k for k in SETTINGS if k not in record]
    if missing:
        raise ValueError(f"sampling settings lack {', '.join(missing)}")
    return {k: record[k] for k in SETTINGS}


def guidance_words(settings: dict) -> str:
    """How a digit set was guided, for tables: ", w 0.25", ", autoguidance 1.6", each followed by
    " in [0, 0.9] T" when sample.guidance_interval limits it; "" when unguided."""
    lo, hi = settings.get("guidance_interval") or (0, 1)
    where = f" in [{lo:g}, {hi:g}] T" if (lo, hi) != (0, 1) else ""
    kinds = (("guidance", "w"), ("autoguidance", "autoguidance"))
    return "".join(f", {name} {settings[key]:g}{where}" for key, name in kinds if settings.get(key))


def sampling_record(settings: dict, **extra) -> dict:
    """samples.json's record: the SETTINGS (grading.provenance regenerates samples from them), then
    what else the caller knows (the checkpoint and its hash, the timing...)."""
    return {**settings_of(settings), **extra}


def generate_from(model, cfg, settings: dict, *, device, guide=None, batch_size: int | None = None, indices=None,
                  progress: bool = False) -> np.ndarray:
    """generate() with a settings record (SETTINGS, as samples.json holds them): all its num_samples
    digits, or only `indices` of them; batch_size defaults to the record's. `guide`: the checkpoint's
    guide network (checkpoint.load_guide), which autoguidance > 0 needs."""
    s = settings_of(settings)
    return generate(model, cfg, s["num_samples"], seed=s["seed"], sampler=s["sampler"], steps=s["steps"],
                    eta=s["eta"], spacing=s["spacing"], sigmas=s["sigmas"], guidance=s["guidance"], digit=s["digit"],
                    guide=guide, autoguidance=s["autoguidance"], guidance_interval=s["guidance_interval"],
                    batch_size=batch_size or settings["batch_size"], device=device, indices=indices, progress=progress)


def save_digits(out_dir: Path, images: np.ndarray, record: dict) -> None:
    """A digit set as sample.py writes it: samples/00000.png..., samples.npz (key "images"), grid.png
    (the first 100) and samples.json (`record`), each written atomically."""
    with atomic_dir(out_dir / "samples") as tmp:
        write_png_folder(tmp, images)
    save_npz(out_dir / "samples.npz", images=images)
    save_grid(out_dir / "grid.png", images[:100], nrow=10)
    write_json(out_dir / "samples.json", record)


class GenerateTask(Task):
    name = "generate"
    makes_digits = True
    completes = True  # training-free, with the "no label" token for a class-conditional model
    validation_field = "fid"

    def inputs(self, cfg) -> dict:
        image = cfg.data.channels
        return {"image_channels": image, "in_channels": image * (2 if cfg.diffusion.self_cond else 1),
                "num_classes": cfg.model.num_classes}

    def data(self, cfg) -> TrainData:
        images, labels, val = mnist_training(cfg)
        return TrainData(images, labels, val=val)

    def loss(self, model, cfg, sched, data, idx, g, rows, device, channels_last=False):
        micro = len(idx)
        x0 = image_batch(data.examples, idx[rows], device, channels_last)
        y = None
        if cfg.model.num_classes:  # label dropout: the "no label" token trains the unconditional model for CFG
            labels = data.labels
            drop = torch.rand(micro, generator=g) < cfg.train.label_dropout
            y = labels[idx.to(labels.device)].masked_fill(drop.to(labels.device), no_label(cfg.model.num_classes))
            y = y[rows].to(device)
        t, noise = levels_and_noise(sched, cfg.diffusion, micro, x0, g, rows)
        return config_loss(model, sched, x0, cfg.diffusion, generator=g, labels=y, t=t, noise=noise), {}

    def pictures(self, ema_model, cfg, out_dir, step, data, device):
        s = cfg.sample
        grid = generate(ema_model, cfg, s.grid_size, seed=s.seed, sampler=s.sampler, steps=s.steps, eta=s.eta,
                        batch_size=s.batch_size, device=device, progress=False, autoguidance=0.0)
        save_grid(Path(out_dir) / f"train_grid_{step:07d}.png", grid)

    def validation_every(self, cfg) -> int:
        return cfg.train.eval_every

    def prepare_validation(self, cfg, data) -> None:
        """The FID reference and feature network, built before the first step (building the network
        draws from torch's global generator, so where it happens is part of a run's random stream)."""
        from metrics.evaluation import lenet_fid
        data.cache["fid"] = lenet_fid(cfg.data.root)

    def validate(self, ema_model, cfg, data, device) -> float:
        """FID of train.eval_samples EMA digits drawn with the sample.* settings (seed sample.seed), without
        autoguidance (its guide is kept only from train.guide_step on), as the training grids."""
        s = cfg.sample
        digits = generate(ema_model, cfg, cfg.train.eval_samples, seed=s.seed, sampler=s.sampler, steps=s.steps,
                          eta=s.eta, batch_size=s.batch_size, device=device, progress=False, autoguidance=0.0)
        return data.cache["fid"](digits)

    def write_samples(self, model, cfg, out_dir, settings, source, *, device, ctx, progress, guide=None) -> str:
        """Digits split over the processes (each sample's noise is its own, so the split changes
        nothing), gathered on rank 0 and saved by save_digits; balanced over the classes when the model
        is class-conditional (tasks.generation.class_labels; k-means clusters are equal in size)."""
        n, start = settings["num_samples"], time.perf_counter()
        images = generate_from(model, cfg, settings, device=device, guide=guide, indices=ctx.share(n), progress=progress)
        images = distributed.gather_to_main(ctx, images)
        seconds = time.perf_counter() - start
        if not ctx.main:
            return ""
        save_digits(out_dir, images, sampling_record(settings, **source,
                                                     **conditioning(cfg),
                                                     batch_size=settings["batch_size"], processes=ctx.world,
                                                     **timing(device, seconds, n)))
        return (f"{n} samples in {seconds:.1f}s ({n / seconds:.1f} img/s) -> {out_dir}/samples/, "
                f"{out_dir}/samples.npz; grid: {out_dir}/grid.png")

    def estimate(self, model, cfg, x0, m, generator, *, mean_of=1):
        if cfg.model.num_classes:
            def denoiser(x, t):
                return model(x, t, torch.full((len(x),), no_label(cfg.model.num_classes), device=x.device))
        else:
            denoiser = model
        return completion.diffusion_estimate(lambda y, mask: denoiser, cfg, x0, m, generator, mean_of=mean_of)

    def method_name(self, cfg) -> str:
        return completion.diffusion_method_name(cfg, "training-free")
