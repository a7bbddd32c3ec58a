"""engine.rows: the store behind the resumable sweeps."""
import json

from engine.rows import Rows


def test_two_stores_on_one_file_keep_each_others_rows(tmp_path):
    path, key = tmp_path / "rows.json", {"checkpoint_sha256": "abc", "seed": 0}
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
