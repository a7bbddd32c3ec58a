"""Checkpoints written by an earlier version of the code keep sampling bit-identically.

tests/fixtures/ holds two tiny checkpoints written by train.py before the code moved into tasks/
(commit "test fixtures" in the history): a class-conditional generator (guidance 1) and an inpaint
model, with the 16 digits and 16 completions sample.py made from them then. Any change that alters
what a checkpoint samples (the network's layout, the noise streams, the samplers) fails here."""
import numpy as np

from conftest import DATA_ROOT, REPO, run

FIXTURES = REPO / "tests" / "fixtures"


def test_generator_fixture_samples_bit_identically(tmp_path):
    proc = run("sample.py", "--checkpoint", str(FIXTURES / "generate_cond.pt"), "--student_name", "fx",
               "--num_samples", "16", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    expected = np.load(FIXTURES / "generate_cond_samples.npz")["images"]
    got = np.load(tmp_path / "outputs" / "fx" / "samples.npz")["images"]
    assert got.dtype == np.uint8 and got.shape == (16, 28, 28)
    np.testing.assert_array_equal(got, expected)


def test_inpaint_fixture_completes_bit_identically(tmp_path):
    proc = run("sample.py", "--checkpoint", str(FIXTURES / "inpaint.pt"), "--student_name", "fx", "--task", "inpaint",
               "--n", "16", "--data_root", DATA_ROOT, "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    expected = np.load(FIXTURES / "inpaint_completions.npz")
    got = np.load(tmp_path / "outputs" / "fx" / "inpaint" / "completions.npz")
    for key in ("images", "indices", "masks"):
        np.testing.assert_array_equal(got[key], expected[key])
    assert (got["images"][got["masks"]] != 0).any()  # the holes were filled, not left black
