"""Self-describing checkpoints: config, weights, EMA, optimizer, lr schedule, step, RNG states,
library versions. Written atomically; read with torch.load(weights_only=True) only."""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import torch

from engine import config as config_mod
from common.errors import UserError
from common.fileio import atomic_path
from common.runtime import versions
from tasks import build_network

FORMAT = "mnist-diffusion-checkpoint/1"


def rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
    }


def set_rng_state(state: dict) -> None:
    """Restore the generators of rng_state(). The per-GPU states are restored only on a machine with as
    many GPUs (a run resumed elsewhere keeps the new machine's: only dropout draws from them)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))


def save(path: str | Path, payload: dict) -> None:
    """Write `payload` (plus format tag and versions) to `path` atomically."""
    payload = {"format": FORMAT, "versions": versions(), **payload}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)


def load(path: str | Path) -> dict:
    """Read a checkpoint written by `save`; any other file is a one-line UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found; train first (python train.py ...) or pass an existing .pt file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, zip errors, truncation: all mean "not a usable checkpoint"
        msg = str(e).strip()
        reason = ("it holds pickled Python objects, which are never unpickled here" if "Unsupported global" in msg
                  else (msg.splitlines() or [type(e).__name__])[0][:100])
        raise UserError(f"{path} is not a readable checkpoint ({reason}); "
                        "use a last.pt/final.pt written by train.py") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path} is not a checkpoint of this project (format {FORMAT}); use one written by train.py")
    return ckpt


def config_of(ckpt: dict, path) -> config_mod.Config:
    try:
        return config_mod.from_dict(ckpt["config"], f"the config stored in {path}", migrate=True)
    except UserError as e:
        raise UserError(f"{e} (checkpoint from another version of this project?)") from None


WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DistributedDataParallel, torch.compile


def unwrapped(state: dict) -> dict:
    """A state dict saved from a DDP-wrapped or compiled module, with the wrappers' key prefixes removed."""
    out = {}
    for key, value in state.items():
        while key.startswith(WRAPPER_PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def load_weights(model: torch.nn.Module, state: dict, path, what: str = "model") -> None:
    """Strict load (of an unwrapped state: see `unwrapped`); a mismatch (another architecture)
    becomes a one-line UserError."""
    state = unwrapped(state)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        detail = next((l.strip() for l in str(e).splitlines()[1:] if l.strip()), str(e))
        raise UserError(f"{path} holds {what} weights of another architecture ({detail[:150]}); "
                        "build the model from the config it was trained with") from None


def weights_sha256(ckpt: dict) -> str:
    """sha256 of what a checkpoint's samples depend on: its model, diffusion and sample config and its EMA
    weights (names, dtypes, shapes, bytes). Unlike the file's sha256 it ignores the bookkeeping
    (training seconds, optimizer, RNG states), so a bit-identical retrain (the same command, seed,
    thread count and library versions) keeps the measurements keyed by it."""
    h = hashlib.sha256(json.dumps({k: ckpt["config"][k] for k in ("model", "diffusion", "sample")},
                                  sort_keys=True).encode())
    weights = {**unwrapped(ckpt["ema"]["model"]), **{f"guide:{k}": v for k, v in unwrapped(ckpt.get("guide") or {}).items()}}
    for name, t in sorted(weights.items()):
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def load_model(path, *, ema: bool = True, device: torch.device = torch.device("cpu")):
    """(checkpoint dict, config, network with the EMA (or raw) weights on `device`, in eval mode)."""
    ckpt = load(path)
    cfg = config_of(ckpt, path)
    model = build_network(cfg)
    load_weights(model, ckpt["ema"]["model"] if ema else ckpt["model"], path, "EMA" if ema else "model")
    return ckpt, cfg, model.to(device, memory_format=torch.channels_last).eval()


def load_guide(ckpt: dict, cfg, path, device: torch.device = torch.device("cpu")):
    """The guide network of sample.autoguidance (the EMA weights train.guide_step kept), in eval mode on
    `device`, or None for a checkpoint without one."""
    if ckpt.get("guide") is None:
        return None
    guide = build_network(cfg)
    load_weights(guide, ckpt["guide"], path, "guide")
    return guide.to(device, memory_format=torch.channels_last).eval()
