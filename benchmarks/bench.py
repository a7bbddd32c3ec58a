"""This project's UNet and samplers against diffusers at equal parameters, on this machine.

    python benchmarks/bench.py [--config configs/default.yaml] [--train_steps 3] [--sample_n 16] [--fast_paths]

Prints one table: training images/s (same batch, AdamW, MSE on eps) and sampling images/s (the
config's sampler and steps) for this project's UNet and for a diffusers UNet2DModel whose
parameter count is within 10% of it; then this project's DDIM loop against a loop of diffusers'
DDIMScheduler (what DDIMPipeline runs) driving the same network. Each with its ratio and the peak
memory of the measurement (RSS on CPU, max allocated on CUDA). diffusers is a benchmark-only
dependency (requirements-dev.txt); the project never imports it.
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from diffusion import samplers  # noqa: E402
from diffusion.process import config_loss  # noqa: E402
from diffusion.schedule import from_config  # noqa: E402
from engine import config  # noqa: E402
from engine.errors import ArgumentParser, UserError, exit_on_user_error  # noqa: E402
from engine.generation import pick_device  # noqa: E402
from models.model import build_model  # noqa: E402


class Peak:
    """Peak memory of a block: resident set size on CPU (Linux: VmHWM after resetting it), max
    allocated bytes on CUDA. In MiB."""

    def __init__(self, device: torch.device):
        self.device, self.mib = device, float("nan")

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            try:
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:
                pass
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.mib = torch.cuda.max_memory_allocated(self.device) / 2 ** 20
        else:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.mib = int(line.split()[1]) / 1024


def params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def diffusers_unet(target: int):
    """A diffusers UNet2DModel for 28 x 28 x 1 with the same layout as ours (three levels, two
    ResNet blocks each, attention at 7 x 7), widened until its parameters are within 10% of target."""
    from diffusers import UNet2DModel

    for width in range(16, 257, 8):
        model = UNet2DModel(sample_size=28, in_channels=1, out_channels=1, layers_per_block=2,
                            block_out_channels=(width, 2 * width, 2 * width), norm_num_groups=8,
                            down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                            up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"))
        if abs(params(model) - target) <= 0.1 * target:
            return model
        if params(model) > target:
            break
    raise UserError(f"no diffusers UNet2DModel width matches {target} parameters within 10%")


def train_rate(forward, model, batch: int, steps: int, device) -> tuple[float, float]:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, **({"fused": True} if device.type == "cuda" else {"foreach": True}))
    x0 = (torch.rand(batch, 1, 28, 28, device=device) * 2 - 1).contiguous(memory_format=torch.channels_last)
    model.train()
    with Peak(device) as peak:
        for i in range(steps + 1):
            if i == 1:  # the first step (allocation, kernel choice) is not timed
                sync(device)
                start = time.perf_counter()
            loss = forward(x0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync(device)
    return steps * batch / (time.perf_counter() - start), peak.mib


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, n: int, device) -> tuple[float, float]:
    with Peak(device) as peak:
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
    return n / (time.perf_counter() - start), peak.mib


@torch.inference_mode()
def diffusers_ddim(net, n: int, steps: int, device, eta: float = 0.0):
    """DDIMPipeline's loop: scheduler timesteps, net(x, t), scheduler.step (trailing spacing,
    as this project's default; levels offset by one, see tests/test_samplers_vs_diffusers.py)."""
    from diffusers import DDIMScheduler

    sched = DDIMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                          timestep_spacing="trailing", clip_sample=True, set_alpha_to_one=True)
    sched.set_timesteps(steps)
    x = torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(0)).to(device)
    for t in sched.timesteps:
        x = sched.step(net(x, t.to(device)), t, x, eta=eta).prev_sample
    return x


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/default.yaml")
    p.add_argument("--train_steps", type=int, default=3)
    p.add_argument("--sample_n", type=int, default=16)
    p.add_argument("--batch_size", type=int, help="training batch (default: the config's)")
    p.add_argument("--fast_paths", action="store_true", help="also time channels_last off, torch.compile (and bf16 on CUDA)")
    args = p.parse_args(argv)
    cfg = config.load(args.config)
    if cfg.task.name != "generate" or cfg.data.name != "mnist":
        raise UserError(f"{args.config} is not an MNIST generation config; the comparison is for the UNet")
    device = pick_device(cfg.train.device)
    torch.manual_seed(0)
    ours = build_model(cfg).to(device, memory_format=torch.channels_last)
    theirs = diffusers_unet(params(ours)).to(device, memory_format=torch.channels_last)
    sched = from_config(cfg.diffusion)
    batch, s = args.batch_size or cfg.train.batch_size, cfg.sample
    print(f"device {device}, {torch.get_num_threads()} threads; ours {params(ours) / 1e6:.2f}M parameters, "
          f"diffusers UNet2DModel {params(theirs) / 1e6:.2f}M; batch {batch}; sampling {s.sampler} x{s.steps}")

    rows = []
    t_ours = train_rate(lambda x: config_loss(ours, sched, x, cfg.diffusion), ours, batch, args.train_steps, device)
    t_theirs = train_rate(lambda x: config_loss(lambda xt, t: theirs(xt, t - 1).sample, sched, x, cfg.diffusion),
                          theirs, batch, args.train_steps, device)
    rows.append(("training (images/s)", t_ours, t_theirs))
    ours.eval()
    theirs.eval()
    sample = lambda net: samplers.sample(net, sched, (args.sample_n, 1, 28, 28), torch.Generator().manual_seed(0),
                                         sampler=s.sampler, steps=s.steps, eta=s.eta, spacing=s.spacing,
                                         prediction=cfg.diffusion.prediction, device=device)
    rows.append((f"sampling, {s.sampler} x{s.steps} (images/s)",
                 timed(lambda: sample(lambda x, t: ours(x, t)), args.sample_n, device),
                 timed(lambda: sample(lambda x, t: theirs(x, t - 1).sample), args.sample_n, device)))
    rows.append((f"DDIM x{s.steps} loop, our network (images/s)",
                 timed(lambda: samplers.sample(lambda x, t: ours(x, t), sched, (args.sample_n, 1, 28, 28),
                                               torch.Generator().manual_seed(0), sampler="ddim", steps=s.steps,
                                               device=device), args.sample_n, device),
                 timed(lambda: diffusers_ddim(lambda x, t: ours(x, t.float().expand(len(x)) + 1), args.sample_n,
                                              s.steps, device), args.sample_n, device)))
    print("| measurement | this project | peak MiB | diffusers | peak MiB | ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    for what, (a, mem_a), (b, mem_b) in rows:
        print(f"| {what} | {a:.2f} | {mem_a:.0f} | {b:.2f} | {mem_b:.0f} | {a / b:.2f}x |")
    if args.fast_paths:
        fast_paths(cfg, sched, batch, args.train_steps, device, t_ours)
    return 0


def fast_paths(cfg, sched, batch: int, steps: int, device, default) -> None:
    """Training images/s of this project's UNet with one fast path switched from its default."""
    print("\n| training variant (this project's UNet) | images/s | peak MiB | vs default |")
    print("| --- | --- | --- | --- |")
    print(f"| defaults (channels_last, foreach/fused AdamW) | {default[0]:.2f} | {default[1]:.0f} | 1.00x |")
    torch.manual_seed(0)
    plain = build_model(cfg).to(device)
    rate = train_rate(lambda x: config_loss(plain, sched, x.contiguous(), cfg.diffusion), plain, batch, steps, device)
    print(f"| train.channels_last: false | {rate[0]:.2f} | {rate[1]:.0f} | {rate[0] / default[0]:.2f}x |")
    torch.manual_seed(0)
    model = build_model(cfg).to(device, memory_format=torch.channels_last)
    compiled = torch.compile(model)
    rate = train_rate(lambda x: config_loss(compiled, sched, x, cfg.diffusion), model, batch, steps, device)
    print(f"| train.compile: true (first step, the compilation, not timed) | {rate[0]:.2f} | {rate[1]:.0f} | "
          f"{rate[0] / default[0]:.2f}x |")
    if device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.bfloat16):
            rate = train_rate(lambda x: config_loss(model, sched, x, cfg.diffusion), model, batch, steps, device)
        print(f"| train.bf16: true | {rate[0]:.2f} | {rate[1]:.0f} | {rate[0] / default[0]:.2f}x |")


if __name__ == "__main__":
    sys.exit(main())
