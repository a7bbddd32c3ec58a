"""Rank every results/*.json by FID (lower is better; ties by KID).

    python leaderboard.py [--results results] [--outputs outputs]

Prints the table and writes results/leaderboard.{md,csv,html}. Entries without exactly 5,000
samples are listed apart, not ranked. Neighbours whose FIDs differ by less than twice their
combined bootstrap spread are marked as within noise (~).
"""
import base64
import csv
import html
import io
import json
import sys
from pathlib import Path

from engine.errors import ArgumentParser, exit_on_user_error
from engine.fileio import atomic_path, ensure_dir, write_text

COLUMNS = ("rank", "student_name", "fid", "fid_std", "x_floor", "kid", "precision", "recall", "density",
           "coverage", "class_kl", "confidence", "num_samples", "noise")
REQUIRED_KEYS = ("student_name", "num_samples", "fid", "fid_bootstrap_std", "kid_mean")


def load_results(folder: Path) -> tuple[list[dict], list[str]]:
    entries, warnings = [], []
    for path in sorted(folder.glob("*.json")):
        try:
            r = json.loads(path.read_text())
            missing = [k for k in REQUIRED_KEYS if k not in r]
            if missing:
                raise ValueError(f"missing {', '.join(missing)}")
            float(r["fid"]), float(r["kid_mean"]), int(r["num_samples"])
        except (ValueError, TypeError, json.JSONDecodeError) as e:
            warnings.append(f"warning: skipped {path} ({str(e)[:80]})")
            continue
        entries.append(r)
    return entries, warnings


def within_noise(a: dict, b: dict) -> bool:
    return abs(a["fid"] - b["fid"]) < 2 * (a["fid_bootstrap_std"] ** 2 + b["fid_bootstrap_std"] ** 2) ** 0.5


def rank(entries: list[dict]) -> tuple[list[dict], list[dict]]:
    """(ranked rows, unranked rows with a reason)."""
    from metrics.evaluation import REQUIRED_SAMPLES

    ranked = sorted((e for e in entries if e["num_samples"] == REQUIRED_SAMPLES), key=lambda e: (e["fid"], e["kid_mean"]))
    rows = []
    for i, e in enumerate(ranked):
        near = [ranked[j]["student_name"] for j in (i - 1, i + 1) if 0 <= j < len(ranked) and within_noise(e, ranked[j])]
        rows.append(_row(e, i + 1, "~ " + ", ".join(near) if near else ""))
    unranked = [_row(e, "-", f"{e['num_samples']} samples; exactly {REQUIRED_SAMPLES} are required")
                for e in entries if e["num_samples"] != REQUIRED_SAMPLES]
    return rows, unranked


def _row(e: dict, rank_, noise: str) -> dict:
    g = lambda k, fmt: format(e[k], fmt) if isinstance(e.get(k), (int, float)) else ""
    return {"rank": rank_, "student_name": e["student_name"], "fid": g("fid", ".3f"),
            "fid_std": g("fid_bootstrap_std", ".3f"), "x_floor": g("fid_over_floor", ".2f"),
            "kid": g("kid_mean", ".5f"), "precision": g("precision", ".3f"), "recall": g("recall", ".3f"),
            "density": g("density", ".3f"), "coverage": g("coverage", ".3f"),
            "class_kl": g("class_kl_to_uniform", ".4f"), "confidence": g("mean_confidence", ".3f"),
            "num_samples": e["num_samples"], "noise": noise}


def markdown(rows: list[dict], unranked: list[dict]) -> str:
    line = lambda cells: "| " + " | ".join(str(c) for c in cells) + " |"
    out = [line(COLUMNS), line(["---"] * len(COLUMNS))] + [line(r.values()) for r in rows]
    if unranked:
        out += ["", "Not ranked:", ""] + [f"- {r['student_name']}: {r['noise']}" for r in unranked]
    return "\n".join(out) + "\n"


def thumbnail(outputs: Path, name: str) -> str:
    grid = outputs / name / "grid.png"
    if not grid.is_file():
        return ""
    data = base64.b64encode(grid.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" width="120" alt="samples of {html.escape(name)}">'


def html_page(rows: list[dict], unranked: list[dict], outputs: Path) -> str:
    def table(rs):
        head = "".join(f"<th>{c}</th>" for c in COLUMNS + ("samples",))
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values())
                       + f"<td>{thumbnail(outputs, r['student_name'])}</td></tr>" for r in rs)
        return f"<table><tr>{head}</tr>{body}</table>"
    style = "body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Leaderboard</title><style>{style}</style>"
             "</head><body><h1>MNIST diffusion leaderboard</h1><p>Ranked by FID (LeNet features; lower is better), "
             "ties by KID. ~ marks neighbours within noise.</p>", table(rows)]
    if unranked:
        parts += ["<h2>Not ranked</h2>", table(unranked)]
    return "".join(parts) + "</body></html>\n"


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--results", default="results")
    p.add_argument("--outputs", default="outputs", help="where NAME/grid.png thumbnails are found")
    args = p.parse_args(argv)
    folder = ensure_dir(args.results)
    entries, warnings = load_results(folder)
    for w in warnings:
        print(w, file=sys.stderr)
    rows, unranked = rank(entries)
    md = markdown(rows, unranked)
    write_text(folder / "leaderboard.md", md)
    with atomic_path(folder / "leaderboard.csv") as tmp:
        buf = io.StringIO()
        w = csv.DictWriter(buf, COLUMNS)
        w.writeheader()
        w.writerows(rows + unranked)
        tmp.write_text(buf.getvalue())
    write_text(folder / "leaderboard.html", html_page(rows, unranked, Path(args.outputs)))
    print(md if entries else "no results yet: run evaluate.py first", end="" if entries else "\n")
    print(f"wrote {folder}/leaderboard.md, .csv, .html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
