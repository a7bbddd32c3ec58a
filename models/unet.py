"""A compact DDPM UNet (Ho et al. 2020, arXiv:2006.11239; layout after Dhariwal & Nichol 2021).

Sinusoidal time embedding + MLP, residual blocks with GroupNorm/SiLU/dropout and a time shift,
multi-head self-attention at the chosen levels, stride-2 conv downsampling and nearest-neighbour
upsampling to the skip's exact size, so 28 -> 14 -> 7 -> 14 -> 28 with no padding tricks.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.embeddings import LabelEmbedding, timestep_embedding


def norm(ch: int) -> nn.GroupNorm:
    groups = next(g for g in (32, 16, 8, 4, 2, 1) if ch % g == 0 and ch // g >= 4 or g == 1)
    return nn.GroupNorm(groups, ch)


def zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, temb: int, dropout: float):
        super().__init__()
        self.in_layers = nn.Sequential(norm(cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.temb = nn.Sequential(nn.SiLU(), nn.Linear(temb, cout))
        self.out_layers = nn.Sequential(norm(cout), nn.SiLU(), nn.Dropout(dropout),
                                        zero(nn.Conv2d(cout, cout, 3, padding=1)))
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x, emb):
        h = self.in_layers(x) + self.temb(emb)[:, :, None, None]
        return self.skip(x) + self.out_layers(h)


class Attention(nn.Module):
    def __init__(self, ch: int, heads: int):
        super().__init__()
        if ch % heads:
            raise ValueError(f"attention width {ch} is not divisible by model.num_heads={heads}")
        self.heads = heads
        self.norm = norm(ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = zero(nn.Conv2d(ch, ch, 1))

    def forward(self, x, emb=None):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).transpose(-1, -2).unbind(1)
        out = F.scaled_dot_product_attention(q, k, v)  # (b, heads, hw, c/heads)
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class Level(nn.Module):
    """Residual blocks, each optionally followed by attention."""

    def __init__(self, chans: list[tuple[int, int]], temb: int, dropout: float, attn: bool, heads: int):
        super().__init__()
        self.blocks = nn.ModuleList(ResBlock(a, b, temb, dropout) for a, b in chans)
        self.attns = nn.ModuleList(Attention(b, heads) if attn else nn.Identity() for _, b in chans)


class UNet(nn.Module):
    def __init__(self, image_channels: int = 1, channels: int = 64, channel_mult=(1, 2, 2), num_res_blocks: int = 2,
                 attn_levels=(2,), num_heads: int = 4, dropout: float = 0.1, in_channels: int | None = None,
                 num_classes: int = 0):
        super().__init__()
        temb = 4 * channels
        self.channels = channels
        self.time_mlp = nn.Sequential(nn.Linear(channels, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.label = LabelEmbedding(num_classes, temb)
        self.conv_in = nn.Conv2d(in_channels or image_channels, channels, 3, padding=1)
        widths = [channels * m for m in channel_mult]

        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        skips, cin = [channels], channels
        for i, w in enumerate(widths):
            chans = []
            for _ in range(num_res_blocks):
                chans.append((cin, w))
                cin = w
                skips.append(w)
            self.down.append(Level(chans, temb, dropout, i in attn_levels, num_heads))
            last = i == len(widths) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(w, w, 3, stride=2, padding=1))
            if not last:
                skips.append(w)

        self.mid = Level([(cin, cin), (cin, cin)], temb, dropout, False, num_heads)
        self.mid_attn = Attention(cin, num_heads)

        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            chans = []
            for _ in range(num_res_blocks + 1):
                chans.append((cin + skips.pop(), w))
                cin = w
            self.up.append(Level(chans, temb, dropout, i in attn_levels, num_heads))
            self.upsample.append(nn.Identity() if i == 0 else nn.Conv2d(w, w, 3, padding=1))
        self.out = nn.Sequential(norm(cin), nn.SiLU(), zero(nn.Conv2d(cin, image_channels, 3, padding=1)))

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.label(self.time_mlp(timestep_embedding(t, self.channels)), y)
        h = self.conv_in(x)
        hs = [h]
        for level, down in zip(self.down, self.downsample):
            for block, attn in zip(level.blocks, level.attns):
                h = attn(block(h, emb))
                hs.append(h)
            if not isinstance(down, nn.Identity):
                h = down(h)
                hs.append(h)
        h = self.mid.blocks[0](h, emb)
        h = self.mid.blocks[1](self.mid_attn(h), emb)
        for level, up in zip(self.up, self.upsample):
            for block, attn in zip(level.blocks, level.attns):
                h = attn(block(torch.cat([h, hs.pop()], dim=1), emb))
            if not isinstance(up, nn.Identity):
                h = up(F.interpolate(h, size=hs[-1].shape[-2:], mode="nearest"))
        return self.out(h)
