"""Rows of a long measurement, stored as each is measured so that a killed run resumes."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from dataio.images import save_npz
from common.errors import UserError
from common.fileio import ensure_dir, write_json


class Rows:
    """The rows in the JSON file `path` whose `key` fields (checkpoint sha256, sample count, seed...)
    equal `key`; rows measured under another key are dropped when the file is next written. Every
    write first reads the file again and keeps the rows another process added meanwhile, so two
    sweeps run side by side (each measuring other rows) can share one file."""

    def __init__(self, path: str | Path, key: dict, **header):
        self.path, self.key, self.header = Path(path), key, header
        ensure_dir(self.path.parent)
        self.rows = self._stored()

    def _stored(self) -> list[dict]:
        try:
            stored = json.loads(self.path.read_text()) if self.path.is_file() else {}
        except json.JSONDecodeError:
            raise UserError(f"{self.path} is not readable JSON; delete it to measure every row again") from None
        return [r for r in stored.get("rows", []) if {k: r.get(k) for k in self.key} == self.key]

    def _merged(self, rows: list[dict], drop: dict | None = None) -> list[dict]:
        """The file's rows and `rows`, each row once, less those that match every field of `drop`."""
        return list({json.dumps(r, sort_keys=True): r for r in self._stored() + rows
                     if not (drop and all(r.get(k) == v for k, v in drop.items()))}.values())

    def find(self, **match) -> dict | None:
        self.rows = self._merged(self.rows)
        return next((r for r in self.rows if all(r.get(k) == v for k, v in match.items())), None)

    def add(self, row: dict, replace: dict | None = None) -> dict:
        """Store `row`; with `replace` (fields to match), a stored row that matches it is dropped first."""
        row = {**self.key, **row}
        rows = self._merged(self.rows, drop=replace)
        self.rows = rows + ([] if row in rows else [row])
        write_json(self.path, {**self.header, "rows": self.rows})
        return row

    def generate(self, name: str, n: int, chunk: int, make) -> tuple[np.ndarray, float]:
        """The n outputs of `make(indices)` (an array per index, such as generation.generate's digits)
        and the seconds spent in `make`, made `chunk` indices at a time. After each chunk the outputs
        so far are stored beside the rows file (NAME.partial.npz, with this store's key), so a row
        killed midway resumes from its last chunk; the file is removed once all n are made. The
        outputs equal one call on all n when sample i depends on i alone (keyed noise) and `chunk`
        is a multiple of the batch size."""
        path = self.path.with_name(f"{self.path.stem}.{name}.partial.npz")
        key = json.dumps({**self.key, "name": name, "n": n}, sort_keys=True)
        parts, seconds = [], 0.0
        if path.is_file():
            with np.load(path) as stored:
                if str(stored["key"]) == key:
                    parts, seconds = [stored["done"]], float(stored["seconds"])
        done = sum(len(p) for p in parts)
        while done < n:
            start = time.perf_counter()
            parts.append(make(np.arange(done, min(n, done + chunk))))
            seconds += time.perf_counter() - start
            done += len(parts[-1])
            if done < n:
                save_npz(path, done=np.concatenate(parts), seconds=seconds, key=key)
        path.unlink(missing_ok=True)
        return np.concatenate(parts), seconds
