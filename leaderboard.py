"""Rank every results/*.json: generation by FID (lower is better; ties by KID), inpainting by hole MSE.

    python leaderboard.py [--results results] [--outputs outputs]
    python leaderboard.py --submissions DIR [--run_student_code] [--grader_seed S] [--checked K] [--split_labels]
    python leaderboard.py --course DIR --target truth.npz [--baseline NAME]

Prints the tables and writes results/leaderboard.{md,csv,html} (and leaderboard_inpaint.csv).
--submissions first grades DIR/NAME/ (the checkpoint, config.yaml or my_config.yaml, optionally
model.py and the samples with samples.json; see grading/submissions.py): every hand-in without an
up-to-date result is graded (K of its samples regenerated from its checkpoint, or all 5,000 made by
the grader when none were handed in), a student's own model.py runs only with --run_student_code
(in a child process), and broken folders are named with the reason. Entries are ranked only among
entries scored with the same feature network, and in submissions mode only graded hand-ins are
ranked. Entries are listed apart, not ranked, without exactly 5,000 samples, when not verified, or
when flagged by the integrity checks (grading/integrity.py). Neighbours whose FIDs differ by less
than twice their combined bootstrap spread are marked as within noise (~).
Inpainting entries (results/NAME_inpaint.json) are ranked by hole MSE among entries scored on the
same mask and test digits (seed, n_eval). Neighbours are marked within noise when their hole MSEs
differ by less than twice the standard error of the difference: paired over the digits when both
files hold per-digit errors, otherwise from the two standard errors.
"""
import base64
import csv
import html
import io
import sys
from pathlib import Path

from common.errors import ArgumentParser, exit_on_user_error
from common.fileio import atomic_path, ensure_dir, write_text
from grading.ranking import load_results, rank, rank_inpainting
from tasks.generate import guidance_words

COLUMNS = ("rank", "student_name", "fid", "fid_std", "x_floor", "kid", "precision", "recall", "density",
           "coverage", "class_kl", "confidence", "labels", "label_agreement", "num_samples", "verified", "copies",
           "near_duplicates", "noise")
UNRANKED_COLUMNS = COLUMNS[:-1] + ("not_ranked_reason",)
INPAINT_COLUMNS = ("mask", "rank", "student_name", "method", "hole_mse", "hole_mse_sem", "hole_psnr", "hole_l1",
                   "hole_ssim", "whole_ssim", "s_per_image", "n_eval", "seed", "noise")


def generation_tables(groups: list[dict], unranked: list) -> tuple[list[tuple[str, list[dict]]], list[dict]]:
    """([(title, rows)] one table per comparable group, unranked rows with their reason)."""
    several = len(groups) > 1
    tables = []
    for g in groups:
        title = (f"{g['feature_net']} features (sha256 {g['sha256'][:12]})" if several else "") + \
            (f"{', ' if several else ''}{g['labels']}" if g["labels"] else "")
        rows = [{**_row(e, r), "noise": "~ " + ", ".join(near) if near else ""} for r, e, near in g["rows"]]
        tables.append((title, rows))
    return tables, [{**_row(e, "-"), "not_ranked_reason": reason} for e, reason in unranked]


def inpaint_table(ranked: list[tuple]) -> list[dict]:
    rows = []
    for mask, seed, r, e, near in ranked:
        g = lambda k, fmt: format(e[k], fmt) if isinstance(e.get(k), (int, float)) else ""  # noqa: E731
        rows.append({"mask": mask, "rank": r, "student_name": e["student_name"],
                     "method": e.get("method", ""), "hole_mse": g("hole_mse", ".5f"),
                     "hole_mse_sem": g("hole_mse_sem", ".5f"), "hole_psnr": g("hole_psnr", ".2f"),
                     "hole_l1": g("hole_l1", ".4f"), "hole_ssim": g("hole_ssim", ".4f"),
                     "whole_ssim": g("whole_ssim", ".4f"), "s_per_image": g("seconds_per_image", ".4f"),
                     "n_eval": e["n_eval"], "seed": seed, "noise": "~ " + ", ".join(near) if near else ""})
    return rows


def _row(e: dict, rank_) -> dict:
    g = lambda k, fmt: format(e[k], fmt) if isinstance(e.get(k), (int, float)) else ""
    return {"rank": rank_, "student_name": e["student_name"], "fid": g("fid", ".3f"),
            "fid_std": g("fid_bootstrap_std", ".3f"), "x_floor": g("fid_over_floor", ".2f"),
            "kid": g("kid_mean", ".5f"), "precision": g("precision", ".3f"), "recall": g("recall", ".3f"),
            "density": g("density", ".3f"), "coverage": g("coverage", ".3f"),
            "class_kl": g("class_kl_to_uniform", ".4f"), "confidence": g("mean_confidence", ".3f"),
            "labels": _labels(e), "label_agreement": g("label_agreement", ".1%"),
            "num_samples": e["num_samples"], "verified": _verified(e), "copies": g("copy_share", ".1%"),
            "near_duplicates": g("near_duplicate_share", ".1%"), "_grid": e.get("grid")}


def _labels(e: dict) -> str:
    """Whether the samples came from a class-conditional model: "yes, w 0.25" (its guidance weight),
    "no", "no (20 k-means clusters), w 1" (conditioned on clusters of the pixels, data.labels=kmeans), or
    "?" (samples.json does not say: evaluate.py on samples from elsewhere, or an older one);
    ", autoguidance 1.6" when it was used (it needs no labels); tasks.generate.guidance_words."""
    s = e.get("sampling") or {}
    if "num_classes" not in s:
        return "?"
    if s["num_classes"] and s.get("labels") == "kmeans":
        return f"no ({s['num_classes']} k-means clusters)" + guidance_words(s)
    return ("yes" if s["num_classes"] else "no") + guidance_words(s)


def _verified(e: dict) -> str:
    """"yes 64/64", "no 3/64", "made by grader" (no samples were handed in), or "not checked" (results
    of evaluate.py: no checkpoint was given)."""
    p = e.get("provenance")
    if e.get("verified") is None or not isinstance(p, dict):
        return "not checked"
    if p.get("by_construction"):
        return "made by grader"
    return f"{'yes' if e['verified'] else 'no'} {p.get('matched')}/{p.get('checked')}"


def markdown(tables: list[tuple[str, list[dict]]], unranked: list[dict], inpaint_rows: list[dict] = ()) -> str:
    line = lambda cells: "| " + " | ".join(str(c) for c in cells) + " |"  # noqa: E731
    out = []
    for title, rows in tables or [("", [])]:
        out += [f"## Generation (FID{', ' + title if title else ''})", "", line(COLUMNS), line(["---"] * len(COLUMNS))]
        out += [line(r[c] for c in COLUMNS) for r in rows] + [""]
    out = out[:-1]
    if unranked:
        out += ["", "Not ranked:", ""] + [f"- {r['student_name']}: {r['not_ranked_reason']}" for r in unranked]
    if inpaint_rows:
        out += ["", "## Inpainting (hole MSE, [0, 1] units)", "", line(INPAINT_COLUMNS),
                line(["---"] * len(INPAINT_COLUMNS))] + [line(r.values()) for r in inpaint_rows]
    return "\n".join(out) + "\n"


def thumbnail(outputs: Path, row: dict, picture: str = "grid.png") -> str:
    """An inline PNG of the entry's grid (its "grid" file when the grader wrote one, else
    OUTPUTS/NAME/PICTURE) that opens full size when clicked; "" when there is none."""
    name = row["student_name"]
    grid = Path(row["_grid"]) if row.get("_grid") else outputs / name / picture
    if not grid.is_file():
        return ""
    data = base64.b64encode(grid.read_bytes()).decode()
    return (f'<img class="thumb" src="data:image/png;base64,{data}" width="120" '
            f'alt="samples of {html.escape(name)}" title="click for full size">')


PAGE_STYLE = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:1.5em}"
              "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:nth-child(2){text-align:left}"
              "th{background:#f3f3f3;cursor:pointer;user-select:none}th.up::after{content:' \\25B2'}"
              "th.down::after{content:' \\25BC'}img.thumb{cursor:zoom-in;image-rendering:pixelated}"
              "td.reason{text-align:left;min-width:16em}td.ok,td.bad:not(.reason){white-space:nowrap}"
              ".flag{background:#fde2e2}.ok{color:#17692b}.bad{color:#b00020;font-weight:bold}"
              "#full{position:fixed;inset:0;background:rgba(0,0,0,.8);display:flex;align-items:center;"
              "justify-content:center;cursor:zoom-out}#full[hidden]{display:none}"
              "#full img{max-width:95vw;max-height:95vh;image-rendering:pixelated;background:#fff}")
# Click a column head to sort its table (numbers as numbers, blanks last; again to reverse); click a
# thumbnail to see it full size, click or Escape to close.
PAGE_SCRIPT = """
function cellValue(row, i) {
  const text = row.cells[i].textContent.trim().replace(/%$/, "");
  const number = parseFloat(text);
  return text === "" ? null : (isNaN(number) || !/^[-+0-9.e]+$/i.test(text) ? text : number);
}
document.querySelectorAll("table.sortable").forEach(table => {
  table.querySelectorAll("th").forEach((th, i) => th.addEventListener("click", () => {
    const up = !th.classList.contains("up");
    table.querySelectorAll("th").forEach(h => h.classList.remove("up", "down"));
    th.classList.add(up ? "up" : "down");
    const body = table.tBodies[0];
    const rows = Array.from(body.rows).sort((a, b) => {
      const x = cellValue(a, i), y = cellValue(b, i);
      if (x === null || y === null) return (x === null) - (y === null);
      const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      return up ? order : -order;
    });
    rows.forEach(r => body.appendChild(r));
  }));
});
const full = document.getElementById("full");
document.querySelectorAll("img.thumb").forEach(img => img.addEventListener("click", () => {
  full.querySelector("img").src = img.src;
  full.hidden = false;
}));
full.addEventListener("click", () => { full.hidden = true; });
document.addEventListener("keydown", e => { if (e.key === "Escape") full.hidden = true; });
"""


def _cell(column: str, value) -> str:
    text = html.escape(str(value))
    if column == "verified" and text != "not checked":
        return f'<td class="{"ok" if text.startswith(("yes", "made")) else "bad"}">{text}</td>'
    if column == "not_ranked_reason":
        return f'<td class="reason{" bad" if "flagged" in text or "not verified" in text else ""}">{text}</td>'
    return f"<td>{text}</td>"


def html_table(rows: list[dict], columns: tuple, outputs: Path, picture: str) -> str:
    head = "".join(f"<th>{c}</th>" for c in columns + ("samples",))
    body = "".join(
        f'<tr{" class=flag" if any(w in r.get("not_ranked_reason", "") for w in ("flagged", "not verified")) else ""}>'
        + "".join(_cell(c, r.get(c, "")) for c in columns) + f"<td>{thumbnail(outputs, r, picture)}</td></tr>"
        for r in rows)
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def html_page(tables: list[tuple[str, list[dict]]], unranked: list[dict], outputs: Path, inpaint_rows: list[dict] = (),
              floors: list[float | None] = ()) -> str:
    floor = floors[0] if len(floors) == 1 else None
    floor_text = (f"The floor is FID {floor:.3f}: 5,000 real training digits against the test set, so no "
                  "model is expected below it. " if floor else
                  "Each table has its own floor (x_floor): FIDs on different feature networks are not comparable. "
                  if len(floors) > 1 else "")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Leaderboard</title>"
             f"<style>{PAGE_STYLE}</style></head><body><h1>MNIST diffusion leaderboard</h1>"
             f"<p id='summary'>{floor_text}~ marks neighbours within noise: their FIDs differ by less than twice "
             "their combined bootstrap spread. Click a column to sort, a grid to enlarge it.</p>",
             "<p>Ranked by FID (LeNet features; lower is better), ties by KID. <b>verified</b>: regenerated "
             "samples matched the submitted checkpoint (not checked when none was handed in). <b>copies</b>, "
             "<b>near_duplicates</b>: shares of samples closer to a training digit, or to another sample, "
             "than 99% of held-out test digits are; above 5% the entry is flagged.</p>",
             *(f"{f'<h2>{html.escape(title)}</h2>' if title else ''}{html_table(rows, COLUMNS, outputs, 'grid.png')}"
               for title, rows in tables or [("", [])])]
    if unranked:
        parts += ["<h2>Not ranked</h2>", html_table(unranked, UNRANKED_COLUMNS, outputs, "grid.png")]
    if inpaint_rows:
        parts += ["<h2>Inpainting</h2><p>Ranked within each mask by the MSE on the hole pixels ([0, 1] units; "
                  "lower is better). Panels: masked input, completions, original.</p>",
                  html_table(inpaint_rows, INPAINT_COLUMNS, outputs, "inpaint/samples.png")]
    parts.append(f'<div id="full" hidden><img alt="full size"></div><script>{PAGE_SCRIPT}</script>')
    return "".join(parts) + "</body></html>\n"


def write_csv(path: Path, columns: tuple, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, columns, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--results", default="results")
    p.add_argument("--outputs", default="outputs", help="where NAME/grid.png thumbnails are found")
    p.add_argument("--submissions", help="grade this folder of submissions (one folder per student) first")
    p.add_argument("--grader_seed", type=int, help="which samples are regenerated and the noise of samples the grader "
                   "makes (default: drawn once per results folder, kept secret in RESULTS/.grader_seed)")
    p.add_argument("--run_student_code", action="store_true", help="build and sample hand-ins whose model.py differs "
                   "from the shipped one (in a child process with limits: grading/sandbox.py)")
    p.add_argument("--timeout", type=float, default=600, help="seconds a student's code may run per hand-in")
    p.add_argument("--memory_mb", type=int, default=8192, help="address-space limit of a student's code (MB)")
    p.add_argument("--checked", type=int, default=64, help="samples regenerated per submission")
    p.add_argument("--data_root", default="data", help="torchvision MNIST root")
    p.add_argument("--cache_dir", default="data/fid_cache", help="where reference statistics are cached")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--course", help="grade this folder of course-task hand-ins (NAME.npz each) against --target: "
                   "public and private scores, pass/fail against --baseline")
    p.add_argument("--target", help="--course: the npz of the hidden complete images")
    p.add_argument("--baseline", help="--course: the hand-in (NAME) an entry must match or beat to pass")
    p.add_argument("--split_labels", action="store_true", help="rank class-conditional and unconditional entries "
                   "in separate tables")
    args = p.parse_args(argv)
    folder = ensure_dir(args.results)
    if args.course:
        return course(args, folder)
    if args.submissions:
        grade(args, folder)
    entries, inpaint, warnings = load_results(folder)
    for w in warnings:
        print(w, file=sys.stderr)
    groups, unranked = rank(entries, verified_only=bool(args.submissions), split_labels=args.split_labels)
    tables, unranked_rows = generation_tables(groups, unranked)
    inpaint_rows = inpaint_table(rank_inpainting(inpaint))
    md = markdown(tables, unranked_rows, inpaint_rows)
    write_text(folder / "leaderboard.md", md)
    write_csv(folder / "leaderboard.csv", COLUMNS + ("table",),
              [{**r, "table": title} for title, rows in tables for r in rows] + unranked_rows)
    if inpaint_rows:
        write_csv(folder / "leaderboard_inpaint.csv", INPAINT_COLUMNS, inpaint_rows)
    floors = {e.get("feature_net_sha256"): e["fid_floor_mean"] for e in entries if isinstance(e.get("fid_floor_mean"), float)}
    write_text(folder / "leaderboard.html", html_page(tables, unranked_rows, Path(args.outputs), inpaint_rows,
                                                      list(floors.values())))
    found = entries or inpaint
    print(md if found else "no results yet: run evaluate.py first", end="" if found else "\n")
    print(f"wrote {folder}/leaderboard.md, .csv, .html")
    return 0


def course(args, results: Path) -> int:
    """The course task's public table (printed) and final table (written for the instructor)."""
    from common.errors import UserError
    from grading.course import grade_course
    from grading.submissions import grader_seed

    if not args.target:
        raise UserError("--course needs --target truth.npz (the hidden complete images)")
    rows, warnings = grade_course(Path(args.course), Path(args.target), results,
                                  seed=grader_seed(results, args.grader_seed), baseline=args.baseline)
    print((results / "course_public.md").read_text(), end="")
    print(f"wrote {results}/course_public.md (for students) and {results}/course_final.md (private scores, "
          f"pass/fail; for the end of the task)")
    for w in warnings:
        print(w, file=sys.stderr)
    return 0


def grade(args, results: Path) -> None:
    """Grade the submissions folder into `results`, one line per hand-in."""
    from common.errors import UserError
    from common.runtime import pick_device
    from grading.submissions import NEEDS_CODE, grade_submissions, grader_seed

    if args.checked < 1:
        raise UserError(f"--checked must be at least 1, got {args.checked}")
    done, warnings = grade_submissions(Path(args.submissions), results, data_root=args.data_root,
                                       cache_dir=args.cache_dir, seed=grader_seed(results, args.grader_seed),
                                       k=args.checked, device=pick_device(args.device),
                                       run_student_code=args.run_student_code, timeout_s=args.timeout,
                                       memory_mb=args.memory_mb)
    for name, status, r in done:
        if status == NEEDS_CODE:
            print(f"{name}: not graded, {NEEDS_CODE} (its model.py differs from the shipped one)")
            continue
        p = r["provenance"]
        made = ("samples made by the grader" if p.get("by_construction") else
                f"verified {'yes' if r['verified'] else 'no'} ({p['matched']}/{p['checked']} regenerated in "
                f"{p['seconds']:.1f}s)")
        print(f"{name}: {status} ({r['grading_seconds']:.0f}s), FID {r['fid']:.3f}, {made}, "
              f"{'student code, ' if r.get('student_code') else ''}copies {r['copy_share']:.1%}, "
              f"near-duplicates {r['near_duplicate_share']:.1%}" + ("" if r["ranked"] else
                                                                      f"; not ranked: {r['not_ranked_reason']}"))
    for w in warnings:
        print(w, file=sys.stderr)
    if not done and not warnings:
        print(f"no submission folders in {args.submissions}")


if __name__ == "__main__":
    sys.exit(main())
