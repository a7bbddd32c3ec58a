"""Print the inpainting results (results/*_inpaint.json) as a markdown table, one block per mask.

    python scripts/inpaint_table.py [--results results] [--against NAME] [NAME ...]

--against NAME adds each entry's hole MSE relative to NAME's and their difference, paired over the
same test digits (mean +- standard error), for entries scored on NAME's mask and digits.
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.errors import ArgumentParser, UserError, exit_on_user_error  # noqa: E402
from metrics.inpainting import paired_difference, scored_on  # noqa: E402


def versus(r: dict, base: dict) -> str:
    """'ratio, difference +- sem' of r's hole MSE against base's, or '' if not scored on the same digits."""
    if scored_on(r) != scored_on(base) or "hole_mse_per_image" not in r or "hole_mse_per_image" not in base:
        return ""
    diff, sem = paired_difference(r["hole_mse_per_image"], base["hole_mse_per_image"])
    return f"{r['hole_mse'] / base['hole_mse']:.3f}x, {diff:+.4f} +- {sem:.4f}"


def training_minutes(r: dict) -> str:
    """Minutes of training recorded in the checkpoint(s) that made the completions (summed over an
    ensemble's members; each as that run measured it, see docs/inpainting.md); '' if unknown."""
    seconds = (r.get("sampling") or {}).get("train_seconds")
    if seconds is None:
        return ""
    return f"{sum(seconds) / 60 if isinstance(seconds, list) else seconds / 60:.1f}"


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="results")
    p.add_argument("--against", help="compare every entry's hole MSE with this entry's, paired over the digits")
    p.add_argument("names", nargs="*", help="only these entries (default: all)")
    args = p.parse_args(argv)
    paths = [Path(args.results) / f"{n}_inpaint.json" for n in args.names] or sorted(
        Path(args.results).glob("*_inpaint.json"))
    if args.against:
        paths.append(Path(args.results) / f"{args.against}_inpaint.json")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing or not paths:
        raise UserError(f"no results at {', '.join(missing) or args.results + '/*_inpaint.json'}; "
                        "run evaluate.py --task inpaint first")
    rows = {p: json.loads(p.read_text()) for p in paths}
    base = rows[paths[-1]] if args.against else None
    extra = f" vs {args.against} (paired) |" if base else ""
    print("| mask | digits | entry | method | hole MSE | hole PSNR (dB) | hole L1 | hole SSIM | training (min) | "
          "s / 1,000 digits |" + extra)
    print("| --- " * 10 + "|" + (" --- |" if base else ""))
    for r in sorted(rows.values(), key=lambda r: (r["mask"], r["hole_mse"])):
        spi = r.get("seconds_per_image")
        print(f"| {r['mask']} | {r['n_eval']} | {r['student_name']} | {r.get('method', '')} | {r['hole_mse']:.4f} "
              f"+- {r['hole_mse_sem']:.4f} | {r['hole_psnr']:.2f} | {r['hole_l1']:.4f} | {r['hole_ssim']:.3f} | "
              f"{training_minutes(r)} | {'' if spi is None else f'{1000 * spi:.2f}'} |"
              + (f" {versus(r, base)} |" if base else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
