"""The standard FID feature network (Szegedy et al. 2016 Inception-v3 with the TensorFlow FID
graph's weights, pool3 = 2048-d), for users who have pytorch-fid's ported weights file
`pt_inception-2015-12-05-6726825d.pth` on their machine. Nothing is downloaded here.

The network itself is in metrics/inception_net.py, imported only when it is loaded.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from common.errors import UserError

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
ENV_VAR = "FID_INCEPTION_WEIGHTS"


def pool3(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """2048-d pool3 features of images in [0, 1], (B, 3, H, W) -> (B, 2048); resized to 299 bilinearly."""
    x = 2 * F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) - 1
    for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
                 "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                 "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "avgpool"):
        x = getattr(net, name)(x)
    return x.flatten(1)


def weights_path(explicit: str | None = None) -> Path:
    """--inception_weights, else $FID_INCEPTION_WEIGHTS, else torch hub's checkpoint folder."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_NAME


def load_inception(path: Path) -> nn.Module:
    if not path.is_file():
        raise UserError(f"FID Inception weights not found at {path}; download {WEIGHTS_NAME} from the pytorch-fid "
                        f"releases (github.com/mseitzer/pytorch-fid) and pass --inception_weights FILE or set {ENV_VAR}")
    from metrics.inception_net import fid_inception_v3  # imports torchvision (seconds)

    net = fid_inception_v3()
    try:
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as e:
        raise UserError(f"{path} is not pytorch-fid's Inception weights file ({str(e).splitlines()[0][:80]})") from None
    return net


@torch.inference_mode()
def extract(net: nn.Module, images_u8: np.ndarray, batch_size: int = 50, progress: bool = True) -> np.ndarray:
    """float64 (N, 2048) pool3 features of uint8 (N, 28, 28) digits (gray replicated to RGB)."""
    out = []
    for i in tqdm(range(0, len(images_u8), batch_size), desc="inception", leave=False, disable=not progress):
        x = torch.as_tensor(images_u8[i:i + batch_size]).float().div(255).unsqueeze(1).expand(-1, 3, -1, -1)
        out.append(pool3(net, x).double())
    return torch.cat(out).numpy()
