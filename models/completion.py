"""The image completion network of seed 002: gated convolutions with a ConvLSTM carried across layers.

Not a diffusion model: one pass maps the masked image and its mask to the completed image
(task.name: complete). Layout: an input conv over image + mask (+ coordinates) to `hidden`
channels; `depth` gated layers, each followed by one step of a ConvLSTM cell whose hidden state
is the next layer's input (the "time" of the LSTM is the depth); a skip connection from the input
conv; two residual blocks; an output conv with a sigmoid. Gated layer: tanh(BN(conv_f(x))) *
sigmoid(BN(conv_g(x))) (the gated activation of PixelCNN, van den Oord et al. 2016);
ConvLSTM: Shi et al. 2015 (arXiv:1506.04214), without peepholes.
"""
from __future__ import annotations

import torch
from torch import nn


class GatedLayer(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv_f = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv_g = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn_f, self.bn_g = nn.BatchNorm2d(channels), nn.BatchNorm2d(channels)

    def forward(self, x):
        return torch.tanh(self.bn_f(self.conv_f(x))) * torch.sigmoid(self.bn_g(self.conv_g(x)))


class ConvLSTMCell(nn.Module):
    """i, f, o, g = split(conv([x, h])); c' = sig(f) c + sig(i) tanh(g); h' = sig(o) tanh(c')."""

    def __init__(self, cin: int, hidden: int, kernel: int = 3):
        super().__init__()
        self.hidden = hidden
        self.conv = nn.Conv2d(cin + hidden, 4 * hidden, kernel, padding=kernel // 2)

    def forward(self, x, state):
        h, c = state
        i, f, o, g = self.conv(torch.cat([x, h], 1)).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def init_hidden(self, batch: int, size: tuple[int, int], device=None):
        z = torch.zeros(batch, self.hidden, *size, device=device)
        return z, z.clone()


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels))

    def forward(self, x):
        return torch.relu(x + self.body(x))


class CompletionNet(nn.Module):
    """(inputs (B, in_channels, H, W), t ignored) -> image (B, image_channels, H, W) in [-1, 1]
    (the sigmoid output mapped to the model range the rest of the project uses)."""

    def __init__(self, in_channels: int, image_channels: int, hidden: int = 48, depth: int = 4, **_):
        super().__init__()
        self.input_conv = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.layers = nn.ModuleList(GatedLayer(hidden) for _ in range(depth))
        self.convlstm = ConvLSTMCell(hidden, hidden)
        self.res_blocks = nn.Sequential(ResidualBlock(hidden), ResidualBlock(hidden))
        self.output_conv = nn.Conv2d(hidden, image_channels, 3, padding=1)

    def forward(self, x, t=None, y=None):
        feats = self.input_conv(x)
        h, c = self.convlstm.init_hidden(len(x), x.shape[-2:], x.device)
        out = feats
        for layer in self.layers:
            h, c = self.convlstm(layer(out), (h, c))
            out = h
        out = self.res_blocks(out + feats)
        return torch.sigmoid(self.output_conv(out)) * 2 - 1
