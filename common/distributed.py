"""torchrun support: the process group, this process's rank, and helpers so that only rank 0
writes files. A single process (no torchrun) is world size 1 and needs none of it.

    torchrun --nproc_per_node N train.py --config ...     (NCCL on GPUs, gloo on CPUs)
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from common.errors import UserError


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes checkpoints, logs, pictures and results."""
        return self.rank == 0

    def share(self, n: int) -> np.ndarray:
        """This process's contiguous share of items 0..n-1 (the first n % world get one more)."""
        return np.array_split(np.arange(n), self.world)[self.rank]


def init(device: torch.device) -> Context:
    """Join the process group torchrun describes in the environment (WORLD_SIZE, RANK,
    LOCAL_RANK); without torchrun, a Context of one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Context()
    # NCCL carries only CUDA tensors; the small CPU collectives here (flags, log means, digests) use gloo
    backend = "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"
    if not dist.is_available() or ("nccl" in backend and not dist.is_nccl_available()) or not dist.is_gloo_available():
        raise UserError(f"torchrun started {world} processes but this PyTorch build lacks a {backend} backend; "
                        "run a single process (python train.py ...) or install a PyTorch with it")
    ctx = Context(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(ctx.local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return ctx


def device_for(ctx: Context, device: torch.device) -> torch.device:
    """One GPU per process (cuda:LOCAL_RANK); CPUs are shared."""
    return torch.device("cuda", ctx.local_rank) if device.type == "cuda" and ctx.world > 1 else device


def any_flag(ctx: Context, flag: bool) -> bool:
    """True on every rank if `flag` is true on any (e.g. a stop signal seen by one process)."""
    if ctx.world == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def mean_over(ctx: Context, values: list[float]) -> list[float]:
    """The mean of each value over the processes (each holds an equal share of the batch)."""
    if ctx.world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return (t / ctx.world).tolist()


def gather_to_main(ctx: Context, part: np.ndarray) -> np.ndarray | None:
    """Concatenate every rank's array in rank order on rank 0 (None elsewhere)."""
    if ctx.world == 1:
        return part
    parts = [None] * ctx.world
    dist.all_gather_object(parts, part)  # (NCCL has no gather_object)
    return np.concatenate(parts) if ctx.main else None


def check_replicas(ctx: Context, model: torch.nn.Module) -> None:
    """Every process must hold bit-identical weights (DDP averages identical gradients into
    identical optimizers); raise if they drifted apart, before a checkpoint records rank 0's."""
    if ctx.world == 1:
        return
    digest = hashlib.sha256(b"".join(p.detach().cpu().numpy().tobytes() for p in model.parameters())).hexdigest()
    digests = [None] * ctx.world
    dist.all_gather_object(digests, digest)
    if len(set(digests)) > 1:
        raise RuntimeError(f"the {ctx.world} processes hold different weights ({digests}); this is a bug")


def close(ctx: Context) -> None:
    if ctx.world > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
