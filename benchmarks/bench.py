"""This project's UNet and samplers against diffusers at equal parameters, on this machine.

    python benchmarks/bench.py [--config configs/default.yaml] [--train_steps 3] [--sample_n 250] [--repeats 3] [--fast_paths]

Prints one table (with --fast_paths a second). Training images/s (same batch, AdamW, MSE on eps)
and sampling images/s (the config's sampler and steps) of this project's UNet against two diffusers
UNet2DModels whose parameter counts are within 10% of it:
  - the DDPM layout, after DDPM's CIFAR-10 UNet (Ho et al. 2020) on three levels: widths (w, 2w, 2w),
    two ResNet blocks per level, attention at 7 x 7, with the w whose parameter count is closest;
  - this project's layout: the config's widths, blocks per level and attention levels, so that
    the two implementations do the same convolutions.
The networks are unconditional (model.num_classes=0): these diffusers layouts take no labels.
Then this project's DDIM loop against a loop of diffusers' DDIMScheduler (what DDIMPipeline runs)
driving the same network. Each with its ratio and the peak memory of the measurement (RSS on CPU,
max allocated on CUDA). A shared machine's speed drifts, so the contenders are timed in turns,
`--repeats` times, and each figure is the median of its turns. diffusers is a benchmark-only
dependency (requirements-dev.txt); the project never imports it.
"""
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from diffusion import samplers  # noqa: E402
from diffusion.process import config_loss  # noqa: E402
from diffusion.schedule import from_config  # noqa: E402
from engine import config  # noqa: E402
from tasks import for_config  # noqa: E402
from common.errors import ArgumentParser, UserError, exit_on_user_error  # noqa: E402
from common.runtime import pick_device  # noqa: E402
from models.model import num_parameters  # noqa: E402
from tasks import build_network  # noqa: E402


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


def diffusers_unet(widths, blocks: int, attn_levels, dropout: float):
    from diffusers import UNet2DModel

    down = tuple("AttnDownBlock2D" if i in attn_levels else "DownBlock2D" for i in range(len(widths)))
    up = tuple("AttnUpBlock2D" if i in attn_levels else "UpBlock2D" for i in reversed(range(len(widths))))
    groups = next(g for g in (8, 4, 2, 1) if all(w % g == 0 for w in widths))
    return UNet2DModel(sample_size=28, in_channels=1, out_channels=1, layers_per_block=blocks, dropout=dropout,
                       block_out_channels=tuple(widths), norm_num_groups=groups, down_block_types=down,
                       up_block_types=up)


def ddpm_layout(target: int, dropout: float):
    """diffusers' UNet2DModel in the DDPM layout, the width whose parameter count is closest to
    target (it must be within 10%)."""
    build = lambda w: diffusers_unet((w, 2 * w, 2 * w), 2, (2,), dropout)
    counts = {}
    for w in range(8, 257):  # the count grows with w
        counts[w] = num_parameters(build(w))
        if counts[w] > target:
            break
    width = min(counts, key=lambda w: abs(counts[w] - target))
    if abs(counts[width] - target) > 0.1 * target:
        raise UserError(f"no diffusers UNet2DModel width matches {target} parameters within 10%")
    return build(width)


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, n: int, device) -> tuple[float, float]:
    """(n / seconds of fn(), peak MiB)."""
    with Peak(device) as peak:
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
    return n / (time.perf_counter() - start), peak.mib


def in_turns(contenders: list, repeats: int) -> list[list[tuple[float, float]]]:
    """Run each `() -> (rate, MiB)` once per turn, `repeats` turns; per contender its turns."""
    runs = [[c() for c in contenders] for _ in range(repeats)]
    return [[r[i] for r in runs] for i in range(len(contenders))]


def row(what: str, ours: list, theirs: list) -> str:
    """A table row: median rates, largest peaks, the ratio of the medians and the range of the
    turn-by-turn ratios (each turn times the two contenders one after the other)."""
    a, b = (statistics.median(rate for rate, _ in turns) for turns in (ours, theirs))
    ratios = [x / y for (x, _), (y, _) in zip(ours, theirs)]
    return (f"| {what} | {a:.2f} | {max(m for _, m in ours):.0f} | {b:.2f} | {max(m for _, m in theirs):.0f} | "
            f"{a / b:.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) |")


def trainer(forward, model, batch: int, steps: int, device):
    """A contender: one untimed step (allocation, kernel choice), then `steps` timed AdamW steps."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, **({"fused": True} if device.type == "cuda" else {"foreach": True}))
    x0 = (torch.rand(batch, 1, 28, 28, device=device) * 2 - 1).contiguous(memory_format=torch.channels_last)

    def step():
        loss = forward(x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def run():
        model.train()
        step()
        return timed(lambda: [step() for _ in range(steps)], steps * batch, device)
    return run


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
    p.add_argument("--sample_n", type=int, default=250, help="images per sampling measurement (one batch)")
    p.add_argument("--repeats", type=int, default=3, help="turns per measurement; figures are medians")
    p.add_argument("--batch_size", type=int, help="training batch (default: the config's)")
    p.add_argument("--fast_paths", action="store_true", help="also time channels_last off, torch.compile (and bf16 on CUDA)")
    args = p.parse_args(argv)
    if min(args.train_steps, args.sample_n, args.repeats) < 1:
        raise UserError("--train_steps, --sample_n and --repeats must be at least 1")
    # unconditional, so unguided: diffusers' layouts take no labels
    cfg = config.load(args.config, ["model.num_classes=0", "data.labels=digits", "sample.guidance=0", "sample.digit=-1"])
    if not for_config(cfg).makes_digits or cfg.model.name != "unet":
        raise UserError(f"{args.config} is not an MNIST generation config with model.name unet; the comparison is for the UNet")
    device = pick_device(cfg.train.device)
    m = cfg.model
    our_widths = [m.channels * k for k in m.channel_mult]
    torch.manual_seed(0)
    ours = build_network(cfg).to(device, memory_format=torch.channels_last)
    others = {"DDPM layout": ddpm_layout(num_parameters(ours), m.dropout),
              "same layout": diffusers_unet(our_widths, m.num_res_blocks, m.attn_levels, m.dropout)}
    for net in others.values():
        net.to(device, memory_format=torch.channels_last)
    sched = from_config(cfg.diffusion)
    batch, s, n = args.batch_size or cfg.train.batch_size, cfg.sample, args.sample_n
    widths = lambda net: list(net.config.block_out_channels)
    print(f"device {device}, {torch.get_num_threads()} threads; batch {batch}; sampling {s.sampler} x{s.steps}, "
          f"{n} images; median of {args.repeats} turns")
    print(f"parameters: this project {num_parameters(ours):,} (widths {our_widths}, "
          f"blocks per level {m.num_res_blocks}); "
          + "; ".join(f"diffusers {k} {num_parameters(v):,} (widths {widths(v)}, "
                      f"blocks per level {v.config.layers_per_block})" for k, v in others.items()))

    def call(net):  # diffusers counts levels from 0, this project from 1
        return net if net is ours else lambda xt, t: net(xt, t - 1).sample

    def sampler(net):
        return lambda: timed(lambda: samplers.sample(
            call(net), sched, (n, 1, 28, 28), torch.Generator().manual_seed(0), sampler=s.sampler, steps=s.steps,
            eta=s.eta, spacing=s.spacing, prediction=cfg.diffusion.prediction, device=device), n, device)

    nets = [ours, *others.values()]
    train = in_turns([trainer(lambda x, net=net: config_loss(call(net), sched, x, cfg.diffusion), net, batch,
                              args.train_steps, device) for net in nets], args.repeats)
    for net in nets:
        net.eval()
    with torch.inference_mode():
        sample = in_turns([sampler(net) for net in nets], args.repeats)
    loop = in_turns([
        lambda: timed(lambda: samplers.sample(ours, sched, (n, 1, 28, 28), torch.Generator().manual_seed(0),
                                              sampler="ddim", steps=s.steps, device=device), n, device),
        lambda: timed(lambda: diffusers_ddim(lambda x, t: ours(x, t.float().expand(len(x)) + 1), n, s.steps, device),
                      n, device)], args.repeats)

    print("| measurement | this project | peak MiB | diffusers | peak MiB | ratio (turns) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for what, (mine, *theirs) in ((f"training, batch {batch} (images/s)", train),
                                  (f"sampling, {s.sampler} x{s.steps} (images/s)", sample)):
        for name, turns in zip(others, theirs):
            print(row(f"{what}, diffusers in the {name}", mine, turns))
    print(row(f"DDIM x{s.steps} loop on this project's network, against DDIMScheduler's (images/s)", *loop))
    if args.fast_paths:
        fast_paths(cfg, sched, batch, args.train_steps, args.repeats, device)
    return 0


def fast_paths(cfg, sched, batch: int, steps: int, repeats: int, device) -> None:
    """Training images/s of this project's UNet with one fast path switched from its default."""
    def variant(channels_last: bool = True, compile: bool = False):
        torch.manual_seed(0)
        model = build_network(cfg).to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        net = torch.compile(model) if compile else model
        layout = (lambda x: x) if channels_last else (lambda x: x.contiguous())
        return trainer(lambda x: config_loss(net, sched, layout(x), cfg.diffusion), model, batch, steps, device)

    names = ["defaults (channels_last, foreach/fused AdamW)", "train.channels_last: false",
             "train.compile: true (the compiling step not timed)"]
    contenders = [variant(), variant(channels_last=False), variant(compile=True)]
    if device.type == "cuda":
        def bf16(run=variant()):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return run()
        names.append("train.bf16: true")
        contenders.append(bf16)
    turns = in_turns(contenders, repeats)
    print("\n| training variant (this project's UNet) | images/s | peak MiB | vs default |")
    print("| --- | --- | --- | --- |")
    base = statistics.median(rate for rate, _ in turns[0])
    for name, runs in zip(names, turns):
        rate = statistics.median(r for r, _ in runs)
        print(f"| {name} | {rate:.2f} | {max(m for _, m in runs):.0f} | {rate / base:.2f}x |")


if __name__ == "__main__":
    sys.exit(main())
