"""The Inception-v3 of the TensorFlow FID graph (Szegedy et al. 2016), randomly initialised; the
weights come from pytorch-fid's ported file (metrics/inception.py loads them). Kept apart because
importing torchvision takes seconds, and only this network needs it.

The TF FID graph differs from torchvision's Inception-v3 in its pooling branches: the average pools
of the A, C and first E blocks exclude the zero padding, and the last E block max-pools. The
blocks below reuse torchvision's layers and change only that branch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import inception as tv


def _avg_pool_no_pad(x):
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _max_pool(x):
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


class FIDInceptionA(tv.InceptionA):
    def _forward(self, x):
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return [self.branch1x1(x), b5, b3, self.branch_pool(_avg_pool_no_pad(x))]


class FIDInceptionC(tv.InceptionC):
    def _forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            bd = layer(bd)
        return [self.branch1x1(x), b7, bd, self.branch_pool(_avg_pool_no_pad(x))]


class FIDInceptionE(tv.InceptionE):
    def __init__(self, in_channels: int, pool):
        super().__init__(in_channels)
        self.pool = pool

    def _forward(self, x):
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        return [self.branch1x1(x), b3, bd, self.branch_pool(self.pool(x))]


def fid_inception_v3() -> nn.Module:
    """The architecture of the TF FID graph (1008 classes, no aux head), randomly initialised."""
    net = tv.Inception3(num_classes=1008, aux_logits=False, init_weights=False)
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE(1280, _avg_pool_no_pad)
    net.Mixed_7c = FIDInceptionE(2048, _max_pool)
    return net.eval()
