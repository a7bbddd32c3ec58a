"""Pictures of 2D point clouds (the two-moons test bed): scatter plots and a strip of the
reverse process. matplotlib with the Agg backend; files are written atomically."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from common.fileio import atomic_path  # noqa: E402

COLORS = {"target": "#1f77b4", "generated": "#d62728"}
DATA_BOX = ((-1.6, 2.6), (-1.1, 1.6))  # x and y limits that hold two moons with their noise
NOISE_BOX = ((-3.5, 3.5), (-3.5, 3.5))


def _save(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def _panel(ax, points: np.ndarray, title: str, color: str, box=DATA_BOX) -> None:
    ax.scatter(points[:, 0], points[:, 1], s=1.5, alpha=0.5, color=color, linewidths=0)
    ax.set_title(title, fontsize=9)
    ax.set_xlim(*box[0])
    ax.set_ylim(*box[1])
    ax.set_aspect("equal")
    ax.tick_params(labelsize=7)


def scatter(path: str | Path, panels: list[tuple[str, np.ndarray, str]]) -> None:
    """One row of scatter plots on the same axes; each panel is (title, points (n, 2), color)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    for ax, (title, points, color) in zip(axes[0], panels):
        _panel(ax, points, title, color)
    _save(fig, path)


def comparison(path: str | Path, target: np.ndarray, generated: np.ndarray, title: str = "") -> None:
    """Target and generated side by side, then both overlaid."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    _panel(axes[0], target, f"target ({len(target)})", COLORS["target"])
    _panel(axes[1], generated, f"generated ({len(generated)})", COLORS["generated"])
    _panel(axes[2], target, "overlay", COLORS["target"])
    _panel(axes[2], generated, "overlay", COLORS["generated"])
    if title:
        fig.suptitle(title, fontsize=10)
    _save(fig, path)


def reverse_strip(path: str | Path, states: list[tuple[float, np.ndarray]]) -> None:
    """x_t at a few levels of the reverse process, from noise (left) to data (right)."""
    fig, axes = plt.subplots(1, len(states), figsize=(2.6 * len(states), 2.8), squeeze=False)
    for ax, (level, points) in zip(axes[0], states):
        _panel(ax, points, f"t = {level:g}", COLORS["generated"], box=NOISE_BOX)
    _save(fig, path)


def learning_curve(path: str | Path, minutes, images, fid, floor: float, title: str) -> None:
    """FID against training minutes and against images seen (log y), with the FID floor and 3x it."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for ax, x, label in ((axes[0], minutes, "training minutes"), (axes[1], np.asarray(images) / 1e3, "images seen (thousands)")):
        ax.plot(x, fid, "o-", color=COLORS["generated"], label="FID")
        for k, style in ((1, ":"), (3, "--")):
            ax.axhline(k * floor, color="gray", linestyle=style, linewidth=1, label=f"{k}x floor ({k * floor:.1f})")
        ax.set_xlabel(label)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("FID (log scale)")
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def learning_curves(path: str | Path, runs: dict[str, tuple[list, list, list]], real: float, title: str) -> None:
    """Several runs' FID (log y; the dotted line: real digits scored the same way) and label agreement
    (class-conditional runs only) against images seen. runs: name -> (images, fid, agreement or None)."""
    agreeing = {n: r for n, r in runs.items() if any(a is not None for a in r[2])}
    fig, axes = plt.subplots(1, 2 if agreeing else 1, figsize=(10 if agreeing else 5.5, 3.6), squeeze=False)
    ax = axes[0][0]
    for name, (images, fid, _) in runs.items():
        ax.plot(np.asarray(images) / 1e3, fid, "o-", label=name, markersize=3)
    ax.axhline(real, color="gray", linestyle=":", linewidth=1, label=f"as many real digits ({real:.1f})")
    ax.set(xlabel="images seen (thousands)", ylabel="FID (log scale)", yscale="log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if agreeing:
        ax = axes[0][1]
        for name, (images, _, agree) in agreeing.items():
            ax.plot(np.asarray(images) / 1e3, 100 * np.asarray(agree, dtype=float), "o-", label=name, markersize=3)
        ax.set(xlabel="images seen (thousands)", ylabel="label agreement (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def sampler_sweep(path: str | Path, lines: dict[str, list[tuple[int, float, float, float]]], floor: float,
                  title: str) -> None:
    """FID against network evaluations and against seconds per 1,000 digits, one line per sampler;
    `lines[name]` holds (evaluations, FID, its spread, seconds per 1,000) points."""
    from matplotlib.ticker import FuncFormatter

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for name, points in lines.items():
        nfe, fid, spread, seconds = map(np.asarray, zip(*sorted(points)))
        for ax, x in ((axes[0], nfe), (axes[1], seconds)):
            ax.errorbar(x, fid, yerr=spread, marker="o", markersize=3, capsize=2, label=name)
    for ax, label in ((axes[0], "network evaluations per digit"), (axes[1], "seconds per 1,000 digits")):
        ax.axhline(floor, color="gray", linestyle=":", linewidth=1, label=f"floor ({floor:.1f})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    plain = FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "125" else "")  # 5, 10, 20, not 6 x 10^0
    for ax in axes:
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(plain)
    axes[0].set_ylabel("FID (log scale)")
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)



def digit_panels(path: str | Path, panels: dict[str, np.ndarray], title: str) -> None:
    """Panels side by side, titled by their keys in order; `panels[k]` is uint8 (10, K, 28, 28): row d
    holds K samples of digit d."""
    from dataio.images import grid

    fig, axes = plt.subplots(1, len(panels), figsize=(1.9 * len(panels), 4.2), squeeze=False)
    for ax, (name, images) in zip(axes[0], panels.items()):
        ax.imshow(grid(images.reshape(-1, 28, 28), nrow=images.shape[1]), cmap="gray", vmin=0, vmax=255,
                  interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=8)
    _save(fig, path)
