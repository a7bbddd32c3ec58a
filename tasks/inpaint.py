"""Task inpaint (seed 000): a diffusion denoiser that also sees the masked image, the mask and
optional coordinate channels, trained with a hole-weighted diffusion loss and sampled with the
inpainting loop of diffusion/inpaint.py."""
from __future__ import annotations

import torch

from dataio import masks as masks_mod
from diffusion.process import config_loss
from tasks import completion
from tasks.base import levels_and_noise
from tasks.completion import MaskedTask, conditional, conditioning, conditioning_channels


class InpaintTask(MaskedTask):
    name = "inpaint"

    def inputs(self, cfg) -> dict:
        """The noisy image (doubled by self-conditioning), then the conditioning channels."""
        image = cfg.data.channels
        noisy = image * (2 if cfg.diffusion.self_cond else 1)
        return {"image_channels": image, "in_channels": noisy + conditioning_channels(image, cfg.task.coord_conv),
                "num_classes": cfg.model.num_classes}

    def loss(self, model, cfg, sched, data, idx, g, rows, device, channels_last=False):
        x0, m = self.masked_batch(cfg, data, idx, g, rows, device, channels_last)
        t, noise = levels_and_noise(sched, cfg.diffusion, len(idx), x0, g, rows)
        return self.masked_loss(model, cfg, sched, x0, m, g, t=t, noise=noise)

    def masked_loss(self, model, cfg, sched, x0, m, generator=None, *, t=None, noise=None):
        """The diffusion loss of cfg.diffusion with per-pixel weight task.hole_weight on the hole and 1
        on the context, the denoiser conditioned on the masked x0; the levels, noise and
        self-conditioning coin come from `generator` unless t and noise are given."""
        weight = torch.where(m, cfg.task.hole_weight, 1.0).to(x0.dtype)
        denoiser = conditional(model, conditioning(masks_mod.apply(x0, m), m, cfg.task.coord_conv))
        return config_loss(denoiser, sched, x0, cfg.diffusion, generator, pixel_weight=weight, t=t, noise=noise), {}

    def estimate(self, model, cfg, x0, m, generator, *, mean_of=1):
        return completion.diffusion_estimate(lambda y, mask: conditional(model, conditioning(y, mask, cfg.task.coord_conv)),
                                             cfg, x0, m, generator, mean_of=mean_of)

    def method_name(self, cfg) -> str:
        return completion.diffusion_method_name(cfg, "conditional")
