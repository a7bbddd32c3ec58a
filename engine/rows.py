"""Rows of a long measurement, stored as each is measured so that a killed run resumes."""
from __future__ import annotations

import json
from pathlib import Path

from engine.errors import UserError
from engine.fileio import ensure_dir, write_json


class Rows:
    """The rows in the JSON file `path` whose `key` fields (checkpoint sha256, sample count, seed...)
    equal `key`; rows measured under another key are dropped when the file is next written."""

    def __init__(self, path: str | Path, key: dict, **header):
        self.path, self.key, self.header = Path(path), key, header
        try:
            stored = json.loads(self.path.read_text()) if self.path.is_file() else {}
        except json.JSONDecodeError:
            raise UserError(f"{self.path} is not readable JSON; delete it to measure every row again") from None
        ensure_dir(self.path.parent)
        self.rows = [r for r in stored.get("rows", []) if {k: r.get(k) for k in key} == key]

    def find(self, **match) -> dict | None:
        return next((r for r in self.rows if all(r.get(k) == v for k, v in match.items())), None)

    def add(self, row: dict) -> dict:
        row = {**self.key, **row}
        self.rows.append(row)
        write_json(self.path, {**self.header, "rows": self.rows})
        return row
