"""Run the repository's scripts in fresh processes without paying for `import torch` each time.

A test suite that runs `python train.py ...` as users do spends most of its time starting Python and
importing torch (seconds each on a slow CPU). This server imports torch and the project once, then
for each request forks a child that runs the script as `__main__` with its own argv, working folder,
stdout, stderr and exit status, exactly as `subprocess.run([python, script, ...])` would, and
reports the status. It never runs a tensor operation itself, so no thread pool exists when it forks
and each child starts its own.

Protocol (one JSON object per line): the client sends {"script" (a path) or "module" (as for
`python -m`), "args", "cwd", "stdout", "stderr"} (the last two are file paths); the server answers
{"pid"} at once, then {"returncode"} when the child ends.
"""
import atexit
import json
import os
import runpy
import sys
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy  # noqa: E402,F401
import torch  # noqa: E402,F401
import yaml  # noqa: E402,F401
from PIL import Image  # noqa: E402,F401

import torch._dynamo  # noqa: E402,F401  (imported by the first optimizer a script builds: seconds)
import torch.distributed  # noqa: E402,F401

import engine.config  # noqa: E402,F401
import engine.trainer  # noqa: E402,F401  (imports models, diffusion, dataio, metrics)


STDOUT = sys.stdout  # fd 1; the server answers on it, a child's prints go to it after the dup2 below


def _child(request: dict) -> int:
    os.chdir(request["cwd"])
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.stdin, sys.stdout = open(os.devnull), STDOUT
    script, module = request.get("script"), request.get("module")
    sys.argv = [script or module, *request["args"]]
    sys.path[0] = str(Path(script).parent) if script else os.getcwd()
    try:
        if module:  # python -m module
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(script, run_name="__main__")
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, (int, type(None))):
            print(e.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def main() -> None:
    reply = STDOUT
    sys.stdout = sys.stderr  # nothing but replies goes to the client's pipe
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            os._exit(_child(request))
        reply.write(json.dumps({"pid": pid}) + "\n")
        reply.flush()
        _, status = os.waitpid(pid, 0)
        reply.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
        reply.flush()


if __name__ == "__main__":
    main()
