"""Which results are comparable, and in what order: the leaderboard's ranking rules.

Generation entries are ranked by FID (ties by KID) only among entries scored with the same feature
network (by its sha256: FIDs on LeNet and Inception features are different scales), each group with
its own floor; optionally class-conditional and unconditional entries apart. An entry that breaks a
rule is listed apart with the reason (unranked_reason). Inpainting entries are ranked by hole MSE
among entries scored on the same mask and test digits. Neighbours whose scores differ by less than
twice the standard error of their difference are marked as within noise.
"""
from __future__ import annotations

import json
from pathlib import Path

from metrics.evaluation import REQUIRED_SAMPLES
from metrics.inpainting import paired_difference, scored_on
from tasks.generation import classes_are_digits

REQUIRED_KEYS = ("student_name", "num_samples", "fid", "fid_bootstrap_std", "kid_mean")
INPAINT_KEYS = ("student_name", "mask", "hole_mse", "hole_mse_sem", "hole_psnr", "hole_l1", "hole_ssim", "n_eval")


def unranked_reason(entry: dict, *, verified_only: bool = False) -> str | None:
    """Why a generation result is not ranked, or None if it is: not exactly 5,000 samples, samples
    that the submitted checkpoint does not regenerate (verified false), a flag of the integrity checks
    (grading.integrity), or with verified_only (grading hand-ins) a result nobody verified."""
    reasons = []
    if entry["num_samples"] != REQUIRED_SAMPLES:
        reasons.append(f"{entry['num_samples']} samples; exactly {REQUIRED_SAMPLES} are required")
    if entry.get("verified") is False:
        p = entry.get("provenance") or {}
        reasons.append(f"not verified: {p.get('matched', '?')} of {p.get('checked', '?')} regenerated samples match")
    if verified_only and entry.get("verified") is None:
        reasons.append("not checked (an evaluate.py result, no hand-in): only graded hand-ins are ranked")
    reasons += [f"flagged: {flag}" for flag in entry.get("flags") or ()]
    return "; ".join(reasons) or None


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


def uses_labels(e: dict) -> bool | None:
    """Whether the samples came from a model trained on the digits' labels; None when samples.json does not
    say. A model conditioned on k-means clusters of the pixels (labels: kmeans) used none."""
    s = e.get("sampling") or {}
    return classes_are_digits(s["num_classes"], s.get("labels", "digits")) if "num_classes" in s else None


def group_key(e: dict, split_labels: bool) -> tuple:
    """Entries are comparable when scored with the same feature network (and, with split_labels,
    when they agree on using class labels)."""
    net = (e.get("feature_net") or "lenet", e.get("feature_net_sha256") or "")
    return (*net, {True: "class-conditional", False: "unconditional", None: "labels unknown"}[uses_labels(e)]
            if split_labels else "")


def rank(entries: list[dict], *, verified_only: bool = False, split_labels: bool = False) -> tuple[list[dict], list]:
    """(groups, unranked). A group: {"feature_net", "sha256", "labels" ("" unless split_labels), "floor"
    (its entries' floor), "rows": [(rank, entry, names of neighbours within noise)]}; unranked:
    [(entry, reason)]."""
    reasons = {id(e): unranked_reason(e, verified_only=verified_only) for e in entries}
    ok = [e for e in entries if reasons[id(e)] is None]
    groups = []
    for key in sorted({group_key(e, split_labels) for e in ok}):
        members = sorted((e for e in ok if group_key(e, split_labels) == key), key=lambda e: (e["fid"], e["kid_mean"]))
        rows = [(i + 1, e, [members[j]["student_name"] for j in (i - 1, i + 1)
                            if 0 <= j < len(members) and within_noise(e, members[j])]) for i, e in enumerate(members)]
        floor = next((e["fid_floor_mean"] for e in members if isinstance(e.get("fid_floor_mean"), float)), None)
        groups.append({"feature_net": key[0], "sha256": key[1], "labels": key[2], "floor": floor, "rows": rows})
    return groups, [(e, reasons[id(e)]) for e in entries if reasons[id(e)]]


def inpaint_within_noise(a: dict, b: dict) -> bool:
    if "hole_mse_per_image" in a and "hole_mse_per_image" in b:
        diff, sem = paired_difference(a["hole_mse_per_image"], b["hole_mse_per_image"])
    else:
        diff, sem = a["hole_mse"] - b["hole_mse"], (a["hole_mse_sem"] ** 2 + b["hole_mse_sem"] ** 2) ** 0.5
    return abs(diff) < 2 * sem


def rank_inpainting(entries: list[dict]) -> list[tuple]:
    """[(mask, seed, rank, entry, neighbours within noise)], grouped by mask and test digits and ranked
    by hole MSE within each (ties by PSNR, higher first)."""
    out = []
    for key in sorted({scored_on(e) for e in entries}):
        group = sorted((e for e in entries if scored_on(e) == key), key=lambda e: (e["hole_mse"], -e["hole_psnr"]))
        for i, e in enumerate(group):
            near = [group[j]["student_name"] for j in (i - 1, i + 1)
                    if 0 <= j < len(group) and inpaint_within_noise(e, group[j])]
            out.append((key[0], key[1], i + 1, e, near))
    return out
