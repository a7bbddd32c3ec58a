"""The child process of grading/sandbox.py: generate digits with a student's network.

    python -E -s grading/student_child.py job.json

Runs in a scratch copy of the repository whose models/model.py is the student's. job.json names the
checkpoint, the submitted config (or none), samples.json's settings (or none: the config's sample
settings with the grader's seed) and which indices to generate. Writes the uint8 images to job["out"]
as .npy and prints one JSON line (the settings used, whether the network was reachable).
"""
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the scratch copy, not the grader's tree


def main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    import numpy as np
    import torch

    from grading.regenerate import regenerate
    torch.set_num_threads(job["threads"])
    images, settings = regenerate(job["checkpoint"], job.get("config"), job.get("meta"), seed=job["seed"],
                                  n=job["n"], indices=job.get("indices"))
    np.save(job["out"], images, allow_pickle=False)
    try:  # its own network namespace (grading/sandbox.py asked for one): no way out
        own = os.readlink("/proc/self/ns/net") != job.get("grader_netns")
    except OSError:
        own = False
    print(json.dumps({"settings": settings, "network": "isolated" if own else "not isolated"}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
