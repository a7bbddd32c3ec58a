"""The value rules of a run configuration: allowed choices, ranges, and rules across keys.

`engine/config.py` parses YAML into its dataclasses and calls `validate`; docs/config.md prints
CHOICES and RANGES in its "allowed" column.
"""
from __future__ import annotations

from diffusion.process import LEVEL_SAMPLINGS, TARGETS, WEIGHTINGS
from diffusion.samplers import SAMPLERS, SIGMAS, SPACINGS
from diffusion.schedule import SCHEDULES
from dataio import masks
from common.errors import UserError
from tasks import NAMES as TASKS
from models.model import REGISTRY

CHOICES = {
    "model.pos_embed": ("sincos", "learned"),
    "diffusion.schedule": SCHEDULES,
    "diffusion.prediction": TARGETS,
    "diffusion.loss_weighting": WEIGHTINGS,
    "diffusion.level_sampling": LEVEL_SAMPLINGS,
    "train.lr_schedule": ("cosine", "constant"),
    "train.device": ("auto", "cpu", "cuda", "mps"),
    "data.name": ("mnist", "folder", "moons"),
    "data.labels": ("digits", "kmeans", "digits_kmeans"),
    "sample.sampler": SAMPLERS,
    "sample.sigmas": SIGMAS,
    "sample.spacing": SPACINGS,
    "task.name": TASKS,
    "task.mask": masks.MASKS,
}

RANGES = {
    **dict.fromkeys(("model.channels", "model.num_res_blocks", "model.num_heads", "model.width", "model.depth",
                     "model.patch_size", "diffusion.timesteps", "train.steps", "train.batch_size", "train.grad_accum",
                     "train.ema_every", "train.log_every", "train.ckpt_every", "sample.steps", "sample.batch_size",
                     "sample.num_samples", "sample.grid_size", "inpaint.dc_repeats", "inpaint.jump_length",
                     "inpaint.mean_of"), ">= 1"),
    **dict.fromkeys(("data.subset", "data.val_size", "data.shift", "data.rotate", "train.val_every", "train.sample_every", "train.keep_every", "train.warmup_steps", "train.eval_every", "train.clip_grad",
                     "train.weight_decay", "sample.eta"), ">= 0"),
    **dict.fromkeys(("train.lr", "diffusion.p_std"), "> 0"),
}
_HOLDS = {">= 1": lambda v: v >= 1, ">= 0": lambda v: v >= 0, "> 0": lambda v: v > 0}


# (key, whether it is used, when): a key set away from its default where nothing reads it is an error, so a
# config cannot silently ask for something it does not get.
PAIRS = (
    ("diffusion.p_mean", lambda c: c.diffusion.level_sampling == "lognormal", "diffusion.level_sampling=lognormal"),
    ("diffusion.p_std", lambda c: c.diffusion.level_sampling == "lognormal", "diffusion.level_sampling=lognormal"),
    ("diffusion.level_uniform", lambda c: c.diffusion.level_sampling == "lognormal",
     "diffusion.level_sampling=lognormal"),
    ("diffusion.min_snr_gamma", lambda c: c.diffusion.loss_weighting == "min_snr", "diffusion.loss_weighting=min_snr"),
    ("diffusion.p2_k", lambda c: c.diffusion.loss_weighting == "p2", "diffusion.loss_weighting=p2"),
    ("diffusion.p2_gamma", lambda c: c.diffusion.loss_weighting == "p2", "diffusion.loss_weighting=p2"),
    ("train.eval_samples", lambda c: c.train.eval_every > 0, "train.eval_every > 0"),
    ("train.label_dropout", lambda c: c.model.num_classes > 0, "model.num_classes > 0"),
    ("data.labels", lambda c: c.model.num_classes > 0, "model.num_classes > 0"),
    ("train.ema_decay", lambda c: c.train.ema_sigma_rel == 0, "train.ema_sigma_rel=0"),
    ("train.ema_warmup", lambda c: c.train.ema_sigma_rel == 0, "train.ema_sigma_rel=0"),
)


def choices() -> dict[str, tuple]:
    """Every key with a fixed set of values (model.name: the registered networks)."""
    return {"model.name": tuple(REGISTRY), **CHOICES}


def _require(ok: bool, key: str, rule: str, value, where: str) -> None:
    if not ok:
        raise UserError(f"{key}={value!r} in {where} is out of range: it must be {rule}")


def _get(cfg, key: str):
    section, name = key.split(".")
    return getattr(getattr(cfg, section), name)


def validate(cfg, where: str) -> None:
    """Raise a UserError naming the first key (and `where` it came from) whose value breaks a rule."""
    for key, allowed in choices().items():
        value = _get(cfg, key)
        if value not in allowed:
            raise UserError(f"{key}={value!r} in {where} is not valid; choose one of {', '.join(allowed)}")
    for key, rule in RANGES.items():
        value = _get(cfg, key)
        _require(_HOLDS[rule](value), key, rule, value, where)
    m, d, t, s = cfg.model, cfg.diffusion, cfg.train, cfg.sample
    _require(t.eval_every == 0 or (cfg.task.name == "generate" and cfg.data.name == "mnist"), "train.eval_every",
             "0 unless task.name=generate on data.name=mnist (the FID compares digits)", t.eval_every, where)
    _require(cfg.data.scale < 0.5, "data.scale", "in [0, 0.5)", cfg.data.scale, where)
    jittered = next((k for k in ("shift", "rotate", "scale") if getattr(cfg.data, k)), None)
    _require(jittered is None or cfg.task.name != "generate", f"data.{jittered}",
             "0 unless task.name is inpaint or complete (jitter keeps a completion task; it would change the "
             "distribution a generator learns)", getattr(cfg.data, jittered or "shift"), where)
    _require(cfg.data.val_size == 0 or (cfg.data.name == "mnist" and cfg.data.val_size < 60_000), "data.val_size",
             "0 unless data.name=mnist, and below the 60,000 training digits", cfg.data.val_size, where)
    _require(cfg.data.val_size == 0 or t.val_every > 0, "data.val_size",
             "0 unless train.val_every > 0 (held-out digits are only ever used to validate; without train.val_every "
             "they are just taken away from training)", cfg.data.val_size, where)
    for key, active, when in PAIRS:
        default = _get(type(cfg)(), key)
        _require(active(cfg) or _get(cfg, key) == default, key,
                 f"left at its default ({default!r}) unless {when}: otherwise it does nothing (set {key}={default})",
                 _get(cfg, key), where)
    _require(t.val_every == 0 or (cfg.data.val_size > 0 and cfg.task.name in ("inpaint", "complete")),
             "train.val_every", "0 unless data.val_size > 0 and task.name is inpaint or complete (it scores "
             "completions of the validation digits)", t.val_every, where)
    _require(t.eval_samples >= 2, "train.eval_samples", ">= 2 (FID needs a covariance)", t.eval_samples, where)
    _require(0 <= t.ema_decay < 1, "train.ema_decay", "in [0, 1)", t.ema_decay, where)
    _require(0 <= t.ema_sigma_rel <= 12 ** -0.5, "train.ema_sigma_rel",
             "in [0, 0.2886] (the widest, 12^-1/2, is the plain mean of all steps)",
             t.ema_sigma_rel, where)
    _require(0 <= d.level_uniform <= 1, "diffusion.level_uniform", "in [0, 1]", d.level_uniform, where)
    _require(0 <= m.dropout < 1, "model.dropout", "in [0, 1)", m.dropout, where)
    _require(0 <= t.label_dropout < 1, "train.label_dropout", "in [0, 1)", t.label_dropout, where)
    clusters, split = cfg.data.labels == "kmeans", cfg.data.labels == "digits_kmeans"
    _require(m.num_classes >= 2 if clusters else m.num_classes >= 20 and m.num_classes % 10 == 0 if split
             else m.num_classes in (0, 10) if cfg.data.name == "mnist" else m.num_classes == 0, "model.num_classes",
             ">= 2 with data.labels=kmeans (the number of clusters)" if clusters else
             "a multiple of 10, >= 20, with data.labels=digits_kmeans (10 x the clusters per digit)" if split else
             "0 (unconditional) or 10 (MNIST's digits)" if cfg.data.name == "mnist" else
             f"0 for data.name={cfg.data.name} (its examples have no class labels)", m.num_classes, where)
    _require(cfg.data.labels == "digits" or cfg.data.name == "mnist", "data.labels",
             f"digits for data.name={cfg.data.name}", cfg.data.labels, where)
    _require(-1 <= s.digit < 10 and (s.digit == -1 or not clusters), "sample.digit",
             "-1 (all clusters, equally often) with data.labels=kmeans" if clusters else "-1 (balanced) or a digit 0-9",
             s.digit, where)
    _require(s.guidance >= 0, "sample.guidance", ">= 0", s.guidance, where)
    _require(0 <= cfg.inpaint.mean_at < 1, "inpaint.mean_at", "in [0, 1)", cfg.inpaint.mean_at, where)
    _require(cfg.inpaint.mean_at == 0 or cfg.task.name == "inpaint", "inpaint.mean_at",
             "0 unless task.name=inpaint (only a model that sees the observation has the posterior mean as its "
             "clean estimate)", cfg.inpaint.mean_at, where)
    _require(s.guidance == 0 or m.num_classes > 0, "sample.guidance",
             "0 for an unconditional model (guidance needs model.num_classes > 0): set sample.guidance=0", s.guidance,
             where)
    _require(s.guidance == 0 or t.label_dropout > 0, "sample.guidance",
             "0 when train.label_dropout is 0 (guidance extrapolates away from the 'no label' prediction, which "
             "label dropout trains; without it that prediction is untrained)", s.guidance, where)
    _require(s.autoguidance >= 0, "sample.autoguidance", ">= 0", s.autoguidance, where)
    gi = s.guidance_interval
    _require(len(gi) == 2 and 0 <= gi[0] < gi[1] <= 1, "sample.guidance_interval", "[lo, hi] with 0 <= lo < hi <= 1",
             gi, where)
    _require(s.autoguidance == 0 or t.guide_step > 0, "sample.autoguidance",
             "0 unless train.guide_step > 0 (autoguidance steers away from the guide weights that step keeps)",
             s.autoguidance, where)
    _require(0 <= t.guide_step < t.steps, "train.guide_step", f"in [0, train.steps) = [0, {t.steps})", t.guide_step, where)
    _require(t.guide_step == 0 or cfg.task.name == "generate", "train.guide_step",
             "0 unless task.name=generate (only digit generation samples with autoguidance)", t.guide_step, where)
    _require(s.digit == -1 or m.num_classes > 0, "sample.digit",
             "-1 for an unconditional model (choosing a digit needs model.num_classes > 0)", s.digit, where)
    _require(len(m.channel_mult) >= 1 and all(c >= 1 for c in m.channel_mult), "model.channel_mult",
             "a non-empty list of positive ints", m.channel_mult, where)
    _require(all(0 <= a < len(m.channel_mult) for a in m.attn_levels), "model.attn_levels",
             f"level indices in 0..{len(m.channel_mult) - 1}", m.attn_levels, where)
    _require(cfg.data.image_size % m.patch_size == 0, "model.patch_size",
             f"a divisor of data.image_size ({cfg.data.image_size})", m.patch_size, where)
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
    _require(m.name not in ("completion", "convmlp") or k.name == "complete", "model.name",
             f"used with task.name=complete (the {m.name} network has no time input)", m.name, where)
    _require(k.name != "complete" or not d.self_cond, "diffusion.self_cond",
             "false for task.name=complete (there is no diffusion to self-condition)", d.self_cond, where)
