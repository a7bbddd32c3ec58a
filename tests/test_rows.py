"""engine.rows: the store behind the resumable sweeps."""
import json

import numpy as np
import pytest

from engine.rows import Rows


def test_two_stores_on_one_file_keep_each_others_rows(tmp_path):
    path, key = tmp_path / "rows.json", {"weights_sha256": "abc", "seed": 0}
    a, b = Rows(path, key, checkpoint="c.pt"), Rows(path, key, checkpoint="c.pt")  # two sweeps side by side
    a.add({"variant": "ddpm", "fid": 3.0})
    b.add({"variant": "heun", "fid": 4.0})
    assert b.find(variant="ddpm")["fid"] == 3.0, "rows another process stored are found"
    a.add({"variant": "euler", "fid": 5.0})
    stored = json.loads(path.read_text())
    assert stored["checkpoint"] == "c.pt" and sorted(r["variant"] for r in stored["rows"]) == ["ddpm", "euler", "heun"]
    b.add({"variant": "heun", "fid": 4.5}, replace={"variant": "heun"})
    assert [r["fid"] for r in Rows(path, key).rows if r["variant"] == "heun"] == [4.5], "replaced, not duplicated"
    assert Rows(path, {**key, "seed": 1}).rows == [], "rows of another key are not this store's"


def test_generate_resumes_a_killed_row_from_its_last_chunk(tmp_path):
    path, key = tmp_path / "rows.json", {"weights_sha256": "abc", "seed": 0}
    asked = []

    def make(indices, kill_after=None):
        asked.append(indices.tolist())
        if kill_after is not None and len(asked) > kill_after:
            raise KeyboardInterrupt
        return np.stack([np.full((2, 2), i) for i in indices])

    whole, _ = Rows(path, key).generate("ddpm_x5", 10, 10, make)
    assert asked == [list(range(10))]
    asked.clear()
    with pytest.raises(KeyboardInterrupt):
        Rows(path, key).generate("ddpm_x5", 10, 4, lambda i: make(i, kill_after=2))
    partial = tmp_path / "rows.ddpm_x5.partial.npz"
    assert partial.is_file() and asked == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    asked.clear()
    resumed, seconds = Rows(path, key).generate("ddpm_x5", 10, 4, make)
    assert asked == [[8, 9]] and np.array_equal(resumed, whole) and seconds > 0, "only the missing chunk made"
    assert not partial.exists() and not list(tmp_path.glob(".*.tmp")), "the partial file goes once the row is done"
    asked.clear()
    with pytest.raises(KeyboardInterrupt):
        Rows(path, key).generate("ddpm_x5", 10, 4, lambda i: make(i, kill_after=1))
    assert partial.is_file()
    asked.clear()
    assert np.array_equal(Rows(path, {**key, "seed": 1}).generate("ddpm_x5", 10, 4, make)[0], whole)
    assert asked == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]], "another key's digits are not resumed"
