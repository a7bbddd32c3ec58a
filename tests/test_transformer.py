import torch

from engine import config
from engine.trainer import RunPaths, train
from models.embeddings import sincos_2d
from tasks import build_network
from models.transformer import DiT
from tests.conftest import DATA_ROOT, REPO, run


def test_dit_shapes_and_adaln_zero_start():
    net = DiT(patch_size=4, width=32, depth=2, num_heads=4)
    x, t = torch.randn(3, 1, 28, 28), torch.tensor([1.0, 10.0, 999.0])
    out = net(x, t)
    assert out.shape == x.shape
    assert torch.equal(out, torch.zeros_like(out)), "adaLN-Zero: the head and every gate start at zero"
    for p in (2, 7, 14):
        assert DiT(patch_size=p, width=16, depth=1, num_heads=2)(x, t).shape == x.shape


def test_unpatchify_inverts_row_major_patches():
    net = DiT(patch_size=7, width=16, depth=1, num_heads=2)
    x = torch.randn(2, 1, 28, 28)
    g, p = 4, 7
    tokens = x.view(2, 1, g, p, g, p).permute(0, 2, 4, 3, 5, 1).reshape(2, g * g, p * p)
    assert torch.equal(net.unpatchify(tokens), x)


def test_sincos_position_embedding():
    pe = sincos_2d(8, 3)
    assert pe.shape == (9, 8)
    assert torch.allclose(pe[0], torch.tensor([0.0, 0, 1, 1, 0, 0, 1, 1]))  # position (0, 0): sin 0, cos 0
    assert len({tuple(r.tolist()) for r in pe}) == 9, "every position distinct"


def test_transformer_config_trains_and_samples(tmp_path):
    overrides = ["model.width=32", "model.depth=2", "model.patch_size=7", "train.steps=3", "train.batch_size=8",
                 "train.sample_every=0", "train.warmup_steps=1", "diffusion.timesteps=50", "sample.steps=3",
                 f"data.root={DATA_ROOT}"]
    cfg = config.load(REPO / "configs" / "sample_transformer.yaml", overrides)
    assert build_network(cfg).__class__ is DiT
    assert train(cfg, "dit", paths=RunPaths.for_name("dit", tmp_path), progress=False) == "done"
    proc = run("sample.py", "--checkpoint", tmp_path / "checkpoints" / "dit" / "final.pt", "--num_samples", "4",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(list((tmp_path / "outputs" / "dit" / "samples").iterdir())) == 4
