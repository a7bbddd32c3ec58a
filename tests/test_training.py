import copy
import gzip
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from dataio.mnist import RAW_FILES, batch_indices, load_mnist, to_model_range
from diffusion.process import training_loss
from diffusion.schedule import make_schedule
from engine import checkpoint, config
from engine.ema import EMA
from common.errors import UserError
from engine.trainer import LOG_FIELDS, RunPaths, lr_factor, train
from tasks import build_network
from models.unet import UNet
from tests.conftest import DATA_ROOT, REPO, TINY, finish, run, start


def test_unet_keeps_28x28_for_several_layouts():
    x, t = torch.randn(3, 1, 28, 28), torch.tensor([1.0, 500.0, 1000.0])
    for mult, attn in [((1,), (0,)), ((1, 2), (1,)), ((1, 2, 2), (2,)), ((1, 2, 2, 2), (2, 3))]:
        net = UNet(channels=8, channel_mult=mult, num_res_blocks=2, attn_levels=attn, num_heads=2)
        with torch.no_grad():
            # zero-initialised output conv: perturb it so the shape check sees real activations
            net.out[-1].weight.normal_()
            out = net(x, t)
        assert out.shape == x.shape and torch.isfinite(out).all() and out.std() > 0


def test_lr_schedule():
    f = lambda s, sched="cosine": lr_factor(s, warmup=10, total=110, schedule=sched)
    assert f(0) == 0.1 and f(9) == 1.0 and f(10) == 1.0
    assert abs(f(60) - 0.5) < 1e-12 and f(110) == 0.0
    assert f(100, "constant") == 1.0


def test_ema_follows_its_formula():
    net = torch.nn.Linear(2, 1)
    ema = EMA(net, decay=0.9, warmup=True)
    start = ema.model.weight.clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    d = min(0.9, 1 / 10)  # first update: (1 + 0) / (10 + 0)
    ema.update(net)
    torch.testing.assert_close(ema.model.weight, d * start + (1 - d) * net.weight)
    for _ in range(100):
        ema.update(net)
    assert ema.current_decay() == 0.9


@pytest.mark.parametrize("sigma_rel", [0.05, 0.15])
def test_power_ema_weights_every_step_by_its_closed_form_and_spans_sigma_rel(sigma_rel):
    """EDM2's power-function EMA after N updates with weights w_1..w_N is sum_t w_t (t^(g+1) - (t-1)^(g+1)) / N^(g+1)
    (the product of its decays), a profile whose standard deviation over t / N is sigma_rel."""
    from engine.ema import sigma_rel_to_gamma

    g, n = sigma_rel_to_gamma(sigma_rel), 3000
    net = torch.nn.Linear(1, 1, bias=False).double()
    ema = EMA(net, decay=0.5, warmup=False, sigma_rel=sigma_rel)
    values = torch.rand(n, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for v in values:
        with torch.no_grad():
            net.weight.fill_(v)
        ema.update(net)
    t = torch.arange(1, n + 1, dtype=torch.float64)
    profile = (t ** (g + 1) - (t - 1) ** (g + 1)) / n ** (g + 1)
    assert float(profile.sum()) == pytest.approx(1.0, abs=1e-9)
    assert float(ema.model.weight) == pytest.approx(float((profile * values).sum()), abs=1e-9)
    u = t / n
    mean = float((profile * u).sum())
    assert float((profile * (u - mean) ** 2).sum()) ** 0.5 == pytest.approx(sigma_rel, rel=0.01)


def test_ema_warmup_reaches_its_decay_only_after_the_documented_updates():
    ema = EMA(torch.nn.Linear(1, 1), decay=0.999, warmup=True)
    ema.updates = 8989  # (10 decay - 1) / (1 - decay) = 8,990
    assert ema.current_decay() < 0.999
    ema.updates = 8991
    assert ema.current_decay() == 0.999


def test_batch_order_is_a_pure_function_and_covers_each_epoch():
    n, b = 100, 10
    epoch0 = torch.cat([batch_indices(n, b, 7, i) for i in range(10)])
    assert sorted(epoch0.tolist()) == list(range(n))
    assert torch.equal(batch_indices(n, b, 7, 13), batch_indices(n, b, 7, 13))
    assert not torch.equal(batch_indices(n, b, 7, 0), batch_indices(n, b, 7, 10))


def test_mnist_reader_matches_torchvision_and_refuses_broken_files(tmp_path):
    """load_mnist reads the idx files itself (importing torchvision takes seconds); it must give exactly
    torchvision's tensors, read gzipped files too, and name a corrupt file."""
    from torchvision.datasets import MNIST

    for train in (True, False):
        images, labels = load_mnist(DATA_ROOT, train=train, download=False)
        ref = MNIST(DATA_ROOT, train=train, download=False)
        assert torch.equal(images, ref.data) and torch.equal(labels, ref.targets) and labels.dtype == torch.int64
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in RAW_FILES[2:]:
        (raw / f"{name}.gz").write_bytes(gzip.compress((Path(DATA_ROOT) / "MNIST" / "raw" / name).read_bytes()))
    assert torch.equal(load_mnist(tmp_path, train=False, download=False)[0], images)
    (raw / f"{RAW_FILES[2]}.gz").write_bytes(gzip.compress((Path(DATA_ROOT) / "MNIST" / "raw" / RAW_FILES[2])
                                                           .read_bytes()[:-5]))
    with pytest.raises(UserError, match="not an MNIST idx file"):
        load_mnist(tmp_path, train=False, download=False)


def test_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    cfg = config.load(REPO / "configs" / "tiny.yaml", TINY + ["model.dropout=0.0"])
    images, _ = load_mnist(DATA_ROOT)
    x0 = to_model_range(images[:16])
    net = build_network(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    sched = make_schedule("linear", 100)
    loss_of = lambda: training_loss(net, sched, x0, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        first = loss_of().item()
    for _ in range(80):  # the loss falls 15-fold by then on this machine
        opt.zero_grad()
        loss = loss_of()  # same t and noise every step: a fixed regression problem
        loss.backward()
        opt.step()
    assert loss.item() < first / 5, (first, loss.item())


def test_checkpoint_round_trip(trained):
    path = trained / "checkpoints" / "tiny_test" / "final.pt"
    ckpt = checkpoint.load(path)
    cfg = checkpoint.config_of(ckpt, path)
    assert ckpt["step"] == 4 and ckpt["kind"] == "diffusion" and cfg.train.steps == 4
    assert set(ckpt) >= {"model", "ema", "optimizer", "scheduler", "rng", "versions", "config"}
    net = build_network(cfg)
    checkpoint.load_weights(net, ckpt["model"], path)
    for k, v in net.state_dict().items():
        assert torch.equal(v, ckpt["model"][k])
    assert ckpt["ema"]["updates"] == 4 and ckpt["scheduler"]["last_epoch"] == 4
    assert len(ckpt["optimizer"]["state"]) == len(list(net.parameters()))
    torch.set_rng_state(torch.zeros_like(ckpt["rng"]["torch"]) + ckpt["rng"]["torch"])
    assert torch.equal(torch.get_rng_state(), ckpt["rng"]["torch"])
    log = (trained / "checkpoints" / "tiny_test" / "log.tsv").read_text().splitlines()
    assert log[0] == "\t".join(LOG_FIELDS) and [r.split("\t")[0] for r in log[1:]] == ["2", "4"]


def test_weights_sha256_keys_what_sampling_reads(trained):
    """Bookkeeping (training seconds, optimizer, raw weights) leaves the key; one ulp of one EMA weight
    or a diffusion setting changes it."""
    ckpt = checkpoint.load(trained / "checkpoints" / "tiny_test" / "final.pt")
    key = checkpoint.weights_sha256(ckpt)
    same = copy.deepcopy(ckpt)
    same.update(train_seconds=ckpt["train_seconds"] + 1.0, optimizer={}, rng={})
    same["model"] = {k: v + 1 for k, v in ckpt["model"].items()}
    assert checkpoint.weights_sha256(same) == key
    nudged = copy.deepcopy(ckpt)
    name, w = next((k, v) for k, v in nudged["ema"]["model"].items() if v.is_floating_point())
    w.view(-1)[0] = torch.nextafter(w.view(-1)[0], torch.tensor(float("inf")))
    assert checkpoint.weights_sha256(nudged) != key, name
    other = copy.deepcopy(ckpt)
    other["config"]["diffusion"]["prediction"] = "eps" if ckpt["config"]["diffusion"]["prediction"] != "eps" else "v"
    assert checkpoint.weights_sha256(other) != key


def _train_args(cfg_path, name, *extra):
    return ["--config", cfg_path, "--student_name", name, "--no-progress", *TINY, "train.steps=30",
            "train.ckpt_every=10", *extra]


def _tensors_equal(a, b, where=""):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _tensors_equal(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        for i, (x, y) in enumerate(zip(a, b)):
            _tensors_equal(x, y, f"{where}[{i}]")


def _kill_midway(args, cwd, sig):
    handle = start("train.py", *args, cwd=cwd)
    last = cwd / "checkpoints" / args[3] / "last.pt"
    deadline = time.time() + 240
    while not last.exists() and time.time() < deadline:
        time.sleep(0.02)
    os.kill(handle["pid"], sig)
    proc = finish(handle, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def test_killed_run_resumes_bit_identical(tmp_path, tiny_config):
    """SIGKILL (no chance to save) and SIGTERM (saves, exits 130) both resume to the exact
    weights, EMA and optimizer state of an uninterrupted run."""
    straight = run("train.py", *_train_args(tiny_config, "straight"), cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr[-2000:]
    reference = checkpoint.load(tmp_path / "checkpoints" / "straight" / "final.pt")

    for sig, name in [(signal.SIGKILL, "killed"), (signal.SIGTERM, "termed")]:
        code, err = _kill_midway(_train_args(tiny_config, name), tmp_path, sig)
        stopped = checkpoint.load(tmp_path / "checkpoints" / name / "last.pt")["step"]
        assert not (tmp_path / "checkpoints" / name / "final.pt").exists(), "the run finished before the signal"
        if sig == signal.SIGTERM:
            assert code == 130 and "run the same command to resume" in err, (code, err[-1000:])
        resumed = run("train.py", *_train_args(tiny_config, name), cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        assert f"at step {stopped}" in resumed.stdout
        final = checkpoint.load(tmp_path / "checkpoints" / name / "final.pt")
        assert final["step"] == 30
        for part in ("model", "ema", "optimizer", "scheduler"):
            _tensors_equal(final[part], reference[part], f"{name}:{part}")
        assert checkpoint.weights_sha256(final) == checkpoint.weights_sha256(reference), name
        steps = [int(r.split("\t")[0]) for r in (tmp_path / "checkpoints" / name / "log.tsv").read_text().splitlines()[1:]]
        assert steps == list(range(2, 31, 2)), "log rows duplicated or lost across the resume"


@pytest.mark.parametrize("switch", ["train.channels_last=false", "train.data_on_device=false", "train.compile=true"])
def test_fast_paths_do_not_change_the_result(tmp_path, switch):
    """Each fast path is a memory layout, a copy or a compiler: 3 steps end at the same weights."""
    cfg_args = ["train.steps=3", "train.log_every=1", "train.sample_every=0", "model.dropout=0.0"]
    if switch == "train.compile=true":  # the small MLP compiles in seconds; the UNet would take a minute
        base = config.load(REPO / "configs" / "moons_seed.yaml", cfg_args + ["train.batch_size=64", "model.width=32"])
    else:
        base = config.load(REPO / "configs" / "tiny.yaml", TINY + cfg_args)
    ends = []
    for name, extra in (("base", []), ("fast", [switch])):
        cfg = copy.deepcopy(base)
        config.apply_overrides(cfg, extra)
        assert train(cfg, name, paths=RunPaths.for_name(name, tmp_path), progress=False) == "done"
        ends.append(checkpoint.load(tmp_path / "checkpoints" / name / "final.pt")["model"])
    for key in ends[0]:
        torch.testing.assert_close(ends[1][key], ends[0][key], rtol=1e-4, atol=1e-5, msg=key)


def test_training_time_fid_is_logged_and_train_seconds_resume(in_folder_with_fid_cache):
    """train.eval_every writes an FID (of train.eval_samples EMA digits) into log.tsv at those steps
    and at the end; train_s grows and is kept in the checkpoint for a resumed run."""
    cfg = config.load(REPO / "configs" / "tiny.yaml", TINY + ["train.steps=4", "train.log_every=3",
                                                               "train.eval_every=2", "train.eval_samples=40"])
    tmp_path = in_folder_with_fid_cache
    paths = RunPaths.for_name("fid", tmp_path)
    assert train(cfg, "fid", paths=paths, progress=False) == "done"
    rows = [dict(zip(LOG_FIELDS, r.split("\t"))) for r in paths.log.read_text().splitlines()[1:]]
    assert [r["step"] for r in rows] == ["2", "3", "4"]
    assert rows[1]["fid"] == "" and all(float(rows[i]["fid"]) > 0 for i in (0, 2))
    seconds = [float(r["train_s"]) for r in rows]
    assert 0 < seconds[0] <= seconds[1] <= seconds[2] and seconds[0] < seconds[2]
    assert checkpoint.load(paths.final)["train_seconds"] == pytest.approx(seconds[2], abs=0.05)
    config.apply_overrides(cfg, ["train.steps=6"])
    assert train(cfg, "fid", paths=paths, progress=False) == "done"
    assert checkpoint.load(paths.final)["train_seconds"] > seconds[2]
    # scripts/learning_curve.py prints the FID rows (and only those) and plots them
    png = tmp_path / "curve.png"
    proc = run("scripts/learning_curve.py", "fid", "--checkpoints", tmp_path / "checkpoints", "--out", png, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = [l for l in proc.stdout.splitlines() if l.startswith("| ") and l[2].isdigit()]
    assert [l.split(" | ")[0] for l in table] == ["| 2", "| 4", "| 6"] and f"{float(rows[0]['fid']):.2f}" in table[0]
    assert png.stat().st_size > 1000


def test_checkpoint_from_before_level_sampling_still_loads(trained, tmp_path):
    """Checkpoints written before diffusion.level_sampling / p_mean / p_std and train.eval_* existed
    load with the old behaviour (uniform levels) and no training seconds."""
    ckpt = checkpoint.load(trained / "checkpoints" / "tiny_test" / "final.pt")
    for key in ("level_sampling", "p_mean", "p_std"):
        del ckpt["config"]["diffusion"][key]
    for key in ("eval_every", "eval_samples"):
        del ckpt["config"]["train"][key]
    del ckpt["train_seconds"]
    old = tmp_path / "old.pt"
    checkpoint.save(old, ckpt)
    cfg = checkpoint.config_of(checkpoint.load(old), old)
    assert cfg.diffusion.level_sampling == "uniform" and cfg.train.eval_every == 0


@pytest.mark.parametrize("task", ["generate", "complete"])
def test_the_loop_reads_the_device_once_per_log_line_not_every_step(tmp_path, tiny_config, task):
    """loss.item() and the like force a host-device sync on a GPU: the training loop (and the task's
    loss) may read values back only per log line, so doubling the steps between log lines adds none."""
    import sys
    from torch.overrides import TorchFunctionMode

    reads = (torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.__float__, torch.Tensor.__bool__,
             torch.Tensor.cpu, torch.Tensor.numpy)
    ours = {str(REPO / "engine" / "trainer.py"), str(REPO / "engine" / "inpainting.py")}

    class CountReads(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.count = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func in reads and sys._getframe(1).f_code.co_filename in ours:
                self.count += 1
            return func(*args, **(kwargs or {}))

    extra = ["task.name=complete", "model.name=convmlp", "model.width=32", "model.depth=1",
             "task.loss_ssim=0.2"] if task == "complete" else []
    counts = []
    for steps in (4, 8):
        cfg = config.load(tiny_config, [*TINY, *extra, f"train.steps={steps}", f"train.log_every={steps}",
                                        f"train.ckpt_every={steps}"])
        with CountReads() as mode:
            assert train(cfg, f"reads{steps}", paths=RunPaths.for_name(f"reads{steps}", tmp_path), progress=False) == "done"
        counts.append(mode.count)
    assert counts[0] > 0 and counts[0] == counts[1], counts
