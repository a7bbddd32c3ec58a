"""Build the course task's files from MNIST: digits with the center 8x8 ([10:18, 10:18]) set to 0.

    python scripts/make_course_data.py --out data/course [--data_root data] [--n_test 10000]

Writes OUT/train_data.npz (the MNIST training split: complete digits, key images, plus their
masked copies under masked), OUT/test_data.npz (masked test-split digits, key images) and
OUT/test_truth.npz (the same test digits complete, key images), all uint8 N x 28 x 28. Training
uses the training split only; the test files come from the test split.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataio import masks  # noqa: E402
from dataio.images import save_npz  # noqa: E402
from dataio.mnist import load_mnist  # noqa: E402
from common.errors import ArgumentParser, UserError, exit_on_user_error  # noqa: E402
from common.fileio import ensure_dir  # noqa: E402


def masked(images):
    """uint8 (N, 28, 28) with the course's hole set to 0."""
    return images.masked_fill(masks.make("center8", len(images))[:, 0], 0).numpy()


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder for train_data.npz, test_data.npz, test_truth.npz")
    p.add_argument("--data_root", default="data", help="torchvision MNIST root")
    p.add_argument("--n_test", type=int, default=10_000, help="use the first N test digits")
    args = p.parse_args(argv)
    if not 1 <= args.n_test <= 10_000:
        raise UserError(f"--n_test must be in 1..10000, got {args.n_test}")
    out = ensure_dir(args.out)
    train = load_mnist(args.data_root, train=True)[0]
    test = load_mnist(args.data_root, train=False)[0][:args.n_test]
    save_npz(out / "train_data.npz", images=train.numpy(), masked=masked(train))
    save_npz(out / "test_data.npz", images=masked(test))
    save_npz(out / "test_truth.npz", images=test.numpy())
    print(f"wrote {out}/train_data.npz ({len(train)}), test_data.npz and test_truth.npz ({len(test)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
