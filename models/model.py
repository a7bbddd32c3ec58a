"""`build_model(cfg)`: the one function a student edits to try another denoiser.

Add an entry to REGISTRY (a function taking the run Config and returning an nn.Module that maps
(x, t, y=None) -> tensor with `image_channels` channels; x has `in_channels` channels, y holds class
labels when model.num_classes > 0) and select it with `model.name` in the YAML config.
"""
from __future__ import annotations

from torch import nn

from models.completion import CompletionNet
from models.convmlp import ConvMLP
from models.mlp import MLPDenoiser
from models.transformer import DiT
from models.unet import UNet

POINT_DIM = 2  # data.name: moons holds 2D points, one "channel" per coordinate


def inputs(cfg) -> dict:
    """What every network is told about its inputs: channels in and out, and the class count.
    In: the noisy image (task generate/inpaint; doubled by self-conditioning, which feeds the last
    clean-image estimate back), then for task inpaint/complete the masked image and the mask, plus
    two coordinate channels with task.coord_conv (the layout of engine.inpainting.conditioning)."""
    task = cfg.task
    image = POINT_DIM if cfg.data.name == "moons" else cfg.data.channels
    noisy = 0 if task.name == "complete" else image * (2 if cfg.diffusion.self_cond else 1)
    cond = 0 if task.name == "generate" else image + 1 + (2 if task.coord_conv else 0)
    return {"image_channels": image, "in_channels": noisy + cond, "num_classes": cfg.model.num_classes}


def build_unet(cfg) -> nn.Module:
    m = cfg.model
    return UNet(channels=m.channels, channel_mult=tuple(m.channel_mult), num_res_blocks=m.num_res_blocks,
                attn_levels=tuple(m.attn_levels), num_heads=m.num_heads, dropout=m.dropout, **inputs(cfg))


def build_transformer(cfg) -> nn.Module:
    m = cfg.model
    return DiT(image_size=cfg.data.image_size, patch_size=m.patch_size, width=m.width, depth=m.depth, num_heads=m.num_heads, dropout=m.dropout,
               pos_embed=m.pos_embed, **inputs(cfg))


def build_completion(cfg) -> nn.Module:
    """Seed 002's gated-conv + ConvLSTM network; model.channels = hidden channels, model.depth =
    gated layers. One pass, no time input: only for task.name: complete."""
    return CompletionNet(hidden=cfg.model.channels, depth=cfg.model.depth, **inputs(cfg))


def build_convmlp(cfg) -> nn.Module:
    """The fast one-pass completion network: model.channels conv width, model.width MLP units,
    model.depth MLP hidden layers, model.dropout. No time input: only for task.name: complete."""
    m = cfg.model
    return ConvMLP(image_size=cfg.data.image_size, channels=m.channels, width=m.width, depth=m.depth,
                   dropout=m.dropout, **{k: v for k, v in inputs(cfg).items() if k != "num_classes"})


def build_mlp(cfg) -> nn.Module:
    """For 2D points (data.name: moons): model.width hidden units, model.depth residual blocks."""
    m = cfg.model
    return MLPDenoiser(width=m.width, depth=m.depth, dropout=m.dropout, **inputs(cfg))


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


def build_model(cfg) -> nn.Module:
    try:
        builder = REGISTRY[cfg.model.name]
    except KeyError:
        raise ValueError(f"model.name={cfg.model.name!r} is not registered; choose one of {', '.join(REGISTRY)}") from None
    return builder(cfg)
