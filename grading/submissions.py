"""Score a set of generated digits into a result record, and grade a folder of hand-ins.

A hand-in is a folder DIR/NAME/ holding what the course rules ask for: the checkpoint (final.pt, or
the folder's only .pt), the config (config.yaml or my_config.yaml), optionally the student's
model.py, and optionally the samples (samples.npz or samples/ with samples.json). `grade_submissions`
grades every folder whose result is missing or stale (keyed by the sha256 of everything handed in and
of the grader's seed) and writes results/NAME.json and results/grids/NAME.png:

- with samples: CHECKED of them are regenerated from the checkpoint (grading.provenance);
- without: the grader generates the 5,000 itself with its own seed (grading.regenerate): verified
  by construction;
- a model.py that differs from the shipped models/model.py is student code: it runs only with
  run_student_code, in a child process (grading.sandbox); without it the folder is listed as
  "needs --run_student_code". The scores always come from this process's own metric code.

The grader's seed picks the regenerated indices and the noise of grader-made samples. Unless the
instructor fixes one, it is drawn once per results folder and kept in RESULTS/.grader_seed (the
instructor's, never in the tables students see); results record only its hash.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import secrets
import time
from pathlib import Path

import numpy as np

from dataio.images import load_digits, save_grid
from dataio.mnist import load_mnist
from engine import checkpoint, config
from grading import provenance, sandbox
from grading.regenerate import regenerate
from common.runtime import versions
from common.errors import UserError
from common.fileio import check_name, ensure_dir, sha256_file, write_json
from tasks.generation import class_labels, classes_are_digits
from common.progress import live
from metrics import features, inception
from grading import integrity
from metrics.evaluation import REQUIRED_SAMPLES, evaluate_features, reference
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
    test = load_mnist(data_root, train=False)[0].numpy()
    checks = integrity.check(images, train, integrity.thresholds(data_root, cache_dir), test)
    low = integrity.below_floor(metrics["fid"], metrics["fid_bootstrap_std"], metrics["fid_floor_mean"],
                                metrics["fid_floor_std"])
    result = {"student_name": name, "num_samples": len(images), **metrics,
              **label_agreement(probs, sampling), **checks, "flags": checks["flags"] + ([low] if low else []),
              "samples": str(src), "samples_sha256": hashlib.sha256(images.tobytes()).hexdigest(),
              "sampling": sampling, "feature_net": feature_net, "feature_net_sha256": sha,
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "versions": versions()}
    return _with_rank(result)


def stored_conditioning(path: Path) -> dict:
    """The classes a hand-in's model was trained on (tasks.generation.conditioning), read from the config its
    checkpoint stores, as plain data: never from samples.json, nor from the report of the child that ran the
    student's model.py (their code prints it), and without validating the config against the grader's
    networks (a student's own network name is unknown to them)."""
    stored = checkpoint.load(path)["config"]
    return {"num_classes": int(stored.get("model", {}).get("num_classes", 0)),
            "labels": str(stored.get("data", {}).get("labels", "digits"))}


def asked_labels(sampling: dict | None, n: int) -> np.ndarray | None:
    """The digits sample.py asked a class-conditional model for (`sampling`'s num_classes, labels and digit:
    sample i is digit i % 10, or all are `digit`); None for unconditional or unknown samples, and for a
    model conditioned on clusters (labels: kmeans), whose indices are not digits."""
    if not sampling or not classes_are_digits(sampling.get("num_classes"), sampling.get("labels", "digits")):
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


SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "models" / "model.py"
# sha256 of every earlier shipped models/model.py: a hand-in made from an older checkout is not student code
EARLIER_SHIPPED = {
    "2a1dc303492841719969a0c085e4e1470def1cf549275ecff4e54bc559dd9a5b",
    "4a0459ac78a3fa2969851ebda02f0aa58a056fe64652281aa2b4ed244a10895f",
    "527a7df581e100fd23335d45d017e01e8e811e4e580055176fb55ad12b6ed5ef",
    "755b570b8e8f4d37eea49ea9bc8e793c5d821a0c861fc2090fe952428975b3d8",
    "940b1bf7433459907a981904ab049dbd86fe1d1ee10f73b19927f9e22af9bd33",
    "baa8520f93b778c252a986d066f659296284fb3649d44f39ed6dc30a87b226dd",
    "cd7dc50008fd99b27cda150fb6f3f0f304b08e38330a0a53888259d6677174e1",
    "f0d383f883fa3b25cf1453ade6910585b32689be927a807954b109b588d787f6",
}
NEEDS_CODE = "needs --run_student_code"
# the version of the grading rules: a result graded under other rules is graded again, even for unchanged files
# (2: the classes a model was asked for come from its checkpoint)
RULES = 2


def grader_seed(results: Path, fixed: int | None = None) -> int:
    """The instructor's fixed seed, or the one drawn secretly for this results folder (kept in
    RESULTS/.grader_seed, drawn on first use)."""
    if fixed is not None:
        return fixed
    path = results / ".grader_seed"
    if path.is_file():
        return int(path.read_text().strip())
    seed = secrets.randbits(62)  # too many to find from the hashes results record
    write_json(path, seed)
    return seed


def hand_in_seed(seed: int, files: dict) -> int:
    """The seed one hand-in is graded with: derived from the grader's seed and the hand-in's files, so
    that what a student's code can see (its own seed) tells nothing of the grader's or of others'."""
    digest = hashlib.sha256(json.dumps([seed, files], sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 2


def find_submission(folder: Path) -> dict:
    """The paths of one hand-in (samples, meta and model_py None when absent); a missing or ambiguous
    part is a UserError naming it."""
    samples = folder / "samples.npz" if (folder / "samples.npz").is_file() else folder / "samples"
    meta = folder / "samples.json"
    if samples.exists() and not meta.is_file():
        raise UserError("samples but no samples.json (sample.py writes it beside the samples); hand in both, or neither")
    configs = [folder / n for n in ("config.yaml", "my_config.yaml") if (folder / n).is_file()]
    if not configs:
        raise UserError("no config.yaml or my_config.yaml")
    ckpts = [folder / "final.pt"] if (folder / "final.pt").is_file() else sorted(folder.glob("*.pt"))
    if len(ckpts) != 1:
        raise UserError("no checkpoint (final.pt or one .pt file)" if not ckpts else
                        f"{len(ckpts)} .pt files and no final.pt; keep the one that made the samples")
    model_py = folder / "model.py" if (folder / "model.py").is_file() else None
    custom = model_py is not None and model_py.read_bytes() != SHIPPED_MODEL.read_bytes() \
        and sha256_file(model_py) not in EARLIER_SHIPPED
    return {"samples": samples if samples.exists() else None, "meta": meta if samples.exists() else None,
            "config": configs[0], "checkpoint": ckpts[0], "model_py": model_py, "custom": custom}


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise UserError("samples.json is not valid JSON") from None
    if not isinstance(meta, dict):
        raise UserError("samples.json is not a JSON object")
    return meta


def grade_one(folder: Path, results: Path, *, data_root: str, cache_dir: str | Path, seed: int, k: int,
              device, run_student_code: bool = False, timeout_s: float = sandbox.TIMEOUT_S,
              memory_mb: int = sandbox.MEMORY_MB, progress: bool = False) -> tuple[str, dict | None]:
    """(status, result) for one hand-in: status "graded", "up to date" or NEEDS_CODE (result None);
    a broken hand-in raises UserError with the reason."""
    name = check_name(folder.name)
    paths = find_submission(folder)
    if paths["custom"] and not run_student_code:
        return NEEDS_CODE, None
    if not paths["custom"]:
        config.load(paths["config"], migrate=True)  # a valid config (custom: checked in the child); older key names read
    handed = [paths[p] for p in ("checkpoint", "config", "model_py", "meta") if paths[p] is not None]
    images = load_digits(paths["samples"]) if paths["samples"] else None
    files = {p.name: sha256_file(p) for p in handed}
    key = {"files_sha256": files,
           "samples_sha256": None if images is None else hashlib.sha256(images.tobytes()).hexdigest(),
           "grader_seed_sha256": hashlib.sha256(str(seed).encode()).hexdigest()[:16], "checked": k,
           "student_code": paths["custom"], "rules": RULES}
    seed = hand_in_seed(seed, files)
    out = results / f"{name}.json"
    if out.is_file():
        try:
            old = json.loads(out.read_text())
            if old.get("grading") == key:
                return "up to date", old
        except json.JSONDecodeError:
            pass
    start = time.perf_counter()
    child = {}

    def in_child(meta, n, indices=None):
        job = {"config": None if meta else str(paths["config"].resolve()), "meta": meta, "seed": seed, "n": n,
               "indices": None if indices is None else [int(i) for i in indices]}
        made, report = sandbox.generate_in_child(paths["model_py"], paths["checkpoint"], job,
                                                 n=n if indices is None else len(indices), timeout_s=timeout_s,
                                                 memory_mb=memory_mb)
        child.update(network=report.get("network"))
        return made, report.get("settings", {})

    if images is not None:
        meta = _read_meta(paths["meta"])
        regen = (lambda idx: in_child(meta, len(images), idx)[0]) if paths["custom"] else None
        check = provenance.verify(paths["checkpoint"], meta, images, k=k, seed=seed, device=device, regen=regen)
        how = f"handed in; {check['matched']} of {check['checked']} regenerated"
        src = paths["samples"]
    else:
        n = REQUIRED_SAMPLES
        if paths["custom"]:
            images, meta = in_child(None, n)
        else:
            try:
                images, meta = regenerate(paths["checkpoint"], paths["config"], None, seed=seed, n=n, device=device)
            except (ValueError, TypeError, KeyError, RuntimeError) as e:
                raise UserError(f"the checkpoint does not sample ({str(e)[:100]})") from None
        check = {"verified": True, "by_construction": True, "seconds": round(time.perf_counter() - start, 2)}
        how = "made by the grader"
        src = paths["checkpoint"]
    meta = {**meta, **stored_conditioning(paths["checkpoint"]), **({} if paths["meta"] else {"seed": "grader's"})}
    result = score_digits(images, name, src, meta, data_root=data_root, cache_dir=cache_dir, progress=progress)
    grid = ensure_dir(results / "grids") / f"{name}.png"
    save_grid(grid, images[:100], nrow=10)
    result = _with_rank({**result, "verified": check["verified"], "provenance": check, "samples_from": how,
                         "student_code": paths["custom"], **({"sandbox": child} if paths["custom"] else {}),
                         "grading": key, "grid": str(grid), "submission": str(folder),
                         "grading_seconds": round(time.perf_counter() - start, 2)})
    write_json(out, result)
    return "graded", result


def _drop_stale(path: Path) -> None:
    """Remove a hand-in's earlier result (one the grader wrote: it has a "grading" key)."""
    try:
        if path.is_file() and "grading" in json.loads(path.read_text()):
            path.unlink()
    except (json.JSONDecodeError, OSError):
        pass


def grade_submissions(root: Path, results: Path, **kwargs) -> tuple[list[tuple[str, str, dict]], list[str]]:
    """Grade every folder of `root`: ([(name, status, result or None)], [warnings])."""
    if not root.is_dir():
        raise UserError(f"submissions folder {root} not found; it should hold one folder per student")
    done, warnings = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            status, result = grade_one(folder, results, **kwargs)
        except UserError as e:
            warnings.append(f"warning: not graded {folder} ({e})")
            status, result = None, None
        if result is None:  # an earlier grade of this folder no longer stands
            _drop_stale(results / f"{folder.name}.json")
        if status is not None:
            done.append((folder.name, status, result))
    return done, warnings
