"""Build slmbench's lm-eval tasks in Python, exactly as ``slmbench lm-eval`` would.

Validation, training and sweeps read prompts and documents through lm-eval's own task
objects, so a prompt edited in a YAML changes training and evaluation together.
"""

from __future__ import annotations

import functools
from typing import Any

from harness.paths import tasks_dir


@functools.lru_cache(maxsize=8)
def _manager(data_dir: str | None, split_seed: int):
    from lm_eval.tasks import TaskManager

    from harness.data.splits import DEFAULT_SEED

    metadata = {"data_dir": data_dir} if data_dir else {}
    if split_seed != DEFAULT_SEED:
        metadata["split_seed"] = split_seed
    return TaskManager(include_path=str(tasks_dir()), metadata=metadata or None)


def task_manager(data_dir: Any = None, split_seed: int | None = None):
    """lm-eval's task index (with our tasks), built once per data dir and split seed.

    Indexing takes seconds; the split seed must reach the data hook, or ``--split-seed`` would
    be recorded but never applied.
    """
    from harness.data.source import resolve_data_dir
    from harness.data.splits import DEFAULT_SEED

    folder = resolve_data_dir(data_dir)
    return _manager(str(folder) if folder else None,
                    DEFAULT_SEED if split_seed is None else int(split_seed))


def load_task(manager, name: str):
    """One leaf task object (``ConfigurableTask``) by name."""
    return manager.load([name])["tasks"][name]
