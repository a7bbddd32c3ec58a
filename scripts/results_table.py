"""Print generation results of named runs as a markdown table (model, size, training, FID).

    python scripts/results_table.py NAME [NAME ...] [--results results] [--checkpoints checkpoints]

Reads results/NAME.json (evaluate.py) and checkpoints/NAME/config.yaml (train.py).
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import config  # noqa: E402
from engine.errors import ArgumentParser, UserError, exit_on_user_error  # noqa: E402
from models.model import build_model  # noqa: E402


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="+")
    p.add_argument("--results", default="results")
    p.add_argument("--checkpoints", default="checkpoints")
    args = p.parse_args(argv)
    print("| run | model | parameters | training | sampler | FID | precision | recall |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.names:
        res, cfg_path = Path(args.results) / f"{name}.json", Path(args.checkpoints) / name / "config.yaml"
        if not res.is_file() or not cfg_path.is_file():
            raise UserError(f"{name}: need {res} (evaluate.py) and {cfg_path} (train.py)")
        r, cfg = json.loads(res.read_text()), config.load(cfg_path)
        params = sum(p.numel() for p in build_model(cfg).parameters())
        s = r.get("sampling") or {}
        print(f"| {name} | {cfg.model.name} | {params / 1e6:.2f}M | {cfg.train.steps} x {cfg.train.batch_size} | "
              f"{s.get('sampler', '?')} x{s.get('steps', '?')} | {r['fid']:.1f} +- {r['fid_bootstrap_std']:.1f} | "
              f"{r['precision']:.3f} | {r['recall']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
