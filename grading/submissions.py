"""Score a set of generated digits into a result record, and grade a folder of submissions.

A submission is a folder DIR/NAME/ holding what sample.py and train.py write: the checkpoint
(final.pt, or the folder's only .pt), config.yaml, the samples (samples.npz or samples/) and
samples.json. `grade_submissions` scores every folder whose result is missing or stale (keyed by
the samples' and checkpoint's sha256 and the grader's seed), regenerates CHECKED of its samples
(grading.provenance), writes results/NAME.json and results/grids/NAME.png, and names the folders it
skipped with the reason.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from dataio.images import load_digits, save_grid
from dataio.mnist import load_mnist
from engine import config
from grading import provenance
from common.runtime import versions
from common.errors import UserError
from common.fileio import check_name, ensure_dir, sha256_file, write_json
from tasks.generation import class_labels
from common.progress import live
from metrics import features, inception
from grading import integrity
from metrics.evaluation import evaluate_features, reference
from grading.ranking import unranked_reason


def score_digits(images: np.ndarray, name: str, src: Path, sampling: dict | None, *, data_root: str,
                 cache_dir: str | Path, feature_net: str = "lenet", inception_weights: str | None = None,
                 progress: bool = True) -> dict:
    """evaluate.py's record for uint8 (N, 28, 28) digits: FID and the other metrics, the copy and
    near-duplicate checks, whether it is ranked and why not."""
    cache_dir = ensure_dir(cache_dir)
    bars = live(progress)  # feature bars are over in seconds: live only
    lenet = features.load_lenet()
    if feature_net == "lenet":
        sha = features.sha256()
        extract = lambda imgs: features.extract(lenet, imgs, progress=bars)[0]
    else:
        path = inception.weights_path(inception_weights)
        net = inception.load_inception(path)
        sha = features.sha256(path)
        extract = lambda imgs: inception.extract(net, imgs, progress=bars)
    lenet_feats, probs = features.extract(lenet, images, progress=bars)
    feats = lenet_feats if feature_net == "lenet" else extract(images)
    ref = reference(extract, data_root, cache_dir, sha)
    try:
        metrics = evaluate_features(feats, probs, ref)
    except ValueError as e:
        raise UserError(f"{src}: {e}; check the images") from None
    train = load_mnist(data_root, train=True)[0].numpy()
    result = {"student_name": name, "num_samples": len(images), **metrics,
              **label_agreement(probs, sampling),
              **integrity.check(images, train, integrity.thresholds(data_root, cache_dir)),
              "samples": str(src), "samples_sha256": hashlib.sha256(images.tobytes()).hexdigest(),
              "sampling": sampling, "feature_net": feature_net, "feature_net_sha256": sha,
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "versions": versions()}
    return _with_rank(result)


def asked_labels(sampling: dict | None, n: int) -> np.ndarray | None:
    """The digits sample.py asked a class-conditional model for (samples.json's num_classes and digit:
    sample i is digit i % 10, or all are `digit`); None for unconditional or unknown samples."""
    if not sampling or not sampling.get("num_classes"):
        return None
    return class_labels(n, int(sampling.get("digit", -1))).numpy()


def label_agreement(probs: np.ndarray, sampling: dict | None) -> dict:
    """For class-conditional samples: the share that the shipped classifier (the LeNet behind the FID)
    assigns to the digit they were asked for, and beside it the same share on the 10,000 test digits
    (their true labels, i.e. its test accuracy), the ceiling a generator can reach by this measure.
    Empty for unconditional samples."""
    asked = asked_labels(sampling, len(probs))
    if asked is None:
        return {}
    return {"label_agreement": float((probs.argmax(1) == asked).mean()), "label_agreement_test": features.test_accuracy()}


def _with_rank(result: dict) -> dict:
    reason = unranked_reason(result)
    return {**result, "ranked": reason is None, "not_ranked_reason": reason}


def find_submission(folder: Path) -> dict:
    """The paths of one submission folder; a missing or ambiguous part is a UserError naming it."""
    samples = folder / "samples.npz" if (folder / "samples.npz").is_file() else folder / "samples"
    if not samples.exists():
        raise UserError("no samples.npz or samples/")
    meta = folder / "samples.json"
    if not meta.is_file():
        raise UserError("no samples.json (sample.py writes it beside the samples)")
    if not (folder / "config.yaml").is_file():
        raise UserError("no config.yaml")
    ckpts = [folder / "final.pt"] if (folder / "final.pt").is_file() else sorted(folder.glob("*.pt"))
    if len(ckpts) != 1:
        raise UserError("no checkpoint (final.pt or one .pt file)" if not ckpts else
                        f"{len(ckpts)} .pt files and no final.pt; keep the one that made the samples")
    return {"samples": samples, "meta": meta, "config": folder / "config.yaml", "checkpoint": ckpts[0]}


def grade_one(folder: Path, results: Path, *, data_root: str, cache_dir: str | Path, seed: int, k: int,
              device, progress: bool = False) -> tuple[str, dict]:
    """("graded" or "up to date", result) for one submission folder; a broken one raises UserError."""
    name = check_name(folder.name)
    paths = find_submission(folder)
    images = load_digits(paths["samples"])
    try:
        meta = json.loads(paths["meta"].read_text())
    except json.JSONDecodeError:
        raise UserError("samples.json is not valid JSON") from None
    if not isinstance(meta, dict):
        raise UserError("samples.json is not a JSON object")
    config.load(paths["config"])  # a student's config must at least be a valid one
    key = {"samples_sha256": hashlib.sha256(images.tobytes()).hexdigest(),
           "checkpoint_sha256": sha256_file(paths["checkpoint"]), "grader_seed": seed, "checked": k}
    out = results / f"{name}.json"
    if out.is_file():
        try:
            old = json.loads(out.read_text())
            if old.get("grading") == key:
                return "up to date", old
        except json.JSONDecodeError:
            pass
    start = time.perf_counter()
    check = provenance.verify(paths["checkpoint"], meta, images, k=k, seed=seed, device=device)
    result = score_digits(images, name, paths["samples"], meta, data_root=data_root, cache_dir=cache_dir,
                          progress=progress)
    grid = ensure_dir(results / "grids") / f"{name}.png"
    save_grid(grid, images[:100], nrow=10)
    result = _with_rank({**result, "verified": check["verified"], "provenance": check, "grading": key,
                         "grid": str(grid), "submission": str(folder),
                         "grading_seconds": round(time.perf_counter() - start, 2)})
    write_json(out, result)
    return "graded", result


def grade_submissions(root: Path, results: Path, **kwargs) -> tuple[list[tuple[str, str, dict]], list[str]]:
    """Grade every folder of `root`: ([(name, "graded" or "up to date", result)], [warnings])."""
    if not root.is_dir():
        raise UserError(f"submissions folder {root} not found; it should hold one folder per student")
    done, warnings = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            status, result = grade_one(folder, results, **kwargs)
        except UserError as e:
            warnings.append(f"warning: skipped {folder} ({e})")
            continue
        done.append((folder.name, status, result))
    return done, warnings
