"""Print training and sampling (or completion) speed of a config on this machine (no files written).

    python scripts/benchmark.py --config configs/tiny.yaml [--train_steps 20] [--sample_n 500]
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from dataio import masks  # noqa: E402
from diffusion.process import config_loss  # noqa: E402
from diffusion.schedule import from_config  # noqa: E402
from diffusion.samplers import evaluations  # noqa: E402
from engine import config  # noqa: E402
from engine.errors import ArgumentParser, exit_on_user_error  # noqa: E402
from engine import inpainting  # noqa: E402
from engine.generation import generate, pick_device  # noqa: E402
from models.model import build_model, inputs, num_parameters  # noqa: E402


def forward_flops(model, cfg, device) -> int:
    """FLOPs (2 per multiply-add) of one network call on one image, by torch.utils.flop_counter."""
    x = torch.zeros(1, inputs(cfg)["in_channels"], cfg.data.image_size, cfg.data.image_size, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, torch.ones(1, device=device))
    return counter.get_total_flops()


@exit_on_user_error
def main():
    p = ArgumentParser(description="training and sampling speed of a config")
    p.add_argument("--config", required=True)
    p.add_argument("--train_steps", type=int, default=20)
    p.add_argument("--sample_n", type=int, default=500)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()
    cfg = config.load(args.config, args.overrides)
    device = pick_device(cfg.train.device)
    torch.manual_seed(0)
    model = build_model(cfg).to(device, memory_format=torch.channels_last)
    n_params = num_parameters(model)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr)
    sched = from_config(cfg.diffusion)
    x0 = torch.rand(cfg.train.batch_size, 1, 28, 28, device=device) * 2 - 1
    k = cfg.task
    hole = masks.make(k.mask, len(x0), size=k.mask_size, fraction=k.mask_fraction).to(device)
    for i in range(args.train_steps + 3):
        if i == 3:  # warm-up steps excluded
            start = time.perf_counter()
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cfg.train.bf16):  # as the trainer
            if cfg.task.name == "generate":
                loss = config_loss(model, sched, x0, cfg.diffusion)
            else:
                loss = inpainting.loss(model, sched, x0, hole, cfg)[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    train_rate = args.train_steps * cfg.train.batch_size / (time.perf_counter() - start)
    s = cfg.sample
    start = time.perf_counter()
    batch = min(s.batch_size, args.sample_n)
    if k.name == "generate":
        generate(model, cfg, args.sample_n, seed=0, sampler=s.sampler, steps=s.steps, eta=s.eta, batch_size=batch,
                 device=device, progress=False)
        what = f"{s.sampler} x{s.steps}"
    else:
        digits = torch.zeros(args.sample_n, 28, 28, dtype=torch.uint8)
        inpainting.complete(model, cfg, digits, masks.make(k.mask, args.sample_n, size=k.mask_size),
                            0, batch_size=batch, device=device, progress=False)
        what = "one pass" if k.name == "complete" else f"inpainting DDIM x{s.steps}, dc_repeats {s.dc_repeats}"
    sample_rate = args.sample_n / (time.perf_counter() - start)
    if k.name == "generate":  # a guided step evaluates the network on a doubled batch
        per_image = evaluations(s.sampler, s.steps) * (2 if cfg.model.num_classes and s.guidance else 1)
        what += f" ({sample_rate * per_image:.0f} denoiser evaluations/s)"
    print(f"config={args.config} params={n_params / 1e6:.2f}M device={device} threads={torch.get_num_threads()} "
          f"forward={forward_flops(model, cfg, device) / 1e6:.0f} MFLOP/image")
    print(f"train: {train_rate:.1f} images/s (batch {cfg.train.batch_size})")
    print(f"sample: {sample_rate:.2f} images/s with {what} (batch {batch})")


if __name__ == "__main__":
    main()
