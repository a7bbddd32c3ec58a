"""The layers of docs/architecture.md hold: every package imports only itself and the packages
listed for it (lower layers), and nothing imports a command-line script."""
import ast

from conftest import REPO

# package -> the project packages it may import besides itself
ALLOWED = {
    "common": set(),
    "dataio": {"common"},
    "diffusion": {"common"},  # the process and samplers take any denoiser callable: no networks, no data
    "models": {"common"},  # networks know nothing of diffusion, data or tasks
    "metrics": {"common", "dataio"},  # metrics see images, never how they were made
    "tasks": {"common", "dataio", "diffusion", "models", "metrics"},
    "engine": {"common", "dataio", "diffusion", "models", "metrics", "tasks"},
    "grading": {"common", "dataio", "diffusion", "models", "metrics", "tasks", "engine"},
}
SCRIPTS = {p.stem for p in REPO.glob("*.py")} | {"scripts", "benchmarks", "tests"}


def imported_packages(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def test_no_package_imports_a_layer_above_it_or_a_script():
    wrong = []
    for package, allowed in ALLOWED.items():
        for path in sorted((REPO / package).rglob("*.py")):
            for name in set(imported_packages(path)):
                if name in ALLOWED and name != package and name not in allowed or name in SCRIPTS:
                    wrong.append(f"{path.relative_to(REPO)} imports {name}")
    assert not wrong, wrong
    assert set(ALLOWED) == {p.name for p in REPO.iterdir() if (p / "__init__.py").is_file()}, "a package without a layer"


def test_task_and_data_names_are_read_only_by_the_task_registry_and_the_config_rules():
    """Whether a run generates, inpaints, completes or fits two moons is the task's business
    (tasks/); no other module compares task.name or data.name."""
    import re
    pattern = re.compile(r"(task|data)\.name *(==|!=| in )")
    found = [f"{p.relative_to(REPO)}:{i}" for p in sorted(REPO.rglob("*.py"))
             if ".venv" not in p.parts and p.parts[len(REPO.parts)] not in ("tasks", "tests")
             and p.relative_to(REPO).as_posix() != "engine/config_rules.py"
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not found, found
