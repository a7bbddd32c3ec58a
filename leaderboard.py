"""Rank every results/*.json: generation by FID (lower is better; ties by KID), inpainting by hole MSE.

    python leaderboard.py [--results results] [--outputs outputs]

Prints the tables and writes results/leaderboard.{md,csv,html} (and leaderboard_inpaint.csv).
Generation entries without exactly 5,000 samples are listed apart, not ranked. Neighbours whose
FIDs differ by less than twice their combined bootstrap spread are marked as within noise (~).
Inpainting entries (results/NAME_inpaint.json) are ranked by hole MSE among entries scored on the
same mask and test digits (seed, n_eval). Neighbours are marked within noise when their hole MSEs
differ by less than twice the standard error of the difference: paired over the digits when both
files hold per-digit errors, otherwise from the two standard errors.
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
INPAINT_COLUMNS = ("mask", "rank", "student_name", "method", "hole_mse", "hole_mse_sem", "hole_psnr", "hole_l1",
                   "hole_ssim", "whole_ssim", "s_per_image", "n_eval", "seed", "noise")
INPAINT_KEYS = ("student_name", "mask", "hole_mse", "hole_mse_sem", "hole_psnr", "hole_l1", "hole_ssim", "n_eval")


def load_results(folder: Path) -> tuple[list[dict], list[dict], list[str]]:
    """(generation entries, inpainting entries, warnings about files that are skipped)."""
    entries, inpaint, warnings = [], [], []
    for path in sorted(folder.glob("*.json")):
        try:
            r = json.loads(path.read_text())
            if not isinstance(r, dict):
                raise ValueError("not a JSON object")
            if r.get("task") in ("course", "moons"):  # scores of other kinds (moons: scripts/moons_table.py)
                continue
            is_inpaint = r.get("task") == "inpaint"
            missing = [k for k in (INPAINT_KEYS if is_inpaint else REQUIRED_KEYS) if k not in r]
            if missing:
                raise ValueError(f"missing {', '.join(missing)}")
            if is_inpaint:
                float(r["hole_mse"]), float(r["hole_mse_sem"]), int(r["n_eval"])
            else:
                float(r["fid"]), float(r["kid_mean"]), int(r["num_samples"])
        except (ValueError, TypeError, json.JSONDecodeError) as e:
            warnings.append(f"warning: skipped {path} ({str(e)[:80]})")
            continue
        (inpaint if is_inpaint else entries).append(r)
    return entries, inpaint, warnings


def within_noise(a: dict, b: dict) -> bool:
    return abs(a["fid"] - b["fid"]) < 2 * (a["fid_bootstrap_std"] ** 2 + b["fid_bootstrap_std"] ** 2) ** 0.5


def rank(entries: list[dict]) -> tuple[list[dict], list[dict]]:
    """(ranked rows, unranked rows with a reason)."""
    from metrics.evaluation import unranked_reason

    ranked = sorted((e for e in entries if unranked_reason(e["num_samples"]) is None),
                    key=lambda e: (e["fid"], e["kid_mean"]))
    rows = []
    for i, e in enumerate(ranked):
        near = [ranked[j]["student_name"] for j in (i - 1, i + 1) if 0 <= j < len(ranked) and within_noise(e, ranked[j])]
        rows.append(_row(e, i + 1, "~ " + ", ".join(near) if near else ""))
    unranked = [_row(e, "-", unranked_reason(e["num_samples"])) for e in entries if unranked_reason(e["num_samples"])]
    return rows, unranked


def _row(e: dict, rank_, noise: str) -> dict:
    g = lambda k, fmt: format(e[k], fmt) if isinstance(e.get(k), (int, float)) else ""
    return {"rank": rank_, "student_name": e["student_name"], "fid": g("fid", ".3f"),
            "fid_std": g("fid_bootstrap_std", ".3f"), "x_floor": g("fid_over_floor", ".2f"),
            "kid": g("kid_mean", ".5f"), "precision": g("precision", ".3f"), "recall": g("recall", ".3f"),
            "density": g("density", ".3f"), "coverage": g("coverage", ".3f"),
            "class_kl": g("class_kl_to_uniform", ".4f"), "confidence": g("mean_confidence", ".3f"),
            "num_samples": e["num_samples"], "noise": noise}


def inpaint_within_noise(a: dict, b: dict) -> bool:
    from metrics.inpainting import paired_difference

    if "hole_mse_per_image" in a and "hole_mse_per_image" in b:
        diff, sem = paired_difference(a["hole_mse_per_image"], b["hole_mse_per_image"])
    else:
        diff, sem = a["hole_mse"] - b["hole_mse"], (a["hole_mse_sem"] ** 2 + b["hole_mse_sem"] ** 2) ** 0.5
    return abs(diff) < 2 * sem


def rank_inpainting(entries: list[dict]) -> list[dict]:
    """Rows grouped by mask and test digits, ranked by hole MSE within each (ties by PSNR, higher first)."""
    from metrics.inpainting import scored_on

    rows = []
    for key in sorted({scored_on(e) for e in entries}):
        group = sorted((e for e in entries if scored_on(e) == key), key=lambda e: (e["hole_mse"], -e["hole_psnr"]))
        for i, e in enumerate(group):
            near = [group[j]["student_name"] for j in (i - 1, i + 1)
                    if 0 <= j < len(group) and inpaint_within_noise(e, group[j])]
            g = lambda k, fmt: format(e[k], fmt) if isinstance(e.get(k), (int, float)) else ""
            rows.append({"mask": key[0], "rank": i + 1, "student_name": e["student_name"],
                         "method": e.get("method", ""), "hole_mse": g("hole_mse", ".5f"),
                         "hole_mse_sem": g("hole_mse_sem", ".5f"), "hole_psnr": g("hole_psnr", ".2f"),
                         "hole_l1": g("hole_l1", ".4f"), "hole_ssim": g("hole_ssim", ".4f"),
                         "whole_ssim": g("whole_ssim", ".4f"), "s_per_image": g("seconds_per_image", ".4f"),
                         "n_eval": e["n_eval"], "seed": key[1], "noise": "~ " + ", ".join(near) if near else ""})
    return rows


def markdown(rows: list[dict], unranked: list[dict], inpaint_rows: list[dict] = ()) -> str:
    line = lambda cells: "| " + " | ".join(str(c) for c in cells) + " |"
    out = ["## Generation (FID)", "", line(COLUMNS), line(["---"] * len(COLUMNS))] + [line(r.values()) for r in rows]
    if unranked:
        out += ["", "Not ranked:", ""] + [f"- {r['student_name']}: {r['noise']}" for r in unranked]
    if inpaint_rows:
        out += ["", "## Inpainting (hole MSE, [0, 1] units)", "", line(INPAINT_COLUMNS),
                line(["---"] * len(INPAINT_COLUMNS))] + [line(r.values()) for r in inpaint_rows]
    return "\n".join(out) + "\n"


def thumbnail(outputs: Path, name: str, picture: str = "grid.png") -> str:
    grid = outputs / name / picture
    if not grid.is_file():
        return ""
    data = base64.b64encode(grid.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" width="120" alt="samples of {html.escape(name)}">'


def html_page(rows: list[dict], unranked: list[dict], outputs: Path, inpaint_rows: list[dict] = ()) -> str:
    def table(rs, columns=COLUMNS, picture="grid.png"):
        head = "".join(f"<th>{c}</th>" for c in columns + ("samples",))
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values())
                       + f"<td>{thumbnail(outputs, r['student_name'], picture)}</td></tr>" for r in rs)
        return f"<table><tr>{head}</tr>{body}</table>"
    style = "body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Leaderboard</title><style>{style}</style>"
             "</head><body><h1>MNIST diffusion leaderboard</h1><p>Ranked by FID (LeNet features; lower is better), "
             "ties by KID. ~ marks neighbours within noise.</p>", table(rows)]
    if unranked:
        parts += ["<h2>Not ranked</h2>", table(unranked)]
    if inpaint_rows:
        parts += ["<h2>Inpainting</h2><p>Ranked within each mask by the MSE on the hole pixels ([0, 1] units; "
                  "lower is better). Panels: masked input, completions, original.</p>",
                  table(inpaint_rows, INPAINT_COLUMNS, "inpaint/samples.png")]
    return "".join(parts) + "</body></html>\n"


def write_csv(path: Path, columns: tuple, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, columns)
    w.writeheader()
    w.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--results", default="results")
    p.add_argument("--outputs", default="outputs", help="where NAME/grid.png thumbnails are found")
    args = p.parse_args(argv)
    folder = ensure_dir(args.results)
    entries, inpaint, warnings = load_results(folder)
    for w in warnings:
        print(w, file=sys.stderr)
    rows, unranked = rank(entries)
    inpaint_rows = rank_inpainting(inpaint)
    md = markdown(rows, unranked, inpaint_rows)
    write_text(folder / "leaderboard.md", md)
    write_csv(folder / "leaderboard.csv", COLUMNS, rows + unranked)
    if inpaint_rows:
        write_csv(folder / "leaderboard_inpaint.csv", INPAINT_COLUMNS, inpaint_rows)
    write_text(folder / "leaderboard.html", html_page(rows, unranked, Path(args.outputs), inpaint_rows))
    found = entries or inpaint
    print(md if found else "no results yet: run evaluate.py first", end="" if found else "\n")
    print(f"wrote {folder}/leaderboard.md, .csv, .html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
