"""Print generation results of named runs as a markdown table (model, size, training, FID).

    python scripts/results_table.py NAME [NAME ...] [--results results] [--checkpoints checkpoints]

Reads results/NAME.json (evaluate.py) and checkpoints/NAME/config.yaml (train.py), or for samples drawn
from another run's checkpoint (sample.py --student_name NAME), that checkpoint's config.yaml.
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import config  # noqa: E402
from common.errors import ArgumentParser, UserError, exit_on_user_error  # noqa: E402
from models.model import num_parameters  # noqa: E402
from tasks import build_network  # noqa: E402
from tasks.generate import guidance_words  # noqa: E402


@exit_on_user_error
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="+")
    p.add_argument("--results", default="results")
    p.add_argument("--checkpoints", default="checkpoints")
    args = p.parse_args(argv)
    print("| run | model | parameters | target, levels | training (steps x batch, lr) | sampler | FID | precision | recall |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.names:
        res = Path(args.results) / f"{name}.json"
        if not res.is_file():
            raise UserError(f"{name}: need {res} (evaluate.py)")
        r = json.loads(res.read_text())
        s = r.get("sampling") or {}
        # the run's own folder, else the folder of the checkpoint it was sampled from (sample.py --student_name)
        cfg_path = Path(args.checkpoints) / name / "config.yaml"
        if not cfg_path.is_file() and s.get("checkpoint"):
            cfg_path = Path(s["checkpoint"]).parent / "config.yaml"
        if not cfg_path.is_file():
            raise UserError(f"{name}: need {cfg_path} (train.py)")
        cfg = config.load(cfg_path, migrate=True)  # written by train.py, maybe before keys moved
        params = num_parameters(build_network(cfg))
        d, t = cfg.diffusion, cfg.train
        k = cfg.model.num_classes
        classes = {"kmeans": f"{k} k-means clusters", "digits_kmeans": f"10 digits x {k // 10} clusters"}.get(
            cfg.data.labels, f"{k} classes")
        model = cfg.model.name + (f", {classes}" if k else "")
        guidance = guidance_words(s)
        print(f"| {name} | {model} | {params / 1e6:.2f}M | {d.prediction}, {d.level_sampling} | "
              f"{t.steps} x {t.batch_size}, {t.lr:g} | {s.get('sampler', '?')} x{s.get('steps', '?')}{guidance} | "
              f"{r['fid']:.1f} +- {r['fid_bootstrap_std']:.1f} | {r['precision']:.3f} | {r['recall']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
