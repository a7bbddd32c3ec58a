"""The FID feature network: a small LeNet-style MNIST classifier trained by this project
(scripts/train_feature_net.py), shipped as float16 weights with their sha256.

Features are the 128-d penultimate layer (after ReLU), the analogue of Inception's pool3 layer in
Heusel et al. 2017; logits give the class histogram and confidence checks.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from common.errors import UserError
from common.fileio import sha256_file

WEIGHTS = Path(__file__).with_name("weights") / "lenet_mnist.pt"
MEAN, STD = 0.1307, 0.3081  # MNIST training-set pixel statistics


class LeNet(nn.Module):
    def __init__(self, width: int = 32, feat_dim: int = 128, dropout: float = 0.3):
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 5, padding=2)  # 28 -> pool 14
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)  # 14 -> pool 7
        self.conv3 = nn.Conv2d(2 * width, 2 * width, 3, padding=1)  # 7 -> pool 3
        self.fc1 = nn.Linear(2 * width * 9, feat_dim)
        self.fc2 = nn.Linear(feat_dim, 10)
        self.drop = nn.Dropout(dropout)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        h = F.max_pool2d(F.relu(self.conv3(h)), 2)
        return F.relu(self.fc1(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.features(x)))


def preprocess(images_u8: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images_u8)).float().div(255).unsqueeze(1)
    return (x - MEAN) / STD


def test_accuracy() -> float:
    """The shipped network's accuracy on the 10,000 MNIST test digits, as recorded beside its weights
    (scripts/train_feature_net.py measured it; tests/test_evaluate.py checks it)."""
    return float(json.loads(WEIGHTS.with_suffix(".json").read_text())["test_accuracy"])


def sha256(path: Path = WEIGHTS) -> str:
    return sha256_file(path)


def load_lenet(path: Path = WEIGHTS) -> LeNet:
    if not Path(path).is_file():
        raise UserError(f"feature network weights {path} are missing; restore them from git or run "
                        "scripts/train_feature_net.py")
    net = LeNet()
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict({k: v.float() for k, v in state.items()})
    return net.eval()


@torch.inference_mode()
def extract(net: LeNet, images_u8: np.ndarray, batch_size: int = 1000, progress: bool = True):
    """(features float64 (N, 128), softmax probabilities float64 (N, 10)) of uint8 (N, 28, 28) digits."""
    feats, probs = [], []
    for i in tqdm(range(0, len(images_u8), batch_size), desc="features", leave=False, disable=not progress):
        f = net.features(preprocess(images_u8[i:i + batch_size]))
        feats.append(f.double())
        probs.append(net.fc2(f).double().softmax(1))
    return torch.cat(feats).numpy(), torch.cat(probs).numpy()
