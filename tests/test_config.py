import shutil
import dataclasses
import subprocess
import sys

import pytest
import torch

from engine import config
from common.errors import UserError
from models.model import REGISTRY
from tests.conftest import REPO


def test_shipped_configs_load():
    for path in sorted((REPO / "configs").glob("*.yaml")):
        cfg = config.load(path)
        assert cfg.model.name in REGISTRY


def test_overrides_are_typed():
    cfg = config.load(REPO / "configs" / "tiny.yaml",
                      ["train.steps=7", "train.lr=1e-3", "model.channel_mult=[1,2]", "model.attn_levels=[1]", "train.bf16=true",
                       "sample.eta=1"])
    assert cfg.train.steps == 7 and cfg.train.lr == 1e-3 and cfg.model.channel_mult == [1, 2]
    assert cfg.train.bf16 is True and cfg.sample.eta == 1.0 and isinstance(cfg.sample.eta, float)


def test_round_trip_through_dict():
    cfg = config.load(REPO / "configs" / "tiny.yaml", ["train.steps=3"])
    assert config.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("override, fragment", [
    ("train.stepz=3", "did you mean train.steps"),
    ("modle.channels=3", "did you mean model.channels"),
    ("train.steps=abc", "train.steps"),
    ("train.steps=2.5", "must be int"),
    ("train.bf16=3", "must be bool"),
    ("model.channel_mult=3", "list of int"),
    ("train.lr=0", "train.lr"),
    ("train.ema_decay=1.5", "train.ema_decay"),
    ("diffusion.schedule=quadratic", "linear, cosine"),
    ("sample.steps=5000", "<= diffusion.timesteps"),
    ("model.attn_levels=[5]", "model.attn_levels"),
    ("model.name=resnet", "unet, transformer"),
    ("model.patch_size=5", "divisor of data.image_size .28."),
    ("model.num_classes=3", "model.num_classes.*0 .unconditional. or 10"),
    ("data.val_size=500", "data.val_size=500 .* unless train.val_every > 0"),
    ("diffusion.level_uniform=1.5", "diffusion.level_uniform.*in .0, 1."),
    ("diffusion.min_snr_gamma=3", "diffusion.min_snr_gamma.*unless diffusion.loss_weighting=min_snr"),
    ("diffusion.p2_k=2", "diffusion.p2_k.*unless diffusion.loss_weighting=p2"),
    ("train.eval_samples=500", "train.eval_samples.*unless train.eval_every > 0"),
    ("train.label_dropout=0.2", "train.label_dropout.*unless model.num_classes > 0"),
    ("inpaint.mean_at=1", "inpaint.mean_at.*in .0, 1."),
    ("inpaint.mean_at=0.5", "inpaint.mean_at.*unless task.name=inpaint"),
    ("steps", "section.key=value"),
    ("diffusion.level_sampling=beta", "uniform, lognormal"),
    ("diffusion.p_std=0", "diffusion.p_std"),
    ("train.eval_every=1 train.eval_samples=1", "train.eval_samples=1 .* >= 2"),
    ("data.val_size=60000", "data.val_size"),
    ("train.val_every=5", "train.val_every.*data.val_size > 0"),
])
def test_bad_overrides_name_the_key(override, fragment):
    with pytest.raises(UserError, match=fragment.replace("[", r"\[")):
        config.load(REPO / "configs" / "tiny.yaml", override.split())


@pytest.mark.parametrize("config_name, overrides, fragment", [
    ("moons.yaml", ["model.num_classes=10"], "model.num_classes=10 .*0 for data.name=moons"),
    ("default.yaml", ["train.label_dropout=0"], "sample.guidance=0.25 .*0 when train.label_dropout is 0"),
    ("default.yaml", ["model.num_classes=0"], "data.labels='digits_kmeans' in .*default.yaml with the command line's "
                                              "overrides .*unless model.num_classes > 0.*set data.labels=digits"),
    ("default.yaml", ["diffusion.level_sampling=uniform", "diffusion.p_mean=0"],
     "diffusion.p_mean=0.0 .*unless diffusion.level_sampling=lognormal"),
    ("default.yaml", ["diffusion.level_sampling=uniform", "diffusion.level_uniform=0.2"],
     "diffusion.level_uniform=0.2 .*unless diffusion.level_sampling=lognormal"),
])
def test_keys_that_would_crash_later_or_do_nothing_fail_at_load(config_name, overrides, fragment):
    with pytest.raises(UserError, match=fragment):
        config.load(REPO / "configs" / config_name, overrides)
    config.load(REPO / "configs" / config_name, ["diffusion.level_sampling=lognormal", overrides[1]] if "level_uniform" in fragment else [])


def test_the_transformer_is_built_for_the_configured_image_size():
    from tasks import build_network

    cfg = config.load(REPO / "configs" / "tiny_transformer.yaml")
    cfg.data.image_size = 32  # as a folder of 32 x 32 pairs would set it (set here without the MNIST rule)
    net = build_network(cfg)
    assert net.grid * net.p == 32
    assert net(torch.zeros(2, 1, 32, 32), torch.ones(2)).shape == (2, 1, 32, 32)


def test_bad_files(tmp_path):
    with pytest.raises(UserError, match="not found"):
        config.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        config.load(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("train:\n  lr_rate: 0.1\n")
    with pytest.raises(UserError, match=r"train.lr_rate in .*unknown.yaml.*did you mean train.lr"):
        config.load(unknown)


def test_training_time_fid_is_for_digit_generation_only():
    with pytest.raises(UserError, match="train.eval_every"):
        config.load(REPO / "configs" / "inpaint_tiny.yaml", ["train.eval_every=10"])


def test_config_reference_is_generated_from_the_dataclasses():
    """docs/config.md is exactly what `python -m engine.config --markdown` prints, and every key has a help string."""
    for cls in config.SECTIONS.values():
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help", "").strip(), f"{cls.__name__}.{f.name} has no help string"
    text = config.markdown()
    assert "| `train.steps` | int | `20000` | >= 1 |" in text and "| `diffusion.prediction` | str | `eps` | eps, x0, v |" in text
    assert "- `configs/default.yaml`: The recommended start" in text
    proc = subprocess.run([sys.executable, "-m", "engine.config", "--markdown"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == text, proc.stderr
    assert (REPO / "docs" / "config.md").read_text() == text, \
        "docs/config.md is stale: run python -m engine.config --markdown > docs/config.md"


def test_a_moved_key_names_its_new_home_and_old_checkpoint_configs_migrate(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("sample:\n  dc_repeats: 2\n")
    with pytest.raises(UserError, match=r"sample.dc_repeats in .*old.yaml is now inpaint.dc_repeats"):
        config.load(path)
    with pytest.raises(UserError, match="inpaint.mean_of"):
        config.load(REPO / "configs" / "tiny.yaml", ["sample.mean_of=2"])
    stored = config.Config().to_dict()
    stored["sample"]["dc_repeats"] = 3  # a checkpoint's config from before the move
    del stored["inpaint"]
    assert config.from_dict(stored, "a checkpoint", migrate=True).inpaint.dc_repeats == 3


def test_a_config_extends_its_base_key_by_key(tmp_path):
    shutil.copy(REPO / "configs" / "default.yaml", tmp_path / "default.yaml")
    mine = tmp_path / "sub" / "my_config.yaml"
    mine.parent.mkdir()
    mine.write_text("base: ../default.yaml\ntrain:\n  steps: 2000\nsample:\n  guidance: 1.0\n")
    cfg, recipe = config.load(mine), config.load(REPO / "configs" / "default.yaml")
    assert (cfg.train.steps, cfg.sample.guidance) == (2000, 1.0)
    assert (cfg.train.lr, cfg.model, cfg.diffusion) == (recipe.train.lr, recipe.model, recipe.diffusion)
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(UserError, match="names itself as a base"):
        config.load(tmp_path / "loop.yaml")
    (tmp_path / "gone.yaml").write_text("base: nowhere.yaml\n")
    with pytest.raises(UserError, match="nowhere.yaml not found"):
        config.load(tmp_path / "gone.yaml")
