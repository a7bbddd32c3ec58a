"""Evaluate generated or completed digits against the MNIST test set.

    python evaluate.py --student_name alice [--samples PATH] [--reference train]
    python evaluate.py --student_name alice --task inpaint [--n_eval 500] [--seed 42] [--samples NPZ]
    python evaluate.py --task course --pred submission.npz --target truth.npz [--student_name alice]

generate reads outputs/NAME/samples/ (PNG files), else outputs/NAME/samples.npz, or --samples
FOLDER_OR_NPZ, and writes results/NAME.json: FID (with its bootstrap spread and the measured floor),
precision/recall, density/coverage, KID, the class histogram and the mean classifier confidence.
--reference train scores against 10,000 training digits instead (results/reference_train/NAME.json),
so that settings are chosen without looking at the test digits the leaderboard ranks on.
Two-moons samples (an npz with "points") get MMD, energy distance and sliced Wasserstein-1 against
the 5,000-point target instead, each also as a multiple of the sampling floor.
inpaint reads outputs/NAME/inpaint/completions.npz (written by sample.py --task inpaint) and writes
results/NAME_inpaint.json: MSE, L1, PSNR and SSIM on the hole and on the whole image, in [0, 1]
units, over the first --n_eval test digits that --seed picks. course prints the course's score, the
MSE over the masked 8x8 center pixels in [0, 1] units (and writes results/NAME_course.json).
"""
import datetime
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

from dataio import masks
from dataio.images import load_digits, read_npz
from dataio.mnist import EVAL_SEED, eval_indices, load_mnist
from tasks import moons
from common.runtime import versions
from grading.course import center_errors, course_images
from common.errors import ArgumentParser, UserError, exit_on_user_error
from common.fileio import check_name, ensure_dir, write_json
from grading.submissions import label_agreement, score_digits
from metrics import features, inception
from metrics.evaluation import fid_with_spread, training_floor, training_reference
from metrics import inpainting as inpaint_metrics


def find_samples(name: str, out_root: Path) -> Path:
    folder, npz = out_root / name / "samples", out_root / name / "samples.npz"
    if folder.is_dir():
        return folder
    if npz.is_file():
        return npz
    raise UserError(f"no samples for {name}: neither {folder}/ nor {npz} exists; run sample.py first or pass --samples")


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--student_name", help="whose outputs to evaluate (required unless --task course)")
    p.add_argument("--task", default="generate", choices=("generate", "inpaint", "course"))
    p.add_argument("--samples", help="generate: a folder of 28x28 PNGs or an npz (default: outputs/NAME/samples/); "
                   "inpaint: a completions npz (default: outputs/NAME/inpaint/completions.npz)")
    p.add_argument("--n_eval", type=int, default=500, help="inpaint: test digits to score")
    p.add_argument("--seed", type=int, default=EVAL_SEED, help="inpaint: which test digits (as sample.py --seed)")
    p.add_argument("--pred", help="course: the submission npz")
    p.add_argument("--target", help="course: the npz of true complete images")
    p.add_argument("--feature_net", default="lenet", choices=("lenet", "inception"),
                   help="lenet: the shipped MNIST classifier (see README); inception: pytorch-fid's weights")
    p.add_argument("--inception_weights", help=f"path of {inception.WEIGHTS_NAME} (or set ${inception.ENV_VAR})")
    p.add_argument("--data_root", default="data", help="torchvision MNIST root")
    p.add_argument("--cache_dir", default="data/fid_cache", help="where reference statistics are cached")
    p.add_argument("--reference", default="test", choices=("test", "train"),
                   help="generate: test (the leaderboard's score, results/NAME.json) or train: FID against 10,000 "
                        "training digits (results/reference_train/NAME.json), for choosing settings without "
                        "tuning to the test digits")
    p.add_argument("--out_root", default="outputs")
    p.add_argument("--results", default="results")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.task == "course":
        return course(args)
    if not args.student_name:
        raise UserError("--student_name is required (whose outputs to evaluate)")
    name = check_name(args.student_name)
    if args.task == "inpaint":
        return evaluate_inpainting(args, name)
    src = Path(args.samples) if args.samples else find_samples(name, Path(args.out_root))
    if src.suffix == ".npz" and src.is_file():
        arrays = read_npz(src)
        if "points" in arrays:
            return evaluate_points(args, name, src, arrays)
    images = load_digits(src)
    meta_path = src.parent / "samples.json"  # written by sample.py beside samples/ and samples.npz
    from_sample_py = src.name in ("samples", "samples.npz") and meta_path.is_file()
    sampling = json.loads(meta_path.read_text()) if from_sample_py else None
    if args.reference == "train":
        return against_training_digits(args, name, src, images, sampling)
    results_dir = ensure_dir(args.results)
    result = score_digits(images, name, src, sampling,
                          data_root=args.data_root, cache_dir=args.cache_dir, feature_net=args.feature_net,
                          inception_weights=args.inception_weights, progress=not args.no_progress)
    write_json(results_dir / f"{name}.json", result)
    r = result
    print(f"{name}: FID {r['fid']:.3f} +- {r['fid_bootstrap_std']:.3f} "
          f"(floor {r['fid_floor_mean']:.3f}, x{r['fid_over_floor']:.2f}), "
          f"precision {r['precision']:.3f}, recall {r['recall']:.3f}, KID {r['kid_mean']:.5f}, "
          f"copies {r['copy_share']:.1%}, near-duplicates {r['near_duplicate_share']:.1%}, "
          f"{len(images)} samples -> {results_dir / (name + '.json')}")
    if "label_agreement" in r:
        print(f"label agreement {r['label_agreement']:.1%}: the shipped classifier reads the digit each sample was "
              f"asked for (the test digits' own: {r['label_agreement_test']:.1%})")
    if not r["ranked"]:
        print(f"not ranked: {r['not_ranked_reason']}")
    return 0


def against_training_digits(args, name: str, src: Path, images: np.ndarray, sampling: dict | None) -> int:
    """FID against 10,000 training digits (the test digits stay unseen until the final score), beside the
    FID of as many real training digits scored the same way, and the label agreement."""
    if len(images) < 20:
        raise UserError(f"{src} holds {len(images)} digits; FID needs at least 20 (5,000 for a final score)")
    lenet = features.load_lenet()
    feats, probs = features.extract(lenet, images, progress=not args.no_progress)
    ref = training_reference(args.data_root)
    fid, fid_std = fid_with_spread(feats, ref)
    real = training_floor(args.data_root, len(images), ref, lenet)
    result = {"student_name": name, "reference": "train", "num_samples": len(images), "fid": fid,
              "fid_bootstrap_std": fid_std, "fid_real_digits": real, "fid_over_real": fid / real,
              **label_agreement(probs, sampling), "samples": str(src), "sampling": sampling,
              "feature_net_sha256": features.sha256(), "versions": versions()}
    out = ensure_dir(Path(args.results) / "reference_train") / f"{name}.json"
    write_json(out, result)
    print(f"{name}: FID against training digits {fid:.3f} +- {fid_std:.3f} ({len(images)} real training digits "
          f"score {real:.3f}: x{fid / real:.2f})" + (f", label agreement {result['label_agreement']:.1%}"
                                                    if "label_agreement" in result else "") + f" -> {out}")
    return 0


def evaluate_points(args, name: str, src: Path, arrays: dict) -> int:
    points, noise = moons.load_samples(src, arrays)
    meta_path = src.parent / "samples.json"
    out = ensure_dir(args.results) / f"{name}.json"
    metrics = moons.write_result(out, name, points, noise, ensure_dir(args.cache_dir), str(src),
                                 json.loads(meta_path.read_text()) if meta_path.is_file() else None)
    print(f"{moons.summary(name, metrics)}, {len(points)} points -> {out}")
    return 0


def load_completions(path: Path) -> dict:
    """images uint8 (N, 28, 28), indices (N,), masks bool (N, 28, 28) from sample.py --task inpaint."""
    if not path.is_file():
        raise UserError(f"{path} not found; run sample.py --task inpaint first or pass --samples COMPLETIONS.npz")
    arrays = read_npz(path, fix="rerun sample.py --task inpaint")
    missing = [k for k in ("images", "indices", "masks") if k not in arrays]
    if missing:
        raise UserError(f"{path} has no {', '.join(missing)}; completions need images, indices and masks "
                        "(as sample.py --task inpaint writes them)")
    images, indices, mask = arrays["images"], arrays["indices"], arrays["masks"]
    n = len(images)
    if images.shape != (n, 28, 28) or images.dtype != np.uint8:
        raise UserError(f"{path}: images are {images.dtype} {images.shape}; expected uint8 (N, 28, 28)")
    if mask.shape != (n, 28, 28) or indices.shape != (n,):
        raise UserError(f"{path}: masks {mask.shape} and indices {indices.shape} do not match {n} images")
    return {"images": images, "indices": indices, "masks": mask.astype(bool)}


def evaluate_inpainting(args, name: str) -> int:
    path = Path(args.samples) if args.samples else Path(args.out_root) / name / "inpaint" / "completions.npz"
    c = load_completions(path)
    n = args.n_eval
    if len(c["images"]) < n:
        raise UserError(f"{path} holds {len(c['images'])} completions, fewer than --n_eval {n}; "
                        f"rerun sample.py --task inpaint --n {n}")
    expected = eval_indices(n, args.seed).numpy()
    if not np.array_equal(c["indices"][:n], expected):
        raise UserError(f"{path} completes other test digits than --seed {args.seed} picks; rerun sample.py "
                        f"--task inpaint --seed {args.seed} so every entry is scored on the same digits")
    originals = load_mnist(args.data_root, train=False)[0][expected].numpy()
    pred, mask = c["images"][:n], c["masks"][:n]
    if not mask.reshape(n, -1).any(1).all() or mask.reshape(n, -1).all(1).any():
        raise UserError(f"{path}: some masks leave no hole or no context; they cannot be scored")
    changed = int((pred != originals)[~mask].sum())
    if changed:
        raise UserError(f"{path}: {changed} known (unmasked) pixels differ from the test images; completions must "
                        "keep the context exactly")
    to01 = lambda a: torch.from_numpy(a).double().div(255).unsqueeze(1)
    values = inpaint_metrics.per_image(to01(pred), to01(originals), torch.from_numpy(mask).unsqueeze(1))
    metrics = inpaint_metrics.summarize(values)
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    results_dir = ensure_dir(args.results)
    result = {"student_name": name, "task": "inpaint", "n_eval": n, "seed": args.seed,
              "mask": _mask_label(meta, c["masks"], args.seed), "method": meta.get("method", "unknown"), **metrics,
              "hole_mse_per_image": values["hole_mse"].tolist(),  # for paired comparisons (scripts/inpaint_table.py)
              "seconds_per_image": meta.get("seconds_per_image"), "completions": str(path),
              "completions_sha256": hashlib.sha256(pred.tobytes()).hexdigest(), "sampling": meta or None,
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "versions": versions()}
    out = results_dir / f"{name}_inpaint.json"
    write_json(out, result)
    print(f"{name} ({result['mask']}, {result['method']}): hole MSE {metrics['hole_mse']:.5f} "
          f"+- {metrics['hole_mse_sem']:.5f}, PSNR {metrics['hole_psnr']:.2f} dB, L1 {metrics['hole_l1']:.4f}, "
          f"SSIM {metrics['hole_ssim']:.4f} on {n} test digits -> {out}")
    return 0


def _mask_label(meta: dict, handed: np.ndarray, seed: int) -> str:
    """e.g. "center 12": the mask kind, checked by drawing the masks of that kind again as sample.py
    does (seed `seed`, every completion of the file) and comparing them with the ones handed in; a
    claim that does not match, or none, is "custom" (ranked only beside other custom masks)."""
    if "mask" not in meta:
        return "custom"
    kind, size = masks.resolve(meta["mask"], meta.get("mask_size", 0))
    try:
        drawn = masks.make(meta["mask"], len(handed), size=meta.get("mask_size", 0), generator=torch.Generator().manual_seed(seed),
                           fraction=meta.get("mask_fraction", 0.5))[:, 0].numpy()
    except (ValueError, TypeError, UserError):
        return "custom"
    if not np.array_equal(drawn, handed):
        return f"custom (not the {meta['mask']} masks completions.json names)"
    return {"center": f"center {size}", "box": f"box {size}", "pixels": f"pixels {meta.get('mask_fraction')}"
            }.get(kind, kind)


def course(args) -> int:
    """The course score: MSE over the masked 8x8 center pixels, images scaled to [0, 1]."""
    if not (args.pred and args.target):
        raise UserError("--task course needs --pred submission.npz and --target truth.npz")
    pred, target = (course_images(Path(p)) for p in (args.pred, args.target))
    if pred.shape != target.shape:
        raise UserError(f"{args.pred} holds {pred.shape[0]} images and {args.target} {target.shape[0]}; "
                        "they must match one to one")
    mse = float(center_errors(pred, target).mean())
    print(f"course score (MSE on the 8x8 center, [0, 1] units): {mse:.6f} over {len(pred)} images")
    if args.student_name:
        out = ensure_dir(args.results) / f"{check_name(args.student_name)}_course.json"
        write_json(out, {"student_name": args.student_name, "task": "course", "mse_center8": mse,
                         "num_images": len(pred), "pred": args.pred, "target": args.target})
        print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
