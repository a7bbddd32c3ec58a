"""What a run does: one module per task (how it trains, samples and completes), looked up once by
for_config. The task registry and engine/config_rules.py are the only places that read task.name
and data.name to decide what happens (docs/architecture.md: how to add a task)."""
from __future__ import annotations

from tasks.base import Task
from tasks.complete import CompleteTask
from tasks.generate import GenerateTask
from tasks.inpaint import InpaintTask
from tasks.moons import MoonsTask

REGISTRY: dict[str, Task] = {t.name: t for t in (GenerateTask(), InpaintTask(), CompleteTask())}
NAMES = tuple(REGISTRY)  # the values of task.name
MOONS = MoonsTask()  # data.name: moons (task.name generate): 2D points instead of images


def for_config(cfg) -> Task:
    """The task of a run: the moons test bed for data.name: moons, else the one task.name names."""
    return MOONS if cfg.data.name == "moons" else REGISTRY[cfg.task.name]


def build_network(cfg):
    """models.model.build_model with the input layout of the run's task (a student's model.py written
    before build_model took `inputs` works out its own)."""
    import inspect

    from models.model import build_model
    if len(inspect.signature(build_model).parameters) == 1:
        return build_model(cfg)
    return build_model(cfg, for_config(cfg).inputs(cfg))
