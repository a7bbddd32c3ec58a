"""Typed run configuration: YAML -> dataclasses, `section.key=value` overrides, the config reference.

Every key a run uses lives here, with its default and a help string (`python -m engine.config --markdown`
prints docs/config.md from them). Unknown keys and values of the wrong type are errors that name the key,
the file and the closest valid key; engine/config_rules.py holds the value rules.
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from engine.config_rules import PAIRS, RANGES, choices, validate
from common.errors import UserError


def opt(default, help: str):
    """A config field: its default and its one-line help, which docs/config.md prints (`python -m engine.config
    --markdown`). Lists get a fresh copy per instance."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class ModelConfig:
    name: str = opt("unet", "the network, a key of `models/model.py:REGISTRY`")
    channels: int = opt(64, "width of the first UNet level; completion: hidden channels; convmlp: first conv stage")
    channel_mult: list[int] = opt([1, 2, 2], "UNet width multiplier per level (28 -> 14 -> 7)")
    num_res_blocks: int = opt(2, "UNet residual blocks per level")
    attn_levels: list[int] = opt([2], "UNet levels (0-based) with self-attention; the middle block always has one")
    num_heads: int = opt(4, "attention heads (UNet and transformer)")
    dropout: float = opt(0.1, "dropout inside residual blocks and transformer MLPs, in [0, 1)")
    patch_size: int = opt(4, "transformer: p x p patches; must divide 28")
    width: int = opt(192, "transformer: token width (divisible by 4 and num_heads); mlp, convmlp: hidden units")
    depth: int = opt(6, "transformer: blocks; completion: gated layers; mlp: residual blocks; convmlp: hidden layers")
    pos_embed: str = opt("sincos", "transformer: fixed 2D sin-cos or learned position embedding")
    num_classes: int = opt(0, "10: class-conditional (label embedding plus a 'no label' token for classifier-free "
                              "guidance); 0: unconditional")
    options: dict = opt({}, "a network of your own: any settings its builder reads (cfg.model.options), e.g. "
                            "{width: 32, blocks: 3}; saved with the checkpoint; override one with model.options.KEY=VALUE")


@dataclass
class DiffusionConfig:
    timesteps: int = opt(1000, "T: training noise levels t = 1..T")
    schedule: str = opt("linear", "linear (Ho et al. 2020), cosine (Nichol & Dhariwal 2021) or sigmoid (Chen 2023)")
    beta_start: float = opt(1e-4, "linear schedule: first beta")
    beta_end: float = opt(0.02, "linear schedule: last beta")
    prediction: str = opt("eps", "what the network predicts")
    zero_terminal_snr: bool = opt(False, "rescale the schedule so alpha_bar_T = 0 (Lin et al. 2024); needs v or x0")
    loss_weighting: str = opt("uniform", "per-level loss weight, the same meaning for every target "
                                         "(`diffusion/process.py:loss_weight`): min_snr (Hang et al. 2023), p2 "
                                         "(Choi et al. 2022)")
    min_snr_gamma: float = opt(5.0, "min_snr weighting: the SNR cap gamma")
    p2_k: float = opt(1.0, "p2 weighting: k")
    p2_gamma: float = opt(1.0, "p2 weighting: gamma")
    level_sampling: str = opt("uniform", "training levels: uniform t ~ U{1..T} (Ho et al.), or lognormal: log sigma ~ "
                                         "N(p_mean, p_std^2), EDM's (Karras et al. 2022), rounded to the nearest level")
    p_mean: float = opt(-1.2, "lognormal level sampling: mean of log sigma, sigma = sqrt((1 - alpha_bar) / alpha_bar)")
    p_std: float = opt(1.2, "lognormal level sampling: std of log sigma (> 0)")
    level_uniform: float = opt(0.0, "lognormal level sampling: share of levels drawn from U{1..T} instead, so the "
                                    "noisiest levels the samplers start from are trained too; in [0, 1]")
    self_cond: bool = opt(False, "self-conditioning (Chen et al. 2022): half the batches train on the model's own "
                                 "x0 estimate, and samplers feed it back")


@dataclass
class TrainConfig:
    steps: int = opt(20000, "optimizer steps")
    batch_size: int = opt(128, "images per optimizer step (split over grad_accum micro-batches and over processes)")
    grad_accum: int = opt(1, "micro-batches per step (gradient accumulation)")
    lr: float = opt(2e-4, "AdamW peak learning rate")
    weight_decay: float = opt(0.0, "AdamW weight decay")
    warmup_steps: int = opt(500, "linear lr warmup steps")
    lr_schedule: str = opt("cosine", "after the warmup: cosine decay to 0, or constant")
    clip_grad: float = opt(1.0, "max gradient norm; 0 disables clipping")
    ema_decay: float = opt(0.9999, "EMA decay, in [0, 1)")
    ema_warmup: bool = opt(True, "EMA decay min(ema_decay, (1 + n) / (10 + n)) after n updates (it reaches "
                                 "ema_decay only after (10 ema_decay - 1) / (1 - ema_decay) updates: 8,990 for 0.999)")
    ema_sigma_rel: float = opt(0.0, "> 0: EDM2's power-function EMA instead (Karras et al. 2024): the average spans "
                                    "this share of the training so far (0.05-0.15), at any run length; replaces "
                                    "ema_decay and ema_warmup")
    ema_every: int = opt(1, "update the EMA every k steps")
    guide_step: int = opt(0, "> 0: keep the EMA weights of this step in the checkpoint as the guide network that "
                             "sample.autoguidance steers away from (an early, worse version of the same network); "
                             "0: none")
    seed: int = opt(0, "the one seed: weights, data order, noise, dropout, label dropout")
    device: str = opt("auto", "auto picks cuda > mps > cpu")
    bf16: bool = opt(False, "bf16 autocast of the training steps, on CUDA and on CPUs (pays on CPUs only where "
                            "they have AVX512-BF16 or AMX; elsewhere it is several times slower)")
    tf32: bool = opt(True, "CUDA: TF32 matmuls and convolutions")
    channels_last: bool = opt(True, "NHWC memory layout for the network and the batches (faster convolutions)")
    compile: bool = opt(False, "torch.compile the network for the training steps (checkpoints keep the plain module)")
    data_on_device: bool = opt(True, "hold the uint8 training set on the training device; batches are gathered there")
    fused_adam: bool = opt(True, "CUDA: AdamW's fused kernel (elsewhere its multi-tensor foreach version)")
    label_dropout: float = opt(0.1, "class-conditional models: share of labels replaced by 'no label', in [0, 1)")
    log_every: int = opt(50, "a log.tsv row every k steps (and at the last)")
    ckpt_every: int = opt(1000, "save last.pt every k steps (also on Ctrl-C / SIGTERM)")
    keep_every: int = opt(0, "also keep a checkpoint of every k-th step in checkpoints/NAME/snapshots/ (for learning "
                             "curves: scripts/learning_curve.py --snapshots); 0: none")
    sample_every: int = opt(2000, "an EMA sample grid (inpainting: a panel) every k steps and at the last; 0 disables")
    eval_every: int = opt(0, "FID of eval_samples EMA samples (sample.* settings) in log.tsv every k steps and at "
                             "the last; digit generation only; 0 disables")
    eval_samples: int = opt(1000, "samples per training-time FID (fewer than 5,000 bias it upwards: for curves, "
                                  "not ranks)")
    val_every: int = opt(0, "inpaint/complete with data.val_size: hole MSE of the EMA model's completions of the "
                            "validation digits (task.mask, sample.* and inpaint.* settings) in log.tsv every k steps and at the last; "
                            "checkpoints/NAME/best.pt keeps the best; 0 disables")


@dataclass
class DataConfig:
    name: str = opt("mnist", "mnist; folder: seed 002's occluded/original image pairs (task.name: complete); "
                             "moons: 2D points (docs/moons.md)")
    root: str = opt("data", "torchvision MNIST root (files under ROOT/MNIST/raw)")
    download: bool = opt(True, "download MNIST when missing")
    subset: int = opt(0, "train on the first N training images (after val_size are held out); 0 = all")
    labels: str = opt("digits", "what a class-conditional model (model.num_classes > 0) is conditioned on: digits "
                                "(MNIST's labels); kmeans: model.num_classes equal-size k-means clusters of the "
                                "training pixels, no human label used (dataio/clusters.py, self-guided diffusion); "
                                "digits_kmeans: each digit split into model.num_classes / 10 such clusters")
    shift: int = opt(0, "inpaint/complete: move each training digit by whole pixels, uniform in -shift..shift in x "
                        "and y, before masking (dataio/augment.py)")
    rotate: float = opt(0.0, "inpaint/complete: rotate each training digit by an angle uniform in +-rotate degrees")
    scale: float = opt(0.0, "inpaint/complete: scale each training digit by a factor uniform in 1 +- scale, [0, 0.5)")
    val_size: int = opt(0, "hold out N training digits as a validation split, never trained on: the same digits in "
                           "every run, whatever the seeds (dataio.mnist.validation_split); 0 = none")
    occluded_dir: str = opt("data/pairs/occluded_images", "folder: the occluded_NAME images")
    original_dir: str = opt("data/pairs/original_images", "folder: the NAME images")
    image_size: int = opt(28, "folder: images are resized to image_size x image_size")
    channels: int = opt(1, "image channels: 1 (MNIST, grayscale) or 3 (RGB folders)")
    mask_thresh: float = opt(0.05, "folder: the mask is where occluded and original differ by more, in [0, 1)")
    n: int = opt(50000, "moons: training points, make_moons(n, noise, seed)")
    noise: float = opt(0.05, "moons: std of the Gaussian noise on each coordinate (also of the evaluation target)")
    seed: int = opt(-1, "moons: seed of the training set; -1 = train.seed")


@dataclass
class SampleConfig:
    sampler: str = opt("ddim", "ddpm (ancestral), ddim (with eta), dpmpp_2m (DPM-Solver++(2M)), euler, heun")
    sigmas: str = opt("karras", "euler/heun levels: karras (Karras et al. 2022), or discrete: the training levels "
                                "the spacing picks (diffusers' EulerDiscreteScheduler)")
    spacing: str = opt("trailing", "levels T, T - T/S, ..., T/S (trailing); evenly from T to 1 (uniform); "
                                   "1 + k(S-1), ..., 1 with k = T//S (leading, never visits T)")
    steps: int = opt(50, "denoising steps S (<= diffusion.timesteps)")
    eta: float = opt(0.0, "DDIM noise: 0 deterministic, 1 = the DDPM posterior variance")
    clip_x0: bool = opt(True, "clamp the predicted clean image to [-1, 1] at every step")
    batch_size: int = opt(500, "images per network call while sampling")
    num_samples: int = opt(5000, "sample.py: how many digits")
    seed: int = opt(0, "sample i draws its noise from a generator seeded by (seed, i)")
    grid_size: int = opt(64, "images in the training-time grids")
    guidance: float = opt(0.0, "classifier-free guidance weight w: out = cond + w (cond - uncond); 0 = conditional")
    digit: int = opt(-1, "class-conditional models: -1 = balanced classes, 0-9 = that digit only")
    autoguidance: float = opt(0.0, "autoguidance weight a (Karras et al. 2024): out += a (out - guide's out), the "
                                   "guide being the checkpoint's early weights (train.guide_step); 0 = off")
    guidance_interval: list[float] = opt([0.0, 1.0], "guide (both kinds) only at levels t in [lo, hi] x "
                                         "diffusion.timesteps, the plain model elsewhere (Kynkaanniemi et al. 2024)")


@dataclass
class InpaintConfig:
    """Completing masked digits with a diffusion model (diffusion/inpaint.py); seed 000's names in
    parentheses. The steps, eta and spacing are sample.*'s."""
    dc_repeats: int = opt(1, "(dc_repeats) RePaint resampling, each block of jump_length steps walked "
                             "this often; 1 = plain DDIM + data consistency")
    jump_length: int = opt(1, "RePaint jump length")
    dc_fixed_z: bool = opt(False, "(dc_fixed_z) noise the observation with one fixed draw at every level")
    init_from_y: bool = opt(False, "(init_from_y) start from the observation noised to level T, "
                                   "not pure noise")
    mean_of: int = opt(1, "average this many completions per image (the MSE-optimal posterior mean)")
    mean_at: float = opt(0.0, "task.name=inpaint: 0 averages finished completions; in (0, 1) stops at level "
                              "mean_at x T and averages the clean estimates there (less variance)")


@dataclass
class TaskConfig:
    name: str = opt("generate", "generate (digits; training-free inpainting), inpaint (diffusion conditioned on the "
                                "masked image) or complete (one pass, no diffusion); see tasks/completion.py")
    mask: str = opt("center", "the hole: center / box (random position) of side mask_size, half (a random side), "
                              "pixels (each hidden with probability mask_fraction); presets center8 (the course), "
                              "center12 (seed 000)")
    mask_size: int = opt(12, "center/box: side of the square hole (seed 000's center_box; the course task: 8)")
    mask_fraction: float = opt(0.5, "pixels: share of hidden pixels")
    coord_conv: bool = opt(False, "inpaint/complete (coord_conv): add x, y coordinate input channels")
    hole_weight: float = opt(1.0, "inpaint (hole_weight): loss weight of hole pixels; known pixels weigh 1")
    loss_mse: float = opt(1.0, "complete: weight of the MSE on the hole (the regression baseline)")
    loss_l1: float = opt(0.0, "complete: weight of the L1 on the hole")
    loss_ssim: float = opt(0.0, "complete: weight of 1 - SSIM(composite, original)")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    inpaint: InpaintConfig = field(default_factory=InpaintConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


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
    if tp is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise UserError(f"{key} in {where} must be a mapping of names to values, e.g. {{width: 32}}, got {value!r}")
        return dict(value)
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


# keys that moved: a config file or override naming the old key is refused with the new name; the
# configs stored in older checkpoints are read with the keys renamed (from_dict(migrate=True))
MOVED = {f"sample.{k}": f"inpaint.{k}" for k in ("dc_repeats", "jump_length", "dc_fixed_z", "init_from_y", "mean_of",
                                                  "mean_at")}


def _set(cfg: Config, key: str, value, where: str) -> None:
    if key in MOVED:
        raise UserError(f"{key} in {where} is now {MOVED[key]}; rename it")
    if key.startswith("model.options.") and len(key) > len("model.options."):  # one entry of the free mapping
        cfg.model.options[key.removeprefix("model.options.")] = value
        return
    section, _, name = key.partition(".")
    sec = getattr(cfg, section) if section in SECTIONS else None
    if sec is None or name not in {f.name for f in dataclasses.fields(sec)}:
        raise _unknown(key, where)
    tp = typing.get_type_hints(type(sec))[name]
    setattr(sec, name, _coerce(value, tp, key, where))


def from_dict(data: dict, where: str = "<dict>", *, migrate: bool = False) -> Config:
    """Build a validated Config from nested dicts, e.g. a parsed YAML file or a checkpoint's config
    (migrate: keys that moved since are read under their new names)."""
    cfg = Config()
    if not isinstance(data, dict):
        raise UserError(f"{where} must hold a mapping of sections ({', '.join(SECTIONS)})")
    for section, values in data.items():
        if section not in SECTIONS:
            raise _unknown(str(section), where)
        if not isinstance(values, dict):
            raise UserError(f"section {section} in {where} must be a mapping of keys")
        for name, value in values.items():
            key = f"{section}.{name}"
            _set(cfg, MOVED.get(key, key) if migrate else key, value, where)
    validate(cfg, where)
    return cfg


def _read(path: Path, seen: tuple = ()) -> dict:
    """A YAML config as nested dicts, with `base: OTHER.yaml` (a path relative to the file) read first and
    this file's keys laid over it, section by section."""
    if not path.is_file():
        raise UserError(f"config file {path} not found; pass --config configs/default.yaml or another file in configs/")
    if path.resolve() in seen:
        raise UserError(f"config file {path} names itself as a base (through {' -> '.join(p.name for p in seen)})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        at = f" (line {line + 1})" if line is not None else ""
        raise UserError(f"config file {path} is not valid YAML{at}; fix its syntax") from None
    if not isinstance(data, dict) or "base" not in data:
        return data
    base = data.pop("base")
    if not isinstance(base, str):
        raise UserError(f"base in {path} must be a file name, e.g. base: default.yaml")
    merged = _read(path.parent / base, (*seen, path.resolve()))
    for section, values in data.items():
        if isinstance(values, dict) and isinstance(merged.get(section), dict):
            merged[section] = {**merged[section], **values}
        else:
            merged[section] = values
    return merged


def load(path: str | Path, overrides: list[str] = (), *, migrate: bool = False) -> Config:
    """Read a YAML config (and the base it names), apply `section.key=value` overrides, validate.
    migrate: a config.yaml that train.py wrote beside an older checkpoint, read with moved keys renamed."""
    path = Path(path)
    cfg = from_dict(_read(path), str(path), migrate=migrate)
    apply_overrides(cfg, overrides, source=str(path))
    return cfg


def apply_overrides(cfg: Config, overrides: list[str], source: str = "the config") -> None:
    """Set `section.key=value` items (YAML values) and validate the result; an error names `source`."""
    for item in overrides:
        key, eq, text = item.partition("=")
        if not eq or not key:
            raise UserError(f"override {item!r} must look like section.key=value, e.g. train.steps=200")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise UserError(f"override {item!r}: cannot parse the value {text!r}") from None
        _set(cfg, key.strip(), value, "the command line")
    validate(cfg, f"{source} with the command line's overrides" if overrides else source)


def save_yaml(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def _yaml_value(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("\n...").strip()


def markdown(configs_dir: Path = Path(__file__).resolve().parents[1] / "configs") -> str:
    """docs/config.md: every key with its type, default, allowed values and help (from the dataclasses above),
    then each shipped config with its leading comment. `python -m engine.config --markdown > docs/config.md`;
    tests/test_config.py fails when the committed file differs."""
    out = ["# Config reference", "",
           "What a reader gets here: every config key with its type, default, allowed values and meaning, and the",
           "shipped configs. Generated from `engine/config.py` by `python -m engine.config --markdown > docs/config.md`",
           "(a test checks that this file matches); edit the help strings there, not this file.", "",
           "Configs are YAML with the sections below, parsed into typed dataclasses. Unknown keys, wrong types and",
           "out-of-range values are errors naming the key, the file and the closest valid key. Any key can be",
           "overridden after the command's flags, e.g. `python train.py --config configs/default.yaml train.steps=2000`.",
           "Every resolved config is saved beside the checkpoints and inside each checkpoint.", "",
           "The default column holds the dataclass defaults, what a key is when no file sets it; they are not",
           "configs/default.yaml, the recommended recipe. To start from the recipe, name it as the base of your file:",
           "`base: default.yaml` (a path relative to your file) takes every key from it, and your sections override",
           "key by key: a file holding `base: default.yaml` and `train: {steps: 2000}` is the default, shorter."]
    allowed_values = choices()
    for section, cls in SECTIONS.items():
        out += ["", f"## {section}", "", "| key | type | default | allowed | meaning |", "| --- | --- | --- | --- | --- |"]
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            key, tp = f"{section}.{f.name}", hints[f.name]
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            kind = f"list[{typing.get_args(tp)[0].__name__}]" if typing.get_origin(tp) is list else tp.__name__
            allowed = ", ".join(allowed_values[key]) if key in allowed_values else RANGES.get(key, "")
            out.append(f"| `{key}` | {kind} | `{_yaml_value(default)}` | {allowed} | {f.metadata['help']} |")
    out += ["", "## Keys that do nothing without another", "",
            "Set away from its default while the key it depends on is off, each of these is an error at load (it",
            "would silently do nothing); besides them, `data.val_size > 0` needs `train.val_every > 0` (held-out",
            "digits are only used to validate), and `sample.guidance > 0` needs `train.label_dropout > 0` (the",
            "'no label' prediction that guidance extrapolates from is trained by label dropout).", ""]
    out += [f"- `{key}`: only with {when}" for key, _, when in PAIRS]
    out += ["", "## Keys that moved", "",
            "A config file or override naming the old key is an error that names the new one; the configs stored in",
            "older checkpoints are read under the new names, so those checkpoints load and sample as before.", ""]
    out += [f"- `{old}` is now `{new}`" for old, new in MOVED.items()]
    out += ["", "## Shipped configs", ""]
    for path in sorted(configs_dir.glob("*.yaml")):
        head = []
        for line in path.read_text().splitlines():
            if not line.startswith("#"):
                break
            head.append(line.lstrip("#").strip())
        out.append(f"- `configs/{path.name}`: {' '.join(head)}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Print the config reference (docs/config.md).")
    parser.add_argument("--markdown", action="store_true", required=True, help="print it as Markdown")
    parser.parse_args()
    print(markdown(), end="")
