"""Typed run configuration: YAML -> dataclasses, `section.key=value` overrides, validation.

Every key a run uses lives here, with its default. Unknown keys and values of the wrong type
are errors that name the key, the file and the closest valid key.
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from diffusion.process import LEVEL_SAMPLINGS, TARGETS, WEIGHTINGS
from diffusion.samplers import SAMPLERS, SIGMAS, SPACINGS
from diffusion.schedule import SCHEDULES
from dataio import masks
from engine.errors import UserError
from engine.inpainting import TASKS
from models.model import REGISTRY


@dataclass
class ModelConfig:
    name: str = "unet"  # a key of models.model.REGISTRY: unet | transformer | completion | mlp
    channels: int = 64  # width of the first UNet level; completion: hidden channels
    channel_mult: list[int] = field(default_factory=lambda: [1, 2, 2])  # per level; 28 -> 14 -> 7
    num_res_blocks: int = 2  # residual blocks per level
    attn_levels: list[int] = field(default_factory=lambda: [2])  # level indices with self-attention
    num_heads: int = 4  # attention heads (both models)
    dropout: float = 0.1  # both models
    patch_size: int = 4  # transformer: p x p patches; must divide 28
    width: int = 192  # transformer: token width; mlp: hidden units
    depth: int = 6  # transformer: blocks; completion: gated layers; mlp: residual blocks
    pos_embed: str = "sincos"  # transformer: sincos (fixed) | learned
    num_classes: int = 0  # > 0: class-conditional (10 for MNIST digits), for classifier-free guidance


@dataclass
class DiffusionConfig:
    timesteps: int = 1000  # T: training noise levels t = 1..T
    schedule: str = "linear"  # linear | cosine | sigmoid
    beta_start: float = 1e-4  # linear schedule only
    beta_end: float = 0.02  # linear schedule only
    prediction: str = "eps"  # what the network predicts: eps | x0 | v
    zero_terminal_snr: bool = False  # rescale so alpha_bar_T = 0 (Lin et al. 2024); needs v or x0
    loss_weighting: str = "uniform"  # uniform | min_snr | p2 (see diffusion/process.py:loss_weight)
    min_snr_gamma: float = 5.0
    p2_k: float = 1.0
    p2_gamma: float = 1.0
    level_sampling: str = "uniform"  # training levels: uniform | lognormal (EDM's log sigma ~ N(p_mean, p_std^2))
    p_mean: float = -1.2  # lognormal level sampling: mean of log sigma (Karras et al. 2022)
    p_std: float = 1.2  # lognormal level sampling: std of log sigma
    self_cond: bool = False  # self-conditioning (Chen et al. 2022): feed the previous x0 estimate back in


@dataclass
class TrainConfig:
    steps: int = 20000  # optimizer steps
    batch_size: int = 128  # images per optimizer step (split over grad_accum micro-batches)
    grad_accum: int = 1
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 500  # linear lr warmup
    lr_schedule: str = "cosine"  # cosine | constant (after warmup)
    clip_grad: float = 1.0  # max grad norm; 0 disables
    ema_decay: float = 0.9999
    ema_warmup: bool = True  # decay_t = min(ema_decay, (1 + t) / (10 + t))
    ema_every: int = 1  # update the EMA every k steps
    seed: int = 0  # one seed for weights, data order, noise and dropout
    device: str = "auto"  # auto (cuda > mps > cpu) | cpu | cuda | mps
    bf16: bool = False  # bf16 autocast of the training steps (CUDA, and CPUs: fast where they have AVX512-BF16/AMX)
    tf32: bool = True  # CUDA: TF32 matmuls and convolutions
    channels_last: bool = True  # images in NHWC memory layout (faster convolutions)
    compile: bool = False  # torch.compile the network for the training steps (checkpoints keep the plain module)
    data_on_device: bool = True  # hold the uint8 training set on the training device (no host copy per batch)
    fused_adam: bool = True  # CUDA: AdamW's fused kernel (elsewhere its multi-tensor version)
    label_dropout: float = 0.1  # class-conditional models: share of labels replaced by "no label"
    log_every: int = 50
    ckpt_every: int = 1000
    sample_every: int = 2000  # EMA sample grid; 0 disables
    eval_every: int = 0  # FID of eval_samples EMA samples (sample.* settings) into log.tsv every k steps; 0 disables
    eval_samples: int = 1000  # samples per training-time FID (fewer than 5,000: biased upwards, for curves only)


@dataclass
class DataConfig:
    name: str = "mnist"  # mnist | folder (seed 002's occluded/original image pairs; task.name: complete) | moons (2D)
    root: str = "data"  # torchvision MNIST root (files under ROOT/MNIST/raw)
    download: bool = True
    subset: int = 0  # train on the first N training images; 0 = all
    occluded_dir: str = "data/pairs/occluded_images"  # folder: occluded_NAME images
    original_dir: str = "data/pairs/original_images"  # folder: NAME images
    image_size: int = 28  # folder: images are resized to image_size x image_size
    channels: int = 1  # image channels: 1 (MNIST, grayscale) or 3 (RGB folders)
    mask_thresh: float = 0.05  # folder: the mask is where occluded and original differ by more (in [0, 1])
    n: int = 50000  # moons: training points (make_moons(n, noise, seed))
    noise: float = 0.05  # moons: std of the Gaussian noise on each coordinate (also of the evaluation target)
    seed: int = -1  # moons: seed of the training set; -1 = train.seed


@dataclass
class SampleConfig:
    sampler: str = "ddim"  # ddim | ddpm | dpmpp_2m | euler | heun
    sigmas: str = "karras"  # euler/heun: karras (Karras et al. 2022) | discrete (the training levels, as diffusers' EulerDiscreteScheduler)
    spacing: str = "trailing"  # trailing | uniform | leading (see diffusion/samplers.py:timestep_pairs)
    steps: int = 50
    eta: float = 0.0  # DDIM noise: 0 deterministic, 1 = DDPM posterior variance
    clip_x0: bool = True  # clamp the predicted clean image to [-1, 1] at every step
    batch_size: int = 500
    num_samples: int = 5000
    seed: int = 0
    grid_size: int = 64  # images in the training-time grids
    guidance: float = 0.0  # classifier-free guidance weight w: out = cond + w (cond - uncond); 0 = conditional
    digit: int = -1  # class-conditional models: -1 = balanced classes, 0-9 = that digit only
    # inpainting with diffusion (diffusion/inpaint.py); seed 000's names in parentheses
    dc_repeats: int = 1  # (dc_repeats) RePaint resampling: each block of jump_length steps is walked this often
    jump_length: int = 1  # RePaint jump length; 1 with dc_repeats 2 repeats every step once
    dc_fixed_z: bool = False  # (dc_fixed_z) noise the observation with one fixed draw at every level
    init_from_y: bool = False  # (init_from_y) start from the noised observation instead of pure noise
    mean_of: int = 1  # average this many completions per image (approaches the MSE-optimal posterior mean)
    mean_at: float = 0.0  # 0: average finished completions; in (0, 1): stop at level mean_at * T and average the clean estimates there


@dataclass
class TaskConfig:
    name: str = "generate"  # generate | inpaint | complete (see engine/inpainting.py)
    mask: str = "center"  # center | box | half | pixels | center8 | center12 (see dataio/masks.py)
    mask_size: int = 12  # center/box: side of the square hole (seed 000's center_box; the course task: 8)
    mask_fraction: float = 0.5  # pixels: share of hidden pixels
    coord_conv: bool = False  # (coord_conv) inpaint/complete: add x, y coordinate input channels
    hole_weight: float = 1.0  # (hole_weight) inpaint: loss weight of hole pixels; known pixels weigh 1
    loss_mse: float = 1.0  # complete: weight of the MSE on the hole (the regression baseline)
    loss_l1: float = 0.0  # complete: weight of the L1 on the hole
    loss_ssim: float = 0.0  # complete: weight of 1 - SSIM(composite, original)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    task: TaskConfig = field(default_factory=TaskConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


CHOICES = {
    "model.pos_embed": ("sincos", "learned"),
    "diffusion.schedule": SCHEDULES,
    "diffusion.prediction": TARGETS,
    "diffusion.loss_weighting": WEIGHTINGS,
    "diffusion.level_sampling": LEVEL_SAMPLINGS,
    "train.lr_schedule": ("cosine", "constant"),
    "train.device": ("auto", "cpu", "cuda", "mps"),
    "sample.sampler": SAMPLERS,
    "sample.spacing": SPACINGS,
    "task.name": TASKS,
    "data.name": ("mnist", "folder", "moons"),
    "sample.sigmas": SIGMAS,
    "task.mask": masks.MASKS,
}


SECTIONS = typing.get_type_hints(Config)  # section name -> dataclass


def _all_keys() -> list[str]:
    return [f"{sec}.{f.name}" for sec, cls in SECTIONS.items() for f in dataclasses.fields(cls)]


def _coerce(value, tp, key: str, where: str):
    """Check `value` (as parsed by YAML) against the field type `tp`; ints are accepted as floats."""
    origin = typing.get_origin(tp)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise UserError(f"{key} in {where} must be a list of {item_tp.__name__}, got {value!r}")
        return [_coerce(v, item_tp, key, where) for v in value]
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp is bool and not isinstance(value, bool) or tp is not bool and isinstance(value, bool):
        raise UserError(f"{key} in {where} must be {tp.__name__}, got {value!r}")
    if not isinstance(value, tp):
        raise UserError(f"{key} in {where} must be {tp.__name__}, got {value!r}")
    return value


def _unknown(key: str, where: str) -> UserError:
    close = difflib.get_close_matches(key, _all_keys(), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]}?" if close else f"; valid sections: {', '.join(SECTIONS)}"
    return UserError(f"unknown config key {key} in {where}{hint}")


def _set(cfg: Config, key: str, value, where: str) -> None:
    section, _, name = key.partition(".")
    sec = getattr(cfg, section) if section in SECTIONS else None
    if sec is None or name not in {f.name for f in dataclasses.fields(sec)}:
        raise _unknown(key, where)
    tp = typing.get_type_hints(type(sec))[name]
    setattr(sec, name, _coerce(value, tp, key, where))


def from_dict(data: dict, where: str = "<dict>") -> Config:
    """Build a validated Config from nested dicts, e.g. a parsed YAML file or a checkpoint."""
    cfg = Config()
    if not isinstance(data, dict):
        raise UserError(f"{where} must hold a mapping of sections (model, diffusion, train, data, sample)")
    for section, values in data.items():
        if section not in SECTIONS:
            raise _unknown(str(section), where)
        if not isinstance(values, dict):
            raise UserError(f"section {section} in {where} must be a mapping of keys")
        for name, value in values.items():
            _set(cfg, f"{section}.{name}", value, where)
    validate(cfg, where)
    return cfg


def load(path: str | Path, overrides: list[str] = ()) -> Config:
    """Read a YAML config, apply `section.key=value` overrides, validate."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} not found; pass --config configs/default.yaml or another file in configs/")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        at = f" (line {line + 1})" if line is not None else ""
        raise UserError(f"config file {path} is not valid YAML{at}; fix its syntax") from None
    cfg = from_dict(data, str(path))
    apply_overrides(cfg, overrides)
    return cfg


def apply_overrides(cfg: Config, overrides: list[str]) -> None:
    for item in overrides:
        key, eq, text = item.partition("=")
        if not eq or not key:
            raise UserError(f"override {item!r} must look like section.key=value, e.g. train.steps=200")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise UserError(f"override {item!r}: cannot parse the value {text!r}") from None
        _set(cfg, key.strip(), value, "the command line")
    validate(cfg, "the command line" if overrides else "the config")


def _require(ok: bool, key: str, rule: str, value, where: str) -> None:
    if not ok:
        raise UserError(f"{key}={value!r} in {where} is out of range: it must be {rule}")


def validate(cfg: Config, where: str) -> None:
    for key, choices in {**CHOICES, "model.name": tuple(REGISTRY)}.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value not in choices:
            raise UserError(f"{key}={value!r} in {where} is not valid; choose one of {', '.join(choices)}")
    m, d, t, s = cfg.model, cfg.diffusion, cfg.train, cfg.sample
    positive = {
        "model.channels": m.channels, "model.num_res_blocks": m.num_res_blocks, "model.num_heads": m.num_heads,
        "model.width": m.width, "model.depth": m.depth, "model.patch_size": m.patch_size,
        "diffusion.timesteps": d.timesteps, "train.steps": t.steps, "train.batch_size": t.batch_size,
        "train.grad_accum": t.grad_accum, "train.ema_every": t.ema_every, "train.log_every": t.log_every,
        "train.ckpt_every": t.ckpt_every, "sample.steps": s.steps, "sample.batch_size": s.batch_size,
        "sample.num_samples": s.num_samples, "sample.grid_size": s.grid_size, "sample.dc_repeats": s.dc_repeats,
        "sample.jump_length": s.jump_length, "sample.mean_of": s.mean_of,
    }
    for key, value in positive.items():
        _require(value >= 1, key, ">= 1", value, where)
    for key, value in {"data.subset": cfg.data.subset, "train.sample_every": t.sample_every,
                       "train.warmup_steps": t.warmup_steps, "train.eval_every": t.eval_every, "train.clip_grad": t.clip_grad,
                       "train.weight_decay": t.weight_decay, "sample.eta": s.eta}.items():
        _require(value >= 0, key, ">= 0", value, where)
    _require(t.lr > 0, "train.lr", "> 0", t.lr, where)
    _require(d.p_std > 0, "diffusion.p_std", "> 0", d.p_std, where)
    _require(t.eval_every == 0 or (cfg.task.name == "generate" and cfg.data.name == "mnist"), "train.eval_every",
             "0 unless task.name=generate on data.name=mnist (the FID compares digits)", t.eval_every, where)
    _require(t.eval_samples >= 2, "train.eval_samples", ">= 2 (FID needs a covariance)", t.eval_samples, where)
    _require(0 <= t.ema_decay < 1, "train.ema_decay", "in [0, 1)", t.ema_decay, where)
    _require(0 <= m.dropout < 1, "model.dropout", "in [0, 1)", m.dropout, where)
    _require(0 <= t.label_dropout < 1, "train.label_dropout", "in [0, 1)", t.label_dropout, where)
    _require(m.num_classes >= 0, "model.num_classes", ">= 0", m.num_classes, where)
    _require(-1 <= s.digit < max(m.num_classes, 10), "sample.digit", "-1 (balanced) or a digit 0-9", s.digit, where)
    _require(s.guidance >= 0, "sample.guidance", ">= 0", s.guidance, where)
    _require(0 <= s.mean_at < 1, "sample.mean_at", "in [0, 1)", s.mean_at, where)
    _require(s.mean_at == 0 or cfg.task.name == "inpaint", "sample.mean_at",
             "0 unless task.name=inpaint (only a model that sees the observation has the posterior mean as its "
             "clean estimate)", s.mean_at, where)
    _require(s.guidance == 0 or m.num_classes > 0, "sample.guidance",
             "0 for an unconditional model (guidance needs model.num_classes: 10)", s.guidance, where)
    _require(s.digit == -1 or m.num_classes > 0, "sample.digit",
             "-1 for an unconditional model (choosing a digit needs model.num_classes: 10)", s.digit, where)
    _require(len(m.channel_mult) >= 1 and all(c >= 1 for c in m.channel_mult), "model.channel_mult",
             "a non-empty list of positive ints", m.channel_mult, where)
    _require(all(0 <= a < len(m.channel_mult) for a in m.attn_levels), "model.attn_levels",
             f"level indices in 0..{len(m.channel_mult) - 1}", m.attn_levels, where)
    _require(28 % m.patch_size == 0, "model.patch_size", "a divisor of 28 (2, 4, 7, 14)", m.patch_size, where)
    _require(m.width % m.num_heads == 0 and m.width % 4 == 0, "model.width",
             "divisible by 4 and by model.num_heads", m.width, where)
    _require(t.batch_size % t.grad_accum == 0, "train.batch_size", "divisible by train.grad_accum", t.batch_size, where)
    _require(0 < d.beta_start < d.beta_end < 1, "diffusion.beta_start", "0 < beta_start < beta_end < 1",
             d.beta_start, where)
    _require(not (d.zero_terminal_snr and d.prediction == "eps"), "diffusion.zero_terminal_snr",
             "false with eps prediction (at alpha_bar_T = 0 eps says nothing about x0); use v or x0", True, where)
    _require(s.steps <= d.timesteps, "sample.steps", f"<= diffusion.timesteps ({d.timesteps})", s.steps, where)
    k = cfg.task
    try:
        masks.check(k.mask, k.mask_size, k.mask_fraction)
    except UserError as e:
        raise UserError(f"task.mask* in {where}: {e}") from None
    _require(k.hole_weight > 0, "task.hole_weight", "> 0", k.hole_weight, where)
    for key in ("loss_mse", "loss_l1", "loss_ssim"):
        _require(getattr(k, key) >= 0, f"task.{key}", ">= 0", getattr(k, key), where)
    _require(k.loss_mse + k.loss_l1 + k.loss_ssim > 0, "task.loss_mse", "> 0 when loss_l1 and loss_ssim are 0",
             k.loss_mse, where)
    _require(k.name == "generate" or m.num_classes == 0, "model.num_classes",
             f"0 for task.name={k.name} (class labels are for generation)", m.num_classes, where)
    dd = cfg.data
    _require(dd.channels in (1, 3), "data.channels", "1 or 3", dd.channels, where)
    _require(dd.name == "folder" or (dd.channels, dd.image_size) == (1, 28), "data.name",
             "folder for images other than 1 x 28 x 28 (MNIST is grayscale 28 x 28)", dd.name, where)
    _require(dd.name != "folder" or k.name == "complete", "data.name",
             "mnist unless task.name=complete (folder pairs train completion networks)", dd.name, where)
    moons = dd.name == "moons"
    _require(moons == (m.name == "mlp"), "model.name", "mlp for data.name=moons, and only then (2D points "
             "need the MLP; the other models take images)", m.name, where)
    _require(not moons or k.name == "generate", "task.name", "generate for data.name=moons", k.name, where)
    _require(not moons or not s.clip_x0, "sample.clip_x0", "false for data.name=moons (points are not images "
             "in [-1, 1])", s.clip_x0, where)
    _require(not moons or not d.self_cond, "diffusion.self_cond", "false for data.name=moons (its estimate is "
             "clamped to the image range [-1, 1])", d.self_cond, where)
    _require(dd.n >= 2 and dd.noise >= 0, "data.n", ">= 2, with data.noise >= 0", (dd.n, dd.noise), where)
    _require(dd.image_size >= 8, "data.image_size", ">= 8", dd.image_size, where)
    _require(0 <= dd.mask_thresh < 1, "data.mask_thresh", "in [0, 1)", dd.mask_thresh, where)
    _require(m.name != "completion" or k.name == "complete", "model.name",
             "used with task.name=complete (the completion network has no time input)", m.name, where)
    _require(k.name != "complete" or not d.self_cond, "diffusion.self_cond",
             "false for task.name=complete (there is no diffusion to self-condition)", d.self_cond, where)


def save_yaml(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
