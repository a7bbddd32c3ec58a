"""Print the inpainting results (results/*_inpaint.json) as a markdown table, one block per mask.

    python scripts/inpaint_table.py [--results results] [NAME ...]
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.errors import ArgumentParser, UserError, exit_on_user_error  # noqa: E402


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="results")
    p.add_argument("names", nargs="*", help="only these entries (default: all)")
    args = p.parse_args(argv)
    paths = [Path(args.results) / f"{n}_inpaint.json" for n in args.names] or sorted(
        Path(args.results).glob("*_inpaint.json"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing or not paths:
        raise UserError(f"no results at {', '.join(missing) or args.results + '/*_inpaint.json'}; "
                        "run evaluate.py --task inpaint first")
    rows = [json.loads(p.read_text()) for p in paths]
    print("| mask | entry | method | hole MSE | hole PSNR (dB) | hole L1 | hole SSIM | s / image |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in sorted(rows, key=lambda r: (r["mask"], r["hole_mse"])):
        spi = r.get("seconds_per_image")
        print(f"| {r['mask']} | {r['student_name']} | {r.get('method', '')} | {r['hole_mse']:.4f} "
              f"+- {r['hole_mse_sem']:.4f} | {r['hole_psnr']:.2f} | {r['hole_l1']:.4f} | {r['hole_ssim']:.3f} | "
              f"{'' if spi is None else f'{spi:.4f}'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
