"""The Task protocol: everything that differs between what a run does with its network.

A task says what data a run trains on, the loss of one micro-batch, the pictures drawn during
training, the validation score (and whether its lowest value is kept as best.pt), the network's input
layout, how the model is sampled and how completions are estimated. engine/trainer.py, sample.py and
the completion machinery look the task up once (tasks.for_config) and call it; adding a task is one
module here plus its name in tasks/__init__.py (docs/architecture.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from common.errors import UserError
from dataio.clusters import kmeans_labels
from dataio.mnist import load_mnist, to_model_range, validation_split
from diffusion.process import config_levels

PANEL_DIGITS = 8  # test digits in the inpainting panels written during training


@dataclass
class TrainData:
    """What a task trains on. examples: uint8 images (N, [C,] H, W) or float points (N, 2); labels:
    class indices or None; masks: one fixed bool mask per example (folder pairs) or None; panel and
    panel_masks: the digits of the training-time pictures; val: held-out digits or None; cache: what
    a task keeps between validations (e.g. the FID reference)."""
    examples: torch.Tensor
    labels: torch.Tensor | None = None
    masks: torch.Tensor | None = None
    panel: torch.Tensor | None = None
    panel_masks: torch.Tensor | None = None
    val: torch.Tensor | None = None
    cache: dict = field(default_factory=dict)

    def to(self, device) -> "TrainData":
        """The training tensors moved to `device` (train.data_on_device: batches gathered there)."""
        move = lambda a: None if a is None else a.to(device)  # noqa: E731
        return TrainData(move(self.examples), move(self.labels), move(self.masks), self.panel, self.panel_masks,
                         self.val, self.cache)


def mnist_training(cfg) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(training digits, labels, validation digits or None): data.val_size digits are held out first
    (dataio.mnist.validation_split), then data.subset keeps the first of the others; with data.labels=kmeans
    the labels are the digits' cluster indices (dataio.clusters.kmeans_labels, seeded by train.seed), with
    digits_kmeans a cluster of each digit's own images times 10 plus the digit."""
    d = cfg.data
    images, labels = load_mnist(d.root, train=True, download=d.download)
    keep, held_out = validation_split(len(images), d.val_size)
    val = images[held_out] if d.val_size else None
    images, labels = images[keep], labels[keep]
    if d.subset:
        images, labels = images[:d.subset], labels[:d.subset]
    if d.labels == "kmeans":  # the digits' labels are not used: clusters of the pixels replace them
        labels = kmeans_labels(images, cfg.model.num_classes, cfg.train.seed)
    elif d.labels == "digits_kmeans":  # each digit split into clusters: class = cluster * 10 + digit
        per_digit = cfg.model.num_classes // 10
        labels = labels.clone()
        for digit in range(10):
            mine = labels == digit
            labels[mine] = kmeans_labels(images[mine], per_digit, cfg.train.seed) * 10 + digit
    return images, labels, val


def image_batch(examples: torch.Tensor, idx: torch.Tensor, device, channels_last: bool) -> torch.Tensor:
    """Training images idx in model range on the device (NHWC with channels_last); `examples` (uint8)
    may already live on the device."""
    x = to_model_range(examples[idx.to(examples.device)].to(device))
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def levels_and_noise(sched, d, micro: int, x0: torch.Tensor, g: torch.Generator, rows: slice):
    """This process's rows of the levels and noise drawn from `g` for the whole global micro-batch."""
    t = config_levels(sched, micro, d, g)[rows].to(x0.device)
    noise = torch.randn((micro, *x0.shape[1:]), generator=g)[rows].to(x0.device, x0.dtype)
    return t, noise


class Task:
    """The base: a task overrides what applies to it. Flags:
    makes_digits: sample.py --task generate writes digit sets (scored by FID, verifiable by provenance);
    masked: it trains on masked digits (task.mask, or folder pairs);
    completes: sample.py --task inpaint/course completes masked digits with it;
    stochastic: its completions differ between draws (diffusion), so panels show several;
    validation_field / keeps_best: the log.tsv column of its periodic validation score, and whether
    the lowest one is saved as best.pt."""
    name = ""
    log_fields: tuple[str, ...] = ()  # log.tsv columns of the parts its loss returns (engine.trainer.LOG_FIELDS)
    makes_digits = False
    masked = False
    completes = False
    stochastic = True
    validation_field: str | None = None
    keeps_best = False

    def inputs(self, cfg) -> dict:
        """The network's channels in and out and its class count (models.model.build_model's `inputs`)."""
        raise NotImplementedError

    def sample_shape(self, cfg) -> tuple[int, ...]:
        """The shape of one sample: (channels, size, size) images unless the task says otherwise."""
        d = cfg.data
        return d.channels, d.image_size, d.image_size

    def data(self, cfg) -> TrainData:
        raise NotImplementedError

    def loss(self, model, cfg, sched, data: TrainData, idx: torch.Tensor, g: torch.Generator, rows: slice, device,
             channels_last: bool = False) -> tuple[torch.Tensor, dict]:
        """(loss, parts to log) of this process's rows of one micro-batch (global indices idx). `g`
        holds the micro-batch's randomness, drawn for the whole global batch: every process draws the
        same and keeps its rows, so N processes match one with the same global batch."""
        raise NotImplementedError

    def pictures(self, ema_model, cfg, out_dir, step: int, data: TrainData, device) -> None:
        """The EMA model's training-time picture at `step` (a grid, a scatter or a panel)."""

    def validation_every(self, cfg) -> int:
        """Steps between validations; 0 = none."""
        return 0

    def prepare_validation(self, cfg, data: TrainData) -> None:
        """Set up what validation needs, once before the first step (rank 0)."""

    def validate(self, ema_model, cfg, data: TrainData, device) -> float:
        raise NotImplementedError

    def write_samples(self, model, cfg, out_dir, settings: dict, source: dict, *, device, ctx, progress: bool,
                      guide=None) -> str:
        """sample.py --task generate: draw settings["num_samples"] samples with `settings` (sampler,
        steps, eta, seed, spacing, sigmas, guidance, autoguidance, digit, batch_size; `guide`: the
        checkpoint's guide network), write them into out_dir with what made them (`source`: the
        checkpoint), and say what was written."""
        raise UserError(f"{source.get('checkpoint')} was trained for task.name={cfg.task.name}, which completes masked "
                        "digits; use --task inpaint or --task course")

    def estimate(self, model, cfg, x0: torch.Tensor, m: torch.Tensor, generator, *, mean_of: int = 1) -> torch.Tensor:
        """One batch of completions (tasks.completion.estimate)."""
        raise UserError(f"a {self.name} model does not complete masked digits")

    def method_name(self, cfg) -> str:
        """A short label of how completions are made, for tables."""
        return self.name

    def check_completion_overrides(self, given: list[str], ckpt_path) -> None:
        """Refuse sample.py settings that do not apply to this task's completions."""
