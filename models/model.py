"""`build_model(cfg)`: the one function a student edits to try another denoiser.

Add an entry to REGISTRY (a function taking the run Config and returning an nn.Module that maps
(x, t, y=None) -> tensor with `image_channels` channels; x has `in_channels` channels, y holds class
labels when model.num_classes > 0) and select it with `model.name` in the YAML config.
"""
from __future__ import annotations

from torch import nn

from models.transformer import DiT
from models.unet import UNet

IMAGE_CHANNELS = 1  # MNIST is grayscale


def inputs(cfg) -> dict:
    """What every denoiser is told about its inputs: image channels in (doubled by self-conditioning,
    which feeds the previous clean-image estimate as extra channels) and out, and the class count."""
    in_channels = IMAGE_CHANNELS * (2 if cfg.diffusion.self_cond else 1)
    return {"image_channels": IMAGE_CHANNELS, "in_channels": in_channels, "num_classes": cfg.model.num_classes}


def build_unet(cfg) -> nn.Module:
    m = cfg.model
    return UNet(channels=m.channels, channel_mult=tuple(m.channel_mult), num_res_blocks=m.num_res_blocks,
                attn_levels=tuple(m.attn_levels), num_heads=m.num_heads, dropout=m.dropout, **inputs(cfg))


def build_transformer(cfg) -> nn.Module:
    m = cfg.model
    return DiT(patch_size=m.patch_size, width=m.width, depth=m.depth, num_heads=m.num_heads, dropout=m.dropout,
               pos_embed=m.pos_embed, **inputs(cfg))


REGISTRY = {
    "unet": build_unet,
    "transformer": build_transformer,
}


def build_model(cfg) -> nn.Module:
    try:
        builder = REGISTRY[cfg.model.name]
    except KeyError:
        raise ValueError(f"model.name={cfg.model.name!r} is not registered; choose one of {', '.join(REGISTRY)}") from None
    return builder(cfg)
