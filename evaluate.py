"""Evaluate generated digits against the MNIST test set.

    python evaluate.py --student_name alice [--samples PATH]

Reads outputs/NAME/samples/ (PNG files), else outputs/NAME/samples.npz, or --samples FOLDER_OR_NPZ,
and writes results/NAME.json: FID (with its bootstrap spread and the measured floor), precision/
recall, density/coverage, KID, the class histogram and the mean classifier confidence.
"""
import datetime
import hashlib
import json
import sys
from pathlib import Path

from dataio.images import load_digits
from engine.checkpoint import versions
from engine.errors import ArgumentParser, UserError, exit_on_user_error
from engine.fileio import check_name, ensure_dir, write_json
from metrics import features, inception
from metrics.evaluation import REQUIRED_SAMPLES, evaluate_features, reference


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
    p.add_argument("--student_name", required=True)
    p.add_argument("--samples", help="a folder of 28x28 PNGs or an npz (default: outputs/NAME/samples/)")
    p.add_argument("--feature_net", default="lenet", choices=("lenet", "inception"),
                   help="lenet: the shipped MNIST classifier (see README); inception: pytorch-fid's weights")
    p.add_argument("--inception_weights", help=f"path of {inception.WEIGHTS_NAME} (or set ${inception.ENV_VAR})")
    p.add_argument("--data_root", default="data", help="torchvision MNIST root")
    p.add_argument("--cache_dir", default="data/fid_cache", help="where reference statistics are cached")
    p.add_argument("--out_root", default="outputs")
    p.add_argument("--results", default="results")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    name = check_name(args.student_name)
    src = Path(args.samples) if args.samples else find_samples(name, Path(args.out_root))
    images = load_digits(src)
    results_dir = ensure_dir(args.results)

    progress = not args.no_progress
    lenet = features.load_lenet()
    if args.feature_net == "lenet":
        sha = features.sha256()
        extract = lambda imgs: features.extract(lenet, imgs, progress=progress)[0]
    else:
        path = inception.weights_path(args.inception_weights)
        net = inception.load_inception(path)
        sha = features.sha256(path)
        extract = lambda imgs: inception.extract(net, imgs, progress=progress)
    lenet_feats, probs = features.extract(lenet, images, progress=progress)
    feats = lenet_feats if args.feature_net == "lenet" else extract(images)
    ref = reference(extract, args.data_root, ensure_dir(args.cache_dir), sha)
    try:
        metrics = evaluate_features(feats, probs, ref)
    except ValueError as e:
        raise UserError(f"{src}: {e}; check the images") from None

    meta_path = src.parent / "samples.json"  # written by sample.py beside samples/ and samples.npz
    from_sample_py = src.name in ("samples", "samples.npz") and meta_path.is_file()
    sampling = json.loads(meta_path.read_text()) if from_sample_py else None
    n = len(images)
    result = {
        "student_name": name, "num_samples": n, "ranked": n == REQUIRED_SAMPLES,
        "not_ranked_reason": None if n == REQUIRED_SAMPLES else f"{n} samples; exactly {REQUIRED_SAMPLES} are required",
        **metrics,
        "samples": str(src), "samples_sha256": hashlib.sha256(images.tobytes()).hexdigest(),
        "sampling": sampling, "feature_net": args.feature_net, "feature_net_sha256": sha,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "versions": versions(),
    }
    write_json(results_dir / f"{name}.json", result)
    print(f"{name}: FID {metrics['fid']:.3f} +- {metrics['fid_bootstrap_std']:.3f} "
          f"(floor {metrics['fid_floor_mean']:.3f}, x{metrics['fid_over_floor']:.2f}), "
          f"precision {metrics['precision']:.3f}, recall {metrics['recall']:.3f}, "
          f"KID {metrics['kid_mean']:.5f}, {n} samples -> {results_dir / (name + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
