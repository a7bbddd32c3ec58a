"""Seed 002's completion network, its folder-pair data, and training it through train.py."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from dataio import folder, masks
from diffusion.schedule import from_config
from engine import config
from tasks import for_config
from common.errors import UserError
from engine.trainer import RunPaths, train
from models.completion import CompletionNet, ConvLSTMCell, GatedLayer
from models.convmlp import ConvMLP
from tasks import build_network
from tests.conftest import DATA_ROOT, REPO, assert_user_error, run


@pytest.mark.parametrize("in_channels,image_channels,size", [(2, 1, 28), (4, 3, 128)])
def test_shapes_for_mnist_and_rgb_inputs(in_channels, image_channels, size):
    net = CompletionNet(in_channels=in_channels, image_channels=image_channels, hidden=8, depth=2)
    out = net(torch.randn(2, in_channels, size, size))
    assert out.shape == (2, image_channels, size, size) and out.min() >= -1 and out.max() <= 1


def test_convmlp_maps_inputs_to_a_whole_image_and_needs_a_size_divisible_by_4():
    model = ConvMLP(image_channels=3, in_channels=6, image_size=32, channels=4, width=16, depth=2)
    x = torch.randn(5, 6, 32, 32)
    assert model(x, torch.zeros(5)).shape == (5, 3, 32, 32)
    x2 = x.clone()
    x2[:, :, 0, 0] += 10  # one corner pixel reaches every output pixel through the MLP
    model.double()
    assert ((model(x2.double()) - model(x.double())).abs() > 0).all()
    with pytest.raises(ValueError, match="divisible by 4"):
        ConvMLP(image_size=30)


def test_gated_layer_is_tanh_bn_times_sigmoid_bn():
    torch.manual_seed(0)
    layer = GatedLayer(3).eval()
    for bn in (layer.bn_f, layer.bn_g):
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2), bn.weight.data.uniform_(0.5, 2)
        bn.bias.data.uniform_(-1, 1)
    x = torch.randn(2, 3, 5, 5)

    def bn(z, b):
        return (z - b.running_mean.view(1, -1, 1, 1)) / (b.running_var.view(1, -1, 1, 1) + b.eps).sqrt() \
            * b.weight.view(1, -1, 1, 1) + b.bias.view(1, -1, 1, 1)
    f = torch.tanh(bn(F.conv2d(x, layer.conv_f.weight, layer.conv_f.bias, padding=1), layer.bn_f))
    g = torch.sigmoid(bn(F.conv2d(x, layer.conv_g.weight, layer.conv_g.bias, padding=1), layer.bn_g))
    assert torch.allclose(layer(x), f * g, atol=1e-6)


def test_convlstm_cell_matches_the_equations():
    torch.manual_seed(0)
    cell = ConvLSTMCell(2, 3)
    x, h, c = torch.randn(1, 2, 4, 4), torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)
    z = F.conv2d(torch.cat([x, h], 1), cell.conv.weight, cell.conv.bias, padding=1)
    i, f, o, g = z[:, 0:3], z[:, 3:6], z[:, 6:9], z[:, 9:12]
    c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_next = torch.sigmoid(o) * torch.tanh(c_next)
    got_h, got_c = cell(x, (h, c))
    assert torch.allclose(got_c, c_next, atol=1e-6) and torch.allclose(got_h, h_next, atol=1e-6)
    h0, c0 = cell.init_hidden(2, (4, 4))
    assert h0.shape == c0.shape == (2, 3, 4, 4) and not h0.any()


def _rgb_pairs(root, n=8, size=32):
    rng = np.random.default_rng(0)
    images = rng.choice([0, 255], size=(n, size, size, 3)).astype(np.uint8)  # never near the 128 fill
    holes = np.zeros((n, size, size), bool)
    for i in range(n):
        holes[i, 4 + i:12 + i, 6:16] = True
    folder.write_pairs(root, images, holes, fill=128)
    return images, holes


def test_folder_pairs_match_names_and_masks(tmp_path):
    images, holes = _rgb_pairs(tmp_path)
    (tmp_path / "original_images" / "00003.png").rename(tmp_path / "original_images" / "00003b.png")
    with pytest.raises(UserError, match="00003"):
        folder.pair_names(tmp_path / "occluded_images", tmp_path / "original_images")
    (tmp_path / "original_images" / "00003b.png").rename(tmp_path / "original_images" / "00003.png")
    pairs = folder.pair_names(tmp_path / "occluded_images", tmp_path / "original_images")
    assert [(a.name, b.name) for a, b in pairs][:2] == [("occluded_00000.png", "00000.png"),
                                                        ("occluded_00001.png", "00001.png")]
    originals, mask = folder.load_pairs(tmp_path / "occluded_images", tmp_path / "original_images", 32, 3, 0.05)
    assert originals.shape == (8, 3, 32, 32) and mask.shape == (8, 1, 32, 32)
    assert np.array_equal(originals.permute(0, 2, 3, 1).numpy(), images)
    assert np.array_equal(mask[:, 0].numpy(), holes)
    gray, _ = folder.load_pairs(tmp_path / "occluded_images", tmp_path / "original_images", 16, 1, 0.05)
    assert gray.shape == (8, 1, 16, 16), "resized and converted"
    (tmp_path / "original_images" / "00005.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="00005.png is not a readable image"):
        folder.load_pairs(tmp_path / "occluded_images", tmp_path / "original_images", 32, 3, 0.05)


def test_folder_config_trains_with_three_row_panels(tmp_path):
    _rgb_pairs(tmp_path / "pairs")
    cfg = config.load(REPO / "configs" / "completion_folder.yaml", [
        f"data.occluded_dir={tmp_path / 'pairs' / 'occluded_images'}", "model.channels=8", "model.depth=2",
        f"data.original_dir={tmp_path / 'pairs' / 'original_images'}", "data.image_size=32",
        "train.steps=4", "train.sample_every=2", "train.log_every=2", "train.lr=3e-3"])
    assert train(cfg, "fold", paths=RunPaths.for_name("fold", tmp_path), progress=False) == "done"
    panel = Image.open(tmp_path / "outputs" / "fold" / "inpaint" / "panel_0000004.png")
    assert panel.mode == "RGB" and panel.size == ((8 * 34 + 2) * 2, (3 * 34 + 2) * 2), "3 rows of 8 pairs"
    log = (tmp_path / "checkpoints" / "fold" / "log.tsv").read_text().splitlines()
    assert log[0].split("\t") == ["step", "epoch", "loss", "lr", "grad_norm", "images_per_s", "hole_mse", "hole_l1",
                                   "ssim", "train_s", "fid", "val_hole_mse"] and len(log) == 3
    assert all(row.split("\t")[8] for row in log[1:]), "SSIM logged"


def test_the_completion_network_lowers_its_loss_on_one_batch():
    cfg = config.load(REPO / "configs" / "completion_mnist.yaml", ["model.channels=16", "model.depth=2"])
    torch.manual_seed(0)
    model = build_network(cfg)
    x0 = torch.rand(8, 1, 28, 28) * 2 - 1
    x0[..., :, 14:] = x0[..., :, :14].flip(-1)
    m = masks.make("center", 8, size=8)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss, parts = for_config(cfg).masked_loss(model, cfg, from_config(cfg.diffusion), x0, m)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0] and set(parts) == {"mse", "l1", "ssim"}


def test_make_folder_pairs_from_mnist_and_a_folder(tmp_path):
    proc = run("scripts/make_folder_pairs.py", "--out", tmp_path / "m", "--source", "mnist", "--n", "5",
               "--data_root", DATA_ROOT, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    orig, mask = folder.load_pairs(tmp_path / "m" / "occluded_images", tmp_path / "m" / "original_images", 28, 1, 0.05)
    assert orig.shape == (5, 1, 28, 28) and (mask.flatten(1).sum(1) > 100).all(), "the 144-pixel hole is found"
    proc = run("scripts/make_folder_pairs.py", "--out", tmp_path / "r", "--source", tmp_path / "m" / "original_images",
               "--size", "64", "--channels", "3", "--mask", "box", "--mask_size", "20", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert Image.open(tmp_path / "r" / "occluded_images" / "occluded_00004.png").size == (64, 64)
    assert_user_error(run("scripts/make_folder_pairs.py", "--out", tmp_path / "x", "--source", tmp_path / "none",
                          cwd=tmp_path), "no images")


def test_completion_config_errors(tmp_path):
    cfg = REPO / "configs" / "completion_mnist.yaml"
    base = ["train.py", "--config", cfg, "--student_name", "c"]
    assert_user_error(run(*base, "task.name=inpaint", cwd=tmp_path), "model.name", "no time input")
    assert_user_error(run(*base, "data.channels=3", cwd=tmp_path), "data.name")
    assert_user_error(run("train.py", "--config", REPO / "configs" / "course_convmlp.yaml", "--student_name", "c",
                          "task.name=inpaint", cwd=tmp_path), "model.name", "convmlp network has no time input")
    assert_user_error(run("train.py", "--config", REPO / "configs" / "completion_folder.yaml", "--student_name", "f",
                          "data.occluded_dir=nowhere", cwd=tmp_path), "nowhere not found")


def test_validation_split_is_fixed_disjoint_and_complete():
    from dataio.mnist import validation_split

    keep, val = validation_split(1000, 100)
    assert len(val) == 100 and len(keep) == 900 and not set(keep.tolist()) & set(val.tolist())
    assert sorted(keep.tolist() + val.tolist()) == list(range(1000)) and keep.tolist() == sorted(keep.tolist())
    again_keep, again_val = validation_split(1000, 100)
    assert torch.equal(val, again_val) and torch.equal(keep, again_keep)
    assert torch.equal(validation_split(1000, 50)[1], val[:50]), "a smaller split is a prefix of a larger one"
    assert len(validation_split(1000, 0)[1]) == 0
    with pytest.raises(UserError, match="data.val_size"):
        validation_split(1000, 1000)


def test_validation_digits_never_reach_a_batch_and_best_pt_keeps_the_best(tmp_path, monkeypatch):
    """Every batch is drawn from the training split alone; the validation hole MSE is logged and
    best.pt holds the step that scored lowest."""
    from dataio.mnist import load_mnist, validation_split
    from engine import checkpoint

    from tasks.complete import CompleteTask

    seen = []
    real = CompleteTask.loss

    def spy(self, model, cfg, sched, data, idx, *rest):
        seen.append((data.examples, idx.clone()))
        return real(self, model, cfg, sched, data, idx, *rest)

    monkeypatch.setattr(CompleteTask, "loss", spy)
    cfg = config.load(REPO / "configs" / "regression.yaml", [
        f"data.root={DATA_ROOT}", "model.channels=8", "model.channel_mult=[1,2]",
        "model.attn_levels=[]", "train.batch_size=16", "train.steps=9", "train.val_every=3", "train.log_every=9",
        "train.warmup_steps=1", "train.sample_every=0", "train.ema_decay=0.5", "task.mask=center8",
        "sample.batch_size=64", "data.val_size=64", "data.shift=2", "data.rotate=10", "data.scale=0.1"])
    assert train(cfg, "val", paths=RunPaths.for_name("val", tmp_path), progress=False) == "done"
    everything = load_mnist(DATA_ROOT, train=True)[0]
    keep, held_out = validation_split(len(everything), 64)
    assert len(seen) == 9 and all(images is seen[0][0] for images, _ in seen)
    assert torch.equal(seen[0][0].cpu(), everything[keep]), "the training tensor is the training split alone"
    assert not set(keep[torch.cat([idx for _, idx in seen]).cpu()].tolist()) & set(held_out.tolist())

    rows = [r.split("\t") for r in (tmp_path / "checkpoints" / "val" / "log.tsv").read_text().splitlines()]
    scored = {int(r[0]): float(r[-1]) for r in rows[1:] if r[-1]}
    assert sorted(scored) == [3, 6, 9] and all(0 < v < 1 for v in scored.values())
    best = checkpoint.load(tmp_path / "checkpoints" / "val" / "best.pt")
    assert best["step"] == min(scored, key=scored.get)
    assert best["best_val_hole_mse"] == pytest.approx(min(scored.values()), abs=1e-6)
    assert_user_error(run("train.py", "--config", REPO / "configs" / "tiny.yaml", "--student_name", "g",
                          "data.val_size=10", "train.val_every=5", cwd=tmp_path), "train.val_every")


def test_jitter_shifts_exactly_and_follows_the_affine_formula():
    from dataio import augment

    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1
    assert augment.jitter_params(6, torch.Generator(), (28, 28)) is None and augment.apply(x, None) is x
    theta = augment.jitter_params(6, torch.Generator().manual_seed(0), (28, 28), shift=3)
    out = augment.apply(x, theta)
    for i in range(6):  # whole-pixel shifts: the digit moves, the uncovered pixels are background
        dx, dy = round(-theta[i, 0, 2].item() * 14), round(-theta[i, 1, 2].item() * 14)
        expect = torch.full_like(x[i], -1)
        expect[:, max(dy, 0):28 + min(dy, 0), max(dx, 0):28 + min(dx, 0)] = \
            x[i, :, max(-dy, 0):28 + min(-dy, 0), max(-dx, 0):28 + min(-dx, 0)]
        assert torch.allclose(out[i], expect, atol=1e-6), (dx, dy)
    assert {round(-t * 14) for t in theta[:, :, 2].flatten().tolist()} <= set(range(-3, 4))

    theta = augment.jitter_params(6, torch.Generator().manual_seed(0), (28, 28), shift=2, rotate=30, scale=0.2)
    out = augment.apply(x, theta)
    # reference: output pixel centre (X, Y) about the image centre samples the input at A (X, Y) + 14 t, bilinear
    r, c = torch.meshgrid(torch.arange(28.0, dtype=torch.float64), torch.arange(28.0, dtype=torch.float64),
                          indexing="ij")
    X, Y = c + 0.5 - 14, r + 0.5 - 14
    for i in range(6):
        a = theta[i]
        col = a[0, 0] * X + a[0, 1] * Y + 14 * a[0, 2] + 13.5
        row = a[1, 0] * X + a[1, 1] * Y + 14 * a[1, 2] + 13.5
        c0, r0 = col.floor(), row.floor()
        value = torch.zeros(28, 28, dtype=torch.float64)
        for dr in (0, 1):
            for dc in (0, 1):
                rr, cc = r0 + dr, c0 + dc
                weight = (1 - (row - rr).abs()) * (1 - (col - cc).abs())
                inside = (rr >= 0) & (rr < 28) & (cc >= 0) & (cc < 28)
                pixel = (x[i, 0] + 1)[rr.clamp(0, 27).long(), cc.clamp(0, 27).long()]
                value += torch.where(inside, weight * pixel, torch.zeros_like(weight))
        assert torch.allclose(out[i, 0], value - 1, atol=1e-6)
    assert not torch.allclose(out, x)
