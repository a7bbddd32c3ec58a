"""Grading the course inpainting task (seed 003): public and private scores, pass or fail.

Each student hands in one npz of completed digits (sample.py --task course writes it) for the
hidden test images. The score is the course's: the MSE over the masked 8x8 center ([10:18, 10:18]),
pixels in [0, 1]. The hidden images are split into a public and a private half by the grader's secret
seed (grading.submissions.grader_seed): the public score is shown while the task runs, the private one
only in the final table, so tuning against the public scores cannot overfit the private half (as on
Kaggle and CodaBench). An entry passes when its private MSE is at most the named baseline's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.errors import UserError
from common.fileio import check_name, ensure_dir, write_json, write_text
from dataio import masks
from dataio.images import read_course_npz, value_scale


def course_images(path: Path) -> np.ndarray:
    """float64 (N, 28, 28) in [0, 1] from a course npz (uint8 0..255, or float 0..1 or 0..255)."""
    _, arr = read_course_npz(path)
    return arr.reshape(len(arr), 28, 28).astype(np.float64) / value_scale(arr)


def center_errors(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each image's MSE over the 8x8 center ([0, 1] units); pred and target float (N, 28, 28)."""
    hole = masks.make("center8", 1)[0, 0].numpy()
    return ((pred - target) ** 2)[:, hole].mean(1)


def split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(public, private) indices: a random half of the n hidden images each, drawn by `seed`."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:n // 2]), np.sort(order[n // 2:])


def grade_course(folder: Path, target: Path, results: Path, *, seed: int, baseline: str | None) -> tuple[list, list]:
    """Score every DIR/NAME.npz against `target`; writes RESULTS/course/NAME.json, course_public.md
    (ranked by the public score) and course_final.md (ranked by the private score, pass/fail).
    Returns (rows ranked by the public score, warnings)."""
    if not folder.is_dir():
        raise UserError(f"course submissions folder {folder} not found; it should hold one NAME.npz per student")
    truth = course_images(target)
    public, private = split(len(truth), seed)
    rows, warnings = [], []
    for path in sorted(folder.glob("*.npz")):
        try:
            name = check_name(path.stem)
            pred = course_images(path)
            if pred.shape != truth.shape:
                raise UserError(f"{len(pred)} images, {len(truth)} expected")
        except UserError as e:
            warnings.append(f"warning: not graded {path} ({e})")
            continue
        err = center_errors(pred, truth)
        rows.append({"student_name": name, "public_mse": float(err[public].mean()),
                     "private_mse": float(err[private].mean()), "num_images": len(err)})
    names = [r["student_name"] for r in rows]
    if baseline is not None and baseline not in names:
        raise UserError(f"--baseline {baseline}: no {baseline}.npz in {folder}; name one of {', '.join(names) or 'none'}")
    bar = next((r for r in rows if r["student_name"] == baseline), None)
    for r in rows:
        r["pass"] = None if bar is None else r["private_mse"] <= bar["private_mse"]
        write_json(ensure_dir(results / "course") / f"{r['student_name']}.json", {**r, "task": "course", "baseline": baseline})
    public_rows = sorted(rows, key=lambda r: r["public_mse"])
    final = sorted(rows, key=lambda r: r["private_mse"])
    line = lambda cells: "| " + " | ".join(str(c) for c in cells) + " |"  # noqa: E731
    verdict = lambda r: "" if r["pass"] is None else ("pass" if r["pass"] else "fail")  # noqa: E731
    write_text(results / "course_public.md", "\n".join(
        ["## Course task: public scores (MSE on the 8x8 center, half of the hidden images)", "",
         line(("rank", "student_name", "public_mse")), line(["---"] * 3)]
        + [line((i + 1, r["student_name"], f"{r['public_mse']:.6f}")) for i, r in enumerate(public_rows)]) + "\n")
    write_text(results / "course_final.md", "\n".join(
        [f"## Course task: final scores (the private half; pass: at most {baseline or 'a baseline'}'s)", "",
         line(("rank", "student_name", "private_mse", "public_mse", "result")), line(["---"] * 5)]
        + [line((i + 1, r["student_name"], f"{r['private_mse']:.6f}", f"{r['public_mse']:.6f}", verdict(r)))
           for i, r in enumerate(final)]) + "\n")
    return public_rows, warnings
