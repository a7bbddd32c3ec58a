"""Train the LeNet feature network used by evaluate.py, reproducibly from a seed, and write
metrics/weights/lenet_mnist.pt (float16 state dict) and print its test accuracy and sha256.

    python scripts/train_feature_net.py [--epochs 8] [--seed 0] [--out metrics/weights/lenet_mnist.pt]

Trained on the MNIST training split only (random shifts of up to 2 pixels), Adam with a one-cycle
lr; the test split is used only to report accuracy.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from dataio.mnist import load_mnist  # noqa: E402
from common.errors import ArgumentParser, exit_on_user_error  # noqa: E402
from common.fileio import atomic_path, write_json  # noqa: E402
from common.progress import bar as progress_bar  # noqa: E402
from metrics.features import WEIGHTS, LeNet, extract, load_lenet, preprocess, sha256  # noqa: E402


def shift(x: torch.Tensor, g: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Translate each image by up to max_shift pixels (zero fill)."""
    n = x.shape[0]
    pad = F.pad(x, (max_shift,) * 4)
    dx, dy = (torch.randint(0, 2 * max_shift + 1, (2, n), generator=g)).tolist()
    return torch.stack([pad[i, :, dy[i]:dy[i] + 28, dx[i]:dx[i] + 28] for i in range(n)])


@exit_on_user_error
def main():
    p = ArgumentParser(description="train the FID feature network")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data_root", default="data")
    p.add_argument("--out", default=str(WEIGHTS))
    args = p.parse_args()
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    train_x, train_y = load_mnist(args.data_root, train=True)
    test_x, test_y = load_mnist(args.data_root, train=False)
    x_all = preprocess(train_x)
    net = LeNet()
    steps = args.epochs * (len(x_all) // args.batch_size)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps)
    bar = progress_bar(steps, "lenet", "steps")
    for epoch in range(args.epochs):
        perm = torch.randperm(len(x_all), generator=g)
        for b in range(len(x_all) // args.batch_size):
            idx = perm[b * args.batch_size:(b + 1) * args.batch_size]
            x = shift(x_all[idx], g)
            loss = F.cross_entropy(net(x), train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{loss.item():.4f}")
    bar.close()
    state = {k: v.half() for k, v in net.state_dict().items()}
    with atomic_path(args.out) as tmp, open(tmp, "wb") as f:
        torch.save(state, f)  # a file object, so the archive name (and the sha256) does not depend on the path
    _, probs = extract(load_lenet(Path(args.out)), test_x.numpy())
    acc = float((probs.argmax(1) == test_y.numpy()).mean())
    digest = sha256(Path(args.out))
    write_json(Path(args.out).with_suffix(".json"), {"sha256": digest, "test_accuracy": acc, "epochs": args.epochs,
                                                     "seed": args.seed, "lr": args.lr, "batch_size": args.batch_size})
    print(f"test accuracy {acc * 100:.2f}% ({len(test_y)} images); wrote {args.out} sha256 {digest}")


if __name__ == "__main__":
    main()
