"""Task complete (seed 002): one forward pass from the masked image and mask to the image, no
diffusion: the MSE regression baseline, or the completion network of models/completion.py trained
with L1 + SSIM. Deterministic: every draw of a completion is the same."""
from __future__ import annotations

import torch

from common.errors import UserError
from dataio import masks as masks_mod
from metrics.inpainting import masked_mean, ssim
from tasks.completion import MaskedTask, conditioning, conditioning_channels


def forward_complete(model, y: torch.Tensor, mask: torch.Tensor, coord_conv: bool) -> torch.Tensor:
    """A direct completion network's output (model range); its time input is a constant 0."""
    return model(conditioning(y, mask, coord_conv), torch.zeros(len(y), device=y.device))


class CompleteTask(MaskedTask):
    name = "complete"
    stochastic = False
    log_fields = ("hole_mse", "hole_l1", "ssim")

    def inputs(self, cfg) -> dict:
        image = cfg.data.channels
        return {"image_channels": image, "in_channels": conditioning_channels(image, cfg.task.coord_conv),
                "num_classes": cfg.model.num_classes}

    def loss(self, model, cfg, sched, data, idx, g, rows, device, channels_last=False):
        x0, mask = self.masked_batch(cfg, data, idx, g, rows, device, channels_last)
        return self.masked_loss(model, cfg, sched, x0, mask)

    def masked_loss(self, model, cfg, sched, x0, mask, generator=None, *, t=None, noise=None):
        """In [0, 1] units: loss_mse * MSE(hole) + loss_l1 * L1(hole) + loss_ssim * (1 - SSIM(composite,
        x0)), the composite keeping the known pixels. Parts logged: the hole MSE, L1 and SSIM. No
        randomness: generator, t and noise are not used."""
        task = cfg.task
        pred = (forward_complete(model, masks_mod.apply(x0, mask), mask, task.coord_conv).float() + 1) / 2
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

    def estimate(self, model, cfg, x0, m, generator, *, mean_of=1):
        with torch.inference_mode():
            x = forward_complete(model, masks_mod.apply(x0, m), m, cfg.task.coord_conv).float()
        return masks_mod.paste(x0, x.clamp(-1, 1), m)

    def method_name(self, cfg) -> str:
        return "one-pass regression" if cfg.task.loss_mse and not cfg.task.loss_ssim else "one-pass completion"

    def check_completion_overrides(self, given, ckpt_path) -> None:
        diffusion_only = [o for o in given if o.startswith(("sample.", "inpaint.")) and not o.startswith("sample.batch_size")]
        if diffusion_only:
            raise UserError(f"{ckpt_path} is a one-pass completion model (task.name=complete), deterministic and "
                            f"without sampling steps; {diffusion_only[0].split('=')[0]} needs a diffusion checkpoint")
