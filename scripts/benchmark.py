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
from diffusion.schedule import from_config  # noqa: E402
from diffusion.samplers import evaluations  # noqa: E402
from engine import config  # noqa: E402
from common.errors import ArgumentParser, exit_on_user_error  # noqa: E402
from tasks import completion  # noqa: E402
from tasks.generation import generate  # noqa: E402
from common.runtime import keyed_generator, pick_device  # noqa: E402
from tasks.base import TrainData  # noqa: E402
from models.model import num_parameters  # noqa: E402
from tasks import build_network, for_config  # noqa: E402


def forward_flops(model, cfg, device) -> int:
    """FLOPs (2 per multiply-add) of one network call on one image, by torch.utils.flop_counter."""
    x = torch.zeros(1, for_config(cfg).inputs(cfg)["in_channels"], cfg.data.image_size, cfg.data.image_size, device=device)
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
    model = build_network(cfg).to(device, memory_format=torch.channels_last)
    n_params = num_parameters(model)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr)
    sched = from_config(cfg.diffusion)
    task, b = for_config(cfg), cfg.train.batch_size
    # random digits and labels: the speed of a step does not depend on what the pixels hold
    data = TrainData(torch.randint(0, 256, (b, 28, 28), dtype=torch.uint8), torch.randint(0, 10, (b,)))
    for i in range(args.train_steps + 3):
        if i == 3:  # warm-up steps excluded
            start = time.perf_counter()
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cfg.train.bf16):  # as the trainer
            loss = task.loss(model, cfg, sched, data, torch.arange(b), keyed_generator(0, i), slice(None), device,
                             channels_last=True)[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    train_rate = args.train_steps * b / (time.perf_counter() - start)
    s, k = cfg.sample, cfg.task
    start = time.perf_counter()
    batch = min(s.batch_size, args.sample_n)
    if task.makes_digits:
        generate(model, cfg, args.sample_n, seed=0, sampler=s.sampler, steps=s.steps, eta=s.eta, batch_size=batch,
                 device=device, progress=False, guide=model if s.autoguidance else None)  # a guide costs what the model does
        what = f"{s.sampler} x{s.steps}"
    else:
        digits = torch.zeros(args.sample_n, 28, 28, dtype=torch.uint8)
        completion.complete(model, cfg, digits, masks.make(k.mask, args.sample_n, size=k.mask_size),
                            0, batch_size=batch, device=device, progress=False)
        what = task.method_name(cfg)
    sample_rate = args.sample_n / (time.perf_counter() - start)
    if task.makes_digits:  # each guidance (classifier-free, auto) adds a network call per step
        per_image = evaluations(s.sampler, s.steps) * (1 + bool(cfg.model.num_classes and s.guidance) + bool(s.autoguidance))
        what += f" ({sample_rate * per_image:.0f} denoiser evaluations/s)"
    print(f"config={args.config} params={n_params / 1e6:.2f}M device={device} threads={torch.get_num_threads()} "
          f"forward={forward_flops(model, cfg, device) / 1e6:.0f} MFLOP/image")
    print(f"train: {train_rate:.1f} images/s (batch {cfg.train.batch_size})")
    print(f"sample: {sample_rate:.2f} images/s with {what} (batch {batch})")


if __name__ == "__main__":
    main()
