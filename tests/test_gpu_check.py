"""scripts/gpu_check.py --smoke: the GPU check's every step, on the CPU, so the script cannot rot."""
import json

from conftest import DATA_ROOT, run


def test_gpu_check_smoke_trains_samples_scores_regenerates_and_runs_the_device_tests(tmp_path, fid_cache):
    out = tmp_path / "gpu_check.json"
    proc = run("scripts/gpu_check.py", "--smoke", "--out", out, "--data_root", DATA_ROOT, "--cache_dir", fid_cache,
               "--work", tmp_path / "work", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    s = json.loads(out.read_text())
    assert s["smoke"] and s["cut"] == "train.steps=4 of 9400" and s["num_samples"] == 40
    assert s["train_images_per_s"] > 0 and s["sample_images_per_s"] > 0 and s["fid"] > 0 and s["x_floor"] > 0
    assert 0 <= s["label_agreement"] <= 1  # configs/gpu.yaml is class-conditional
    assert s["cpu_regeneration"]["matched"] == s["cpu_regeneration"]["checked"] == 40
    assert s["cpu_regeneration"]["max_mean_abs_diff"] == 0  # same device, bit-exact
    assert s["cuda_tests_passed"] and s["cuda_tests"].startswith("2 passed")
    assert (tmp_path / "work" / "checkpoints" / "gpu_check" / "final.pt").is_file()
