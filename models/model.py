"""`build_model(cfg, inputs)`: the one file a student edits to try another denoiser.

Add an entry to REGISTRY: a builder function taking the run Config and `inputs` (a dict: the
network's `in_channels`, the `image_channels` it returns and `num_classes`, set by the run's task:
tasks/*.py) and returning an nn.Module that maps (x, t, y=None) -> tensor with `image_channels`
channels, y holding class labels when model.num_classes > 0. Select it with `model.name` in the YAML
config. A new network's own settings go under model.options (a free mapping, saved with the
checkpoint): docs/architecture.md has a worked example.
"""
from __future__ import annotations

from torch import nn

from models.completion import CompletionNet
from models.convmlp import ConvMLP
from models.mlp import MLPDenoiser
from models.transformer import DiT
from models.unet import UNet

def build_unet(cfg, inputs: dict) -> nn.Module:
    m = cfg.model
    return UNet(channels=m.channels, channel_mult=tuple(m.channel_mult), num_res_blocks=m.num_res_blocks,
                attn_levels=tuple(m.attn_levels), num_heads=m.num_heads, dropout=m.dropout, **inputs)


def build_transformer(cfg, inputs: dict) -> nn.Module:
    m = cfg.model
    return DiT(image_size=cfg.data.image_size, patch_size=m.patch_size, width=m.width, depth=m.depth, num_heads=m.num_heads, dropout=m.dropout,
               pos_embed=m.pos_embed, **inputs)


def build_completion(cfg, inputs: dict) -> nn.Module:
    """Seed 002's gated-conv + ConvLSTM network; model.channels = hidden channels, model.depth =
    gated layers. One pass, no time input: only for task.name: complete."""
    return CompletionNet(hidden=cfg.model.channels, depth=cfg.model.depth, **inputs)


def build_convmlp(cfg, inputs: dict) -> nn.Module:
    """The fast one-pass completion network: model.channels conv width, model.width MLP units,
    model.depth MLP hidden layers, model.dropout. No time input: only for task.name: complete."""
    m = cfg.model
    return ConvMLP(image_size=cfg.data.image_size, channels=m.channels, width=m.width, depth=m.depth,
                   dropout=m.dropout, **{k: v for k, v in inputs.items() if k != "num_classes"})


def build_mlp(cfg, inputs: dict) -> nn.Module:
    """For 2D points (the moons task): model.width hidden units, model.depth residual blocks."""
    m = cfg.model
    return MLPDenoiser(width=m.width, depth=m.depth, dropout=m.dropout, **inputs)


REGISTRY = {
    "unet": build_unet,
    "transformer": build_transformer,
    "completion": build_completion,
    "convmlp": build_convmlp,
    "mlp": build_mlp,
}


def num_parameters(model: nn.Module) -> int:
    """The number of weights in `model` (every parameter tensor's elements)."""
    return sum(p.numel() for p in model.parameters())


def build_model(cfg, inputs: dict) -> nn.Module:
    try:
        builder = REGISTRY[cfg.model.name]
    except KeyError:
        raise ValueError(f"model.name={cfg.model.name!r} is not registered; choose one of {', '.join(REGISTRY)}") from None
    return builder(cfg, inputs)
