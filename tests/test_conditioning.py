"""Self-conditioning and class conditioning with classifier-free guidance."""
import json

import numpy as np
import pytest
import torch

from diffusion import samplers
from diffusion.process import training_loss
from diffusion.schedule import make_schedule
from engine import checkpoint, config
from grading import provenance
from tasks.generate import guidance_words
from tasks.generation import class_labels, generate, guided
from engine.trainer import RunPaths, train
from metrics import features
from tasks import build_network
from tests.conftest import DATA_ROOT, REPO, TINY, assert_user_error, run


def _cfg(*extra):
    return config.load(REPO / "configs" / "tiny.yaml", TINY + list(extra))


def test_cfg_weight_zero_is_the_conditional_model():
    torch.manual_seed(0)
    net = build_network(_cfg("model.num_classes=10")).eval()
    for p in net.parameters():  # leave the zero-initialised start, so labels change the output
        p.data.normal_(0, 0.2)
    x, t, y = torch.randn(4, 1, 28, 28), torch.full((4,), 50.0), torch.tensor([3, 1, 4, 1])
    with torch.no_grad():
        assert torch.equal(guided(net, y, 0.0, 10)(x, t), net(x, t, y))
        cond, uncond = net(x, t, y), net(x, t, torch.full_like(y, 10))
        assert not torch.allclose(cond, uncond)
        expected = cond + 2.0 * (cond - uncond)
        torch.testing.assert_close(guided(net, y, 2.0, 10)(x, t), expected, rtol=1e-5, atol=1e-5)


def test_autoguidance_steers_away_from_the_guide_and_adds_to_classifier_free_guidance():
    torch.manual_seed(0)
    net, guide = (build_network(_cfg("model.num_classes=10")).eval() for _ in range(2))
    for p in [*net.parameters(), *guide.parameters()]:
        p.data.normal_(0, 0.2)
    x, t, y = torch.randn(4, 1, 28, 28), torch.full((4,), 50.0), torch.tensor([3, 1, 4, 1])
    with torch.no_grad():
        cond, uncond, bad = net(x, t, y), net(x, t, torch.full_like(y, 10)), guide(x, t, y)
        torch.testing.assert_close(guided(net, y, 0.0, 10, guide, 1.5)(x, t), cond + 1.5 * (cond - bad))
        torch.testing.assert_close(guided(net, y, 2.0, 10, guide, 1.5)(x, t),
                                   cond + 2.0 * (cond - uncond) + 1.5 * (cond - bad), rtol=1e-5, atol=1e-5)
        plain = build_network(_cfg()).eval()  # unconditional: no labels passed
        torch.testing.assert_close(guided(plain, None, 0.0, 0, guide=plain, a=3.0)(x, t), plain(x, t))


def test_guidance_interval_guides_only_at_its_levels():
    torch.manual_seed(0)
    net, guide = (build_network(_cfg("model.num_classes=10")).eval() for _ in range(2))
    for p in [*net.parameters(), *guide.parameters()]:
        p.data.normal_(0, 0.2)
    x, y = torch.randn(4, 1, 28, 28), torch.tensor([3, 1, 4, 1])
    denoiser = guided(net, y, 2.0, 10, guide, 1.5, levels=(100.0, 700.0))
    with torch.no_grad():
        for level in (100.0, 400.0, 700.0):  # inside, ends included: both guidances
            t = torch.full((4,), level)
            cond, uncond, bad = net(x, t, y), net(x, t, torch.full_like(y, 10)), guide(x, t, y)
            torch.testing.assert_close(denoiser(x, t), cond + 2.0 * (cond - uncond) + 1.5 * (cond - bad),
                                       rtol=1e-5, atol=1e-5)
        for level in (50.0, 701.0, 1000.0):  # outside: the plain conditional model, one call
            t = torch.full((4,), level)
            assert torch.equal(denoiser(x, t), net(x, t, y))
    with pytest.raises(config.UserError, match="sample.guidance_interval"):
        _cfg("sample.guidance_interval=[0.5,0.2]")
    cfg = _cfg("model.num_classes=10", "sample.guidance=1.0")  # generate() reads the interval as fractions of T
    kw = dict(seed=0, sampler="ddim", steps=3, eta=0.0, batch_size=4, device=torch.device("cpu"), progress=False)
    full = generate(net, cfg, 4, **kw)
    assert np.array_equal(generate(net, cfg, 4, guidance_interval=[0.0, 1.0], **kw), full)
    none_visited = generate(net, cfg, 4, guidance_interval=[0.01, 0.02], **kw)  # ddim x3 visits 1000, 667, 333
    assert np.array_equal(none_visited, generate(net, cfg, 4, guidance=0.0, **kw))
    assert not np.array_equal(none_visited, full)
    assert guidance_words({"guidance": 1.0, "guidance_interval": [0.0, 0.9]}) == ", w 1 in [0, 0.9] T"
    assert guidance_words({"guidance": 0.25, "autoguidance": 1.6, "guidance_interval": [0.0, 1.0]}) == \
        ", w 0.25, autoguidance 1.6"


def test_guide_step_keeps_the_ema_weights_of_that_step_and_sample_py_uses_them(tmp_path, monkeypatch):
    from engine import trainer
    saved = {}
    real_save = trainer.checkpoint.save
    monkeypatch.setattr(trainer.checkpoint, "save", lambda path, payload: (
        saved.__setitem__(payload["step"], {k: v.clone() for k, v in payload["ema"]["model"].items()}),
        real_save(path, payload))[1])
    cfg = _cfg("train.steps=4", "train.ckpt_every=2", "train.guide_step=2", "sample.autoguidance=1.0")
    assert train(cfg, "ag", paths=RunPaths.for_name("ag", tmp_path), progress=False) == "done"
    ckpt_path = tmp_path / "checkpoints" / "ag" / "final.pt"
    ckpt = checkpoint.load(ckpt_path)
    assert set(ckpt["guide"]) == set(saved[2]) and all(torch.equal(ckpt["guide"][k], saved[2][k]) for k in saved[2])
    assert not all(torch.equal(ckpt["guide"][k], ckpt["ema"]["model"][k]) for k in saved[2]), "the EMA moved on"
    without = {k: v for k, v in ckpt.items() if k != "guide"}
    assert checkpoint.weights_sha256(ckpt) != checkpoint.weights_sha256(without), "samples depend on the guide"

    proc = run("sample.py", "--checkpoint", ckpt_path, "--num_samples", "4", "--steps", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads((tmp_path / "outputs" / "ag" / "samples.json").read_text())
    images = np.load(tmp_path / "outputs" / "ag" / "samples.npz")["images"]
    assert meta["autoguidance"] == 1.0 and provenance.verify(ckpt_path, meta, images, k=4)["verified"]
    assert not provenance.verify(ckpt_path, {**meta, "autoguidance": 0.0}, images, k=4)["verified"]
    assert meta["guidance_interval"] == [0.0, 1.0]
    assert not provenance.verify(ckpt_path, {**meta, "guidance_interval": [0.0, 0.4]}, images, k=4)["verified"]
    older = {k: v for k, v in meta.items() if k not in ("autoguidance", "guidance_interval")}  # from before the keys
    plain = run("sample.py", "--checkpoint", ckpt_path, "--num_samples", "4", "--steps", "2", "--student_name", "plain",
                "sample.autoguidance=0", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr[-2000:]
    unguided = np.load(tmp_path / "outputs" / "plain" / "samples.npz")["images"]
    assert provenance.verify(ckpt_path, older, unguided, k=4)["verified"]

    checkpoint.save(tmp_path / "no_guide.pt", without)
    assert_user_error(run("sample.py", "--checkpoint", tmp_path / "no_guide.pt", "--num_samples", "4", cwd=tmp_path),
                      "no guide weights", "train.guide_step")
    with pytest.raises(config.UserError, match="train.guide_step"):
        _cfg("sample.autoguidance=1.0")


def test_class_labels():
    assert class_labels(12, -1).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert class_labels(3, 7).tolist() == [7, 7, 7]
    assert class_labels(5, 3, 40).tolist() == [3, 13, 23, 33, 3], "digit 3's clusters in turn (digits_kmeans)"
    assert (class_labels(80, -1, 40) % 10).tolist() == class_labels(80, -1).tolist(), "sample i is digit i % 10"


def test_self_conditioning_feeds_the_estimate_and_trains():
    cfg = _cfg("diffusion.self_cond=true", "model.dropout=0.0")
    net = build_network(cfg)
    seen = []
    denoiser = lambda x, t: (seen.append(x.shape), net(x, t))[1]
    sched = make_schedule("linear", 100)
    x0 = torch.rand(8, 1, 28, 28) * 2 - 1
    for seed in range(4):  # both halves of the 50% rule occur
        training_loss(denoiser, sched, x0, generator=torch.Generator().manual_seed(seed), self_cond=True)
    assert set(seen) == {(8, 2, 28, 28)} and len(seen) > 4, "some batches ran the extra estimation pass"
    seen.clear()
    samplers.sample(denoiser, sched, (2, 1, 28, 28), torch.Generator(), steps=3, self_cond=True)
    assert seen == [(2, 2, 28, 28)] * 3

    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for i in range(60):
        loss = training_loss(net, sched, x0, generator=torch.Generator().manual_seed(i % 2), self_cond=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 3, (losses[0], losses[-1])


@pytest.fixture(scope="module")
def cond_ckpt(tmp_path_factory):
    """A class-conditional tiny model with self-conditioning after 3 training steps."""
    root = tmp_path_factory.mktemp("cond")
    cfg = _cfg("model.num_classes=10", "diffusion.self_cond=true", "train.steps=3")
    assert train(cfg, "cond", paths=RunPaths.for_name("cond", root), progress=False) == "done"
    return root / "checkpoints" / "cond" / "final.pt"


def test_conditional_run_trains_and_samples_a_chosen_digit(cond_ckpt, tmp_path):
    ckpt = cond_ckpt
    proc = run("sample.py", "--checkpoint", ckpt, "--num_samples", "3", "--steps", "2", "--guidance", "1.5",
               "--digit", "7", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads((tmp_path / "outputs" / "cond" / "samples.json").read_text())
    assert meta["digit"] == 7 and meta["guidance"] == 1.5
    images = np.load(tmp_path / "outputs" / "cond" / "samples.npz")["images"]
    assert provenance.verify(ckpt, meta, images, k=3)["verified"]  # the grader regenerates guided samples
    assert not provenance.verify(ckpt, {**meta, "seed": 1}, images, k=3)["verified"]
    assert_user_error(run("sample.py", "--checkpoint", ckpt, "--digit", "12", cwd=tmp_path), "0-9")


def test_guidance_sweep_scores_each_weight_once(cond_ckpt, tmp_path, fid_cache):
    args = ["--checkpoint", cond_ckpt, "--weights", "0", "2", "--num_samples", "20", "--steps", "2", "--columns", "2",
            "--data_root", DATA_ROOT, "--cache_dir", fid_cache, "--rows", tmp_path / "rows.json"]
    proc = run("scripts/guidance_sweep.py", *args, "--grid", tmp_path / "grid.png", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads((tmp_path / "rows.json").read_text())["rows"]
    assert [r["guidance"] for r in rows] == [0, 2] and (tmp_path / "grid.png").stat().st_size > 1000
    unguided_fid = rows[0]["fid"]
    _, cfg, model = checkpoint.load_model(cond_ckpt)  # the share that the classifier agrees, recomputed
    images = generate(model, cfg, 20, seed=0, sampler=cfg.sample.sampler, steps=2, eta=0.0, batch_size=7,
                      device=torch.device("cpu"), guidance=2.0, digit=-1, progress=False)
    agree = features.extract(features.load_lenet(), images, progress=False)[1].argmax(1) == np.arange(20) % 10
    assert rows[1]["accuracy"] == agree.mean() and len(rows[1]["accuracy_per_digit"]) == 10
    assert np.array_equal(np.asarray(rows[1]["grid"])[3, 1], images[13])  # row: digit 3, column 1: sample 13
    assert "| 2 | " in proc.stdout and "best FID: w = " in proc.stdout
    again = run("scripts/guidance_sweep.py", *args, cwd=tmp_path)
    assert again.returncode == 0 and "w = 2: FID" not in again.stdout and "| 2 | " in again.stdout
    on_train = run("scripts/guidance_sweep.py", *args, "--weights", "2", "--reference", "train", cwd=tmp_path)
    assert on_train.returncode == 0 and "against the train digits" in on_train.stdout, on_train.stderr[-2000:]
    rows = json.loads((tmp_path / "rows.json").read_text())["rows"]  # measured again: another FID target
    assert [r["reference"] for r in rows] == ["train"] and rows[0]["accuracy"] == agree.mean()
    nowhere = run("scripts/guidance_sweep.py", *args, "--weights", "2", "--interval", "0.01", "0.02", "--rows",
                  tmp_path / "interval.json", cwd=tmp_path)  # x2 visits levels 1000 and 500: never guided
    assert nowhere.returncode == 0 and "guided at levels [0.01, 0.02] x T" in nowhere.stdout, nowhere.stderr[-2000:]
    assert json.loads((tmp_path / "interval.json").read_text())["rows"][0]["fid"] == unguided_fid
    assert_user_error(run("scripts/guidance_sweep.py", *args, "--interval", "0.5", "0.2", cwd=tmp_path),
                      "sample.guidance_interval")


def test_guidance_on_an_unconditional_model_is_refused(trained, tmp_path):
    ckpt = trained / "checkpoints" / "tiny_test" / "final.pt"
    assert_user_error(run("sample.py", "--checkpoint", ckpt, "--guidance", "2", cwd=tmp_path), "unconditional")
    assert_user_error(run("sample.py", "--checkpoint", ckpt, "--digit", "3", cwd=tmp_path), "unconditional")
    assert_user_error(run("scripts/guidance_sweep.py", "--checkpoint", ckpt, cwd=tmp_path), "not a class-conditional")


def test_karras_samplers_refuse_zero_terminal_snr_checkpoints(tmp_path, tiny_config):
    cfg = config.load(tiny_config, TINY + ["diffusion.zero_terminal_snr=true", "diffusion.prediction=v",
                                           "train.steps=1"])
    assert train(cfg, "zsnr", paths=RunPaths.for_name("zsnr", tmp_path), progress=False) == "done"
    ckpt = tmp_path / "checkpoints" / "zsnr" / "final.pt"
    assert_user_error(run("sample.py", "--checkpoint", ckpt, "--sampler", "heun", cwd=tmp_path), "dpmpp_2m")


def test_unet_vs_transformer_tunes_on_training_digits_then_compares_at_equal_time(cond_ckpt, tmp_path, fid_cache):
    small = ["model.width=16", "model.depth=1", "model.num_heads=2", "diffusion.timesteps=100", "train.steps=16",
             "train.batch_size=4", "train.warmup_steps=1", "train.sample_every=0", "train.ckpt_every=100",
             "sample.steps=2", f"data.root={DATA_ROOT}"]
    args = ["scripts/unet_vs_transformer.py", "--unet", cond_ckpt, "--candidates", "p2_w96_d6",
            "--bench_steps", "2", "--tune_samples", "20", "--num_samples", "20", "--data_root", DATA_ROOT,
            "--cache_dir", fid_cache, *small]
    rows_file = tmp_path / "results" / "sweeps" / "unet_vs_transformer.json"
    bench = run(*args, "--stage", "bench", cwd=tmp_path)
    assert bench.returncode == 0, bench.stderr[-2000:]
    speed = {r["name"]: r["images_per_s"] for r in json.loads(rows_file.read_text())["rows"]}
    assert set(speed) == {"unet", "p2_w96_d6"} and not (tmp_path / "checkpoints").exists(), "speeds only"
    proc = run(*args, "--stage", "tune", "--tune_fraction", "0.25", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(rows_file.read_text())["rows"]
    assert {r["name"]: r["images_per_s"] for r in rows if r["kind"] == "speed"} == speed, "benchmarked once"
    tuned = {r["name"]: r for r in rows if r["kind"] == "tune"}
    assert list(tuned) == ["p2_w96_d6"]
    r = tuned["p2_w96_d6"]  # a quarter of the steps that take the UNet's 16 steps' time at the candidate's speed
    assert r["steps"] == max(1, round(round(16 * speed["p2_w96_d6"] / speed["unet"]) / 4)) and r["fid_train"] > 0
    stored, cfg, model = checkpoint.load_model(tmp_path / "checkpoints" / "tf_p2_w96_d6_q" / "final.pt")
    params = f"{sum(t.numel() for t in model.parameters()) / 1e6:.2f}M"
    assert f"| {params} | {speed['p2_w96_d6']:.1f} | " in proc.stdout, "the tuning table, with the candidate's size"
    assert f"| {r['steps']} | {r['fid_train']:.1f} +- {r['fid_train_std']:.1f} |" in proc.stdout
    assert cfg.model.name == "transformer" and cfg.train.steps == r["steps"] == stored["step"]
    assert cfg.train.warmup_steps == round(r["steps"] / 16), "the UNet's share of warm-up (1 of 16 steps)"
    assert cfg.model.patch_size == 2 and cfg.model.width == 16, "the candidate's settings, then the overrides"
    final = run(*args, "--grid", tmp_path / "grid.png", cwd=tmp_path)
    assert final.returncode == 0, final.stderr[-2000:]
    result = json.loads((tmp_path / "results" / "tf_p2_w96_d6.json").read_text())
    assert result["num_samples"] == 20 and "| transformer | model.patch_size=2 model.width=96 " in final.stdout
    assert f"{result['fid']:.1f} +- {result['fid_bootstrap_std']:.1f}" in final.stdout
    assert (tmp_path / "grid.png").stat().st_size > 1000 and "training tf_" not in run(*args, cwd=tmp_path).stdout
    assert_user_error(run(*args[:3], "--candidates", "p4_w192_d8", "--stage", "final", *small, cwd=tmp_path),
                      "not tuned yet")
    assert_user_error(run(*args[:3], "--tune_fraction", "0", cwd=tmp_path), "--tune_fraction must be in (0, 1]")


def test_set_guide_from_a_snapshot_equals_training_with_that_guide_step(tmp_path, trained):
    base = ["train.steps=4", "train.ckpt_every=2", "model.num_classes=10"]
    assert train(_cfg(*base, "train.keep_every=2"), "kept", paths=RunPaths.for_name("kept", tmp_path), progress=False) == "done"
    assert train(_cfg(*base, "train.guide_step=2"), "direct", paths=RunPaths.for_name("direct", tmp_path),
                 progress=False) == "done"
    kept = tmp_path / "checkpoints" / "kept"
    snap = kept / "snapshots" / "step_0000002.pt"
    assert sorted(p.name for p in (kept / "snapshots").iterdir()) == ["step_0000002.pt", "step_0000004.pt"]
    proc = run("scripts/set_guide.py", "--checkpoint", kept / "final.pt", "--snapshot", snap, "--autoguidance", "1.5",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    chosen, direct = checkpoint.load(kept / "final.pt"), checkpoint.load(tmp_path / "checkpoints" / "direct" / "final.pt")
    assert chosen["config"]["train"]["guide_step"] == 2 and chosen["config"]["sample"]["autoguidance"] == 1.5
    assert all(torch.equal(chosen["guide"][k], direct["guide"][k]) for k in direct["guide"])
    direct["config"]["sample"]["autoguidance"] = 1.5
    direct["config"]["train"]["keep_every"] = 2
    assert checkpoint.weights_sha256(chosen) == checkpoint.weights_sha256(direct)
    assert config.load(kept / "config.yaml").train.guide_step == 2
    sweep = run("scripts/autoguidance_sweep.py", "--checkpoint", kept / "final.pt", "--guides", snap, "--weights", "1",
                "--num_samples", "20", "--rows", tmp_path / "rows.json", "--data_root", DATA_ROOT, cwd=tmp_path)
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    rows = json.loads((tmp_path / "rows.json").read_text())["rows"]
    assert sorted((r["guide_step"], r["autoguidance"]) for r in rows) == [(0, 0.0), (2, 1.0)]
    assert "| 2 | 1 |" in sweep.stdout and "| none | 0 |" in sweep.stdout
    curve = run("scripts/learning_curve.py", "nobody", "--snapshots", "--num_samples", "20", "--data_root", DATA_ROOT,
                cwd=tmp_path)
    assert_user_error(curve, "snapshots", "train.keep_every")
    curve = run("scripts/learning_curve.py", "kept", "--snapshots", "--num_samples", "20", "--out", tmp_path / "lc.png",
                "--data_root", DATA_ROOT, "--checkpoints", tmp_path / "checkpoints", cwd=tmp_path)
    assert curve.returncode == 0, curve.stderr[-2000:]
    stored = json.loads((tmp_path / "results" / "curves" / "kept.json").read_text())["rows"]
    # final.pt is step 4's snapshot plus the guide set above, so it is scored again, with autoguidance
    assert sorted((r["step"], r["autoguidance"]) for r in stored) == [(2, 0.0), (4, 0.0), (4, 1.5)]
    assert all(0 <= r["label_agreement"] <= 1 for r in stored) and (tmp_path / "lc.png").stat().st_size > 0
    assert_user_error(run("scripts/set_guide.py", "--checkpoint", snap, "--snapshot", kept / "final.pt", cwd=tmp_path),
                      "not before")
    other = tmp_path / "other.pt"  # the session's unconditional tiny run: another config
    other.write_bytes((trained / "checkpoints" / "tiny_test" / "final.pt").read_bytes())
    assert_user_error(run("scripts/set_guide.py", "--checkpoint", other, "--snapshot", snap, cwd=tmp_path),
                      "another config")


def test_balanced_assign_fills_every_cluster_equally_and_prefers_the_nearest():
    from dataio.clusters import balanced_assign

    d = torch.tensor([[0.0, 5.0], [0.1, 5.0], [0.2, 5.0], [5.0, 0.0]])  # three points want cluster 0, room for two
    assert balanced_assign(d).tolist() == [0, 0, 1, 1], "the farthest of the three moves"
    d = torch.rand(103, 7, generator=torch.Generator().manual_seed(0))
    sizes = torch.bincount(balanced_assign(d), minlength=7)
    assert sizes.tolist() == [15, 15, 15, 15, 15, 14, 14]


def test_kmeans_labels_find_separated_groups_and_replace_the_digit_labels(tmp_path):
    from dataio.clusters import kmeans_labels
    from tasks.base import mnist_training

    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 1, 8, 8, generator=g) * 10
    x = torch.cat([c + torch.randn(25, 1, 8, 8, generator=g) for c in centres])  # 4 groups of 25
    labels = kmeans_labels(x, 4, seed=1, dims=5)
    assert all(len(set(labels[25 * i:25 * (i + 1)].tolist())) == 1 for i in range(4)), "each group one cluster"
    assert len(set(labels.tolist())) == 4 and torch.equal(labels, kmeans_labels(x, 4, seed=1, dims=5))

    cfg = _cfg("model.num_classes=12", "data.labels=kmeans", "data.subset=600")
    images, clusters, _ = mnist_training(cfg)
    assert torch.bincount(clusters).tolist() == [50] * 12, "equal sizes: balanced sampling draws the data's mix"
    digits = mnist_training(_cfg("model.num_classes=10", "data.subset=600"))[1]
    split = mnist_training(_cfg("model.num_classes=30", "data.labels=digits_kmeans", "data.subset=600"))[1]
    assert torch.equal(split % 10, digits), "class c is a cluster of digit c % 10"
    for d in range(10):  # each digit's images in three clusters of (almost) equal size
        sizes = torch.bincount(split[digits == d] // 10, minlength=3)
        assert len(sizes) == 3 and sizes.max() - sizes.min() <= 1
    for override, fragment in [("model.num_classes=1", ">= 2 with data.labels=kmeans"),
                               ("sample.digit=3", "-1 .all clusters")]:
        with pytest.raises(config.UserError, match=fragment):
            _cfg("model.num_classes=12", "data.labels=kmeans", override)
    with pytest.raises(config.UserError, match="multiple of 10, >= 20, with data.labels=digits_kmeans"):
        _cfg("model.num_classes=25", "data.labels=digits_kmeans")
    with pytest.raises(config.UserError, match="data.labels.*unless model.num_classes > 0"):
        _cfg("data.labels=kmeans")


def test_a_model_on_clusters_samples_every_cluster_and_says_so(in_folder_with_fid_cache):
    root = in_folder_with_fid_cache
    cfg = _cfg("model.num_classes=12", "data.labels=kmeans", "data.subset=240", "train.steps=2", "sample.guidance=1.0",
               "sample.steps=1", "sample.batch_size=1000")
    assert train(cfg, "km", paths=RunPaths.for_name("km", root), progress=False) == "done"
    run_dir = root / "checkpoints" / "km"
    proc = run("sample.py", "--checkpoint", run_dir / "final.pt", "--num_samples", "24", "--steps", "2", cwd=root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads((root / "outputs" / "km" / "samples.json").read_text())
    assert meta["labels"] == "kmeans" and meta["num_classes"] == 12 and meta["guidance"] == 1.0
    assert class_labels(24, -1, 12).tolist() == list(range(12)) * 2, "sample i asks for cluster i % 12"

    # the grader reads what the classes are from the checkpoint, whether it makes the digits itself or a
    # samples.json claims they are digits: clusters ask for no digit, so no label agreement is scored
    subs = root / "submissions"
    for name, handed in [("made", {}), ("claims_digits", {"labels": "digits"})]:
        (subs / name).mkdir(parents=True)
        for f in ("final.pt", "config.yaml"):
            (subs / name / f).write_bytes((run_dir / f).read_bytes())
        if handed:
            (subs / name / "samples.json").write_text(json.dumps({**meta, **handed}))
            (subs / name / "samples.npz").write_bytes((root / "outputs" / "km" / "samples.npz").read_bytes())
    proc = run("leaderboard.py", "--submissions", subs, "--checked", "4", "--data_root", DATA_ROOT, cwd=root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("made", "claims_digits"):
        result = json.loads((root / "results" / f"{name}.json").read_text())
        assert result["sampling"]["labels"] == "kmeans" and result["sampling"]["num_classes"] == 12, name
        assert "label_agreement" not in result, name
