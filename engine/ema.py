"""Exponential moving average of model weights (Polyak averaging), as in Ho et al. 2020, or the
power-function average of EDM2 (Karras et al. 2024, arXiv:2312.02696, Sec. 3.1)."""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn


def sigma_rel_to_gamma(sigma_rel: float) -> float:
    """The exponent gamma of the power-function EMA whose relative standard deviation (width of the
    averaging window as a fraction of training so far) is sigma_rel: the largest real root of
    gamma^3 + 7 gamma^2 + (16 - s^-2) gamma + 12 - s^-2 = 0 (EDM2, Eq. 3 solved for gamma)."""
    t = sigma_rel ** -2
    return float(np.roots([1, 7, 16 - t, 12 - t]).real.max())


class EMA:
    """Holds a frozen copy of the model whose weights follow ema <- d * ema + (1 - d) * w after each of
    n = 1, 2, ... updates, with
      sigma_rel > 0: d = (1 - 1/n)^(gamma + 1), the power-function EMA of EDM2: the average always
                     spans the same share of training (sigma_rel), however long the run;
      warmup:        d = min(decay, (1 + k) / (10 + k)) with k = n - 1 updates before this one, so early
                     averages are not dominated by the random init; it reaches `decay` only after
                     k = (10 decay - 1) / (1 - decay) updates (8,990 for 0.999);
      otherwise:     d = decay."""

    def __init__(self, model: nn.Module, decay: float, warmup: bool = True, sigma_rel: float = 0.0):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.warmup, self.updates = decay, warmup, 0
        self.gamma = sigma_rel_to_gamma(sigma_rel) if sigma_rel > 0 else None

    def current_decay(self) -> float:
        if self.gamma is not None:
            return (1 - 1 / (self.updates + 1)) ** (self.gamma + 1)
        return min(self.decay, (1 + self.updates) / (10 + self.updates)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.current_decay()
        ema_p = list(self.model.parameters())
        torch._foreach_lerp_(ema_p, [p.detach() for p in model.parameters()], 1 - d)
        for eb, b in zip(self.model.buffers(), model.buffers()):
            eb.copy_(b)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])
