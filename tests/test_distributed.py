"""torchrun on 2 CPU processes (gloo): training matches one process with the same global batch,
sampling does not depend on the number of processes or the batch size, resume works across a
change of process count, and only rank 0 writes."""
import shutil
import subprocess

import numpy as np
import pytest
import torch

from conftest import REPO, TINY, assert_user_error, run, run_module

# constant lr after warmup: a 2-step run resumed to step 4 then sees the lrs of a straight 4-step run
STEPS = ["train.steps=4", "train.ckpt_every=2", "train.sample_every=0", "train.log_every=1", "model.dropout=0.0",
         "train.batch_size=8", "train.lr_schedule=constant"]


def torchrun(n: int, script: str, *args, cwd) -> subprocess.CompletedProcess:
    """torchrun (one thread per worker, its default) on n gloo processes; the launcher is forked like `run`."""
    return run_module("torch.distributed.run", "--standalone", "--nproc_per_node", n, REPO / script, *args, cwd=cwd,
                      timeout=600)


def weights(root, name, which="final.pt") -> dict:
    ckpt = torch.load(root / "checkpoints" / name / which, weights_only=True)
    return {"model": ckpt["model"], "ema": ckpt["ema"]["model"], "step": ckpt["step"]}


def assert_same_weights(a: dict, b: dict) -> None:
    assert a["step"] == b["step"]
    for part in ("model", "ema"):
        for key in a[part]:
            torch.testing.assert_close(a[part][key], b[part][key], rtol=1e-4, atol=1e-5, msg=f"{part}.{key}")


def two_ways(root, tiny_config, extra=()):
    """2 steps on 1 process and on 2 processes; then both resumed on 1 process to step 4."""
    opts, over = ["--config", tiny_config, "--no-progress"], [*TINY, *STEPS, *extra]
    ckpts = root / "checkpoints"
    one = run("train.py", *opts, "--student_name", "one", *over, "train.steps=2", cwd=root)
    two = torchrun(2, "train.py", *opts, "--student_name", "two", *over, "train.steps=2", cwd=root)
    for proc in (one, two):
        assert proc.returncode == 0, proc.stderr[-3000:]
    shutil.copy(ckpts / "one" / "final.pt", root / "one_step2.pt")
    shutil.copytree(ckpts / "two", ckpts / "mixed")
    rest = run("train.py", *opts, "--student_name", "mixed", *over, cwd=root)
    one = run("train.py", *opts, "--student_name", "one", *over, cwd=root)
    for proc in (rest, one):
        assert proc.returncode == 0, proc.stderr[-3000:]
    return root, rest


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_config):
    return two_ways(tmp_path_factory.mktemp("ddp"), tiny_config)


# random masks, jitter and (inpaint) self-conditioning: everything these tasks draw per batch
TASKS = {"inpaint": ["task.name=inpaint", "task.mask=box", "task.mask_size=9", "diffusion.self_cond=true",
                     "data.rotate=10"],
         "complete": ["task.name=complete", "model.name=convmlp", "model.width=32", "model.depth=1",
                      "task.mask=pixels", "data.shift=2"]}


@pytest.mark.parametrize("task", TASKS)
def test_inpaint_and_complete_train_the_same_at_any_process_count_and_across_a_resume(tmp_path, tiny_config, task):
    root, _ = two_ways(tmp_path, tiny_config, TASKS[task])
    one = torch.load(root / "one_step2.pt", weights_only=True)
    assert_same_weights(weights(root, "two"), {"model": one["model"], "ema": one["ema"]["model"], "step": one["step"]})
    assert_same_weights(weights(root, "mixed"), weights(root, "one"))


def test_two_processes_match_one_with_the_same_global_batch(runs):
    root, _ = runs
    one = torch.load(root / "one_step2.pt", weights_only=True)
    assert_same_weights(weights(root, "two"), {"model": one["model"], "ema": one["ema"]["model"], "step": one["step"]})
    assert torch.load(root / "checkpoints" / "two" / "final.pt", weights_only=True)["world_size"] == 2


def test_resume_on_another_number_of_processes(runs):
    root, rest = runs
    assert "resuming mixed" in rest.stdout and "at step 2" in rest.stdout
    assert_same_weights(weights(root, "mixed"), weights(root, "one"))


def test_only_rank_zero_writes(runs):
    root, _ = runs
    log = (root / "checkpoints" / "two" / "log.tsv").read_text().splitlines()
    assert log[0].startswith("step\t") and [r.split("\t")[0] for r in log[1:]] == ["1", "2"]
    one = (root / "checkpoints" / "one" / "log.tsv").read_text().splitlines()[:3]
    loss = lambda rows: [float(r.split("\t")[2]) for r in rows[1:]]
    assert loss(log) == pytest.approx(loss(one), rel=1e-3), "the logged loss is the whole batch's, not rank 0's"
    assert sorted(p.name for p in (root / "checkpoints" / "two").iterdir()) == ["config.yaml", "final.pt", "last.pt",
                                                                              "log.tsv"]


def test_samples_do_not_depend_on_processes_or_batch_size(runs):
    root, _ = runs
    ckpt = root / "checkpoints" / "one" / "final.pt"
    common = ["--checkpoint", ckpt, "--num_samples", "9", "--steps", "3", "--sampler", "ddpm", "--seed", "5"]
    procs = [run("sample.py", *common, "--student_name", "s1", "--batch_size", "9", cwd=root),
             run("sample.py", *common, "--student_name", "s2", "--batch_size", "2", cwd=root),
             torchrun(2, "sample.py", *common, "--student_name", "s3", "--batch_size", "4", cwd=root)]
    for proc in procs:
        assert proc.returncode == 0, proc.stderr[-3000:]
    images = [np.load(root / "outputs" / f"s{i}" / "samples.npz")["images"] for i in (1, 2, 3)]
    assert images[0].shape == (9, 28, 28) and images[0].std() > 0
    np.testing.assert_array_equal(images[0], images[1])
    np.testing.assert_array_equal(images[0], images[2])
    assert len(list((root / "outputs" / "s3" / "samples").iterdir())) == 9


def test_bad_process_counts(runs, tiny_config):
    root, _ = runs
    proc = torchrun(3, "train.py", "--config", tiny_config, "--student_name", "three", *TINY, *STEPS, cwd=root)
    assert proc.returncode != 0 and "cannot be split over 3 processes" in proc.stderr, proc.stderr[-2000:]
    proc = torchrun(2, "sample.py", "--checkpoint", root / "checkpoints" / "one" / "final.pt", "--num_samples", "1",
                    cwd=root)
    assert proc.returncode != 0 and "2 processes for 1 samples" in proc.stderr, proc.stderr[-2000:]


def test_a_wrapped_or_compiled_state_dict_loads(runs, tiny_config):
    from engine import checkpoint, config
    from tasks import build_network

    root, _ = runs
    state = weights(root, "one")["model"]
    model = build_network(config.load(tiny_config, TINY))
    checkpoint.load_weights(model, {f"module._orig_mod.{k}": v for k, v in state.items()}, "x.pt")
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])
    assert_user_error(run("sample.py", "--checkpoint", root / "nothing.pt", cwd=root), "not found")


def test_out_of_memory_halves_the_batch_and_keeps_the_samples(runs):
    from engine import checkpoint
    from tasks.generation import generate
    from tasks import build_network

    root, _ = runs
    ckpt = checkpoint.load(root / "checkpoints" / "one" / "final.pt")
    cfg = checkpoint.config_of(ckpt, "one")
    net = build_network(cfg)
    net.load_state_dict(ckpt["ema"]["model"])

    class SmallMemory(torch.nn.Module):  # a device that fits at most 3 images
        def __init__(self):
            super().__init__()
            self.net, self.batches = net, []

        def forward(self, x, t, y=None):
            if len(x) > 3:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            self.batches.append(len(x))
            return self.net(x, t)

    small = SmallMemory()
    args = dict(seed=3, sampler="ddim", steps=3, eta=0.0, device=torch.device("cpu"), progress=False)
    np.testing.assert_array_equal(generate(small, cfg, 7, batch_size=8, **args),
                                  generate(net, cfg, 7, batch_size=7, **args))
    assert max(small.batches) == 3  # the first batch of 7 fails, then 3, 3, 1
