"""Write seed 002's folder pair (occluded_images/occluded_NAME, original_images/NAME) from MNIST
or from any folder of images, with holes from dataio/masks.py.

    python scripts/make_folder_pairs.py --out data/pairs --source mnist [--n 2000] [--size 28] [--channels 1]
    python scripts/make_folder_pairs.py --out data/pairs_rgb --source PHOTOS/ --size 128 --channels 3
        [--mask center|box|half|pixels] [--mask_size 12] [--seed 0]

The hole is painted mid-gray (128) rather than black: seed 002 finds the mask where the two images
differ, and MNIST's background is black, so a black hole would hide most of itself. Train on the
result with configs/completion_folder.yaml (data.occluded_dir / data.original_dir).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from dataio import folder, masks  # noqa: E402
from dataio.mnist import load_mnist  # noqa: E402
from common.errors import ArgumentParser, UserError, exit_on_user_error  # noqa: E402

FILL = 128


def source_images(source: str, n: int, size: int, channels: int, data_root: str) -> np.ndarray:
    """uint8 (N, size, size) or (N, size, size, 3)."""
    if source == "mnist":
        imgs = [Image.fromarray(a) for a in load_mnist(data_root, train=True)[0][:n].numpy()]
    else:
        paths = [p for p in sorted(Path(source).glob("*")) if p.suffix.lower() in folder.EXTENSIONS][:n]
        if not paths:
            raise UserError(f"no images ({', '.join(folder.EXTENSIONS)}) in {source}; pass --source mnist or a folder")
        imgs = []
        for p in paths:
            try:
                with Image.open(p) as im:
                    imgs.append(im.copy())
            except Exception as e:
                raise UserError(f"{p} is not a readable image ({type(e).__name__})") from None
    mode = "L" if channels == 1 else "RGB"
    return np.stack([np.asarray(im.convert(mode).resize((size, size), Image.BILINEAR)) for im in imgs])


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--source", default="mnist", help="mnist (the training split) or a folder of images")
    p.add_argument("--n", type=int, default=2000, help="at most this many images")
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--channels", type=int, default=1, choices=(1, 3))
    p.add_argument("--mask", default="center", choices=masks.MASKS)
    p.add_argument("--mask_size", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data_root", default="data")
    args = p.parse_args(argv)
    if args.n < 1 or args.size < 8:
        raise UserError(f"--n must be >= 1 and --size >= 8, got {args.n} and {args.size}")
    images = source_images(args.source, args.n, args.size, args.channels, args.data_root)
    hole = masks.make(args.mask, len(images), size=args.mask_size, hw=(args.size, args.size),
                      generator=torch.Generator().manual_seed(args.seed))[:, 0].numpy()
    folder.write_pairs(Path(args.out), images, hole, fill=FILL)
    print(f"wrote {len(images)} pairs to {args.out}/occluded_images and {args.out}/original_images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
