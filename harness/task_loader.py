"""Build slmbench's lm-eval tasks in Python, exactly as ``slmbench lm-eval`` would.

Validation, training and sweeps read prompts and documents through lm-eval's own task
objects, so a prompt edited in a YAML changes training and evaluation together.
"""

from __future__ import annotations

import functools
from typing import Any

from harness.paths import tasks_dir


@functools.lru_cache(maxsize=8)
def _manager(data_dir: str | None):
    from lm_eval.tasks import TaskManager

    metadata = {"data_dir": data_dir} if data_dir else None
    return TaskManager(include_path=str(tasks_dir()), metadata=metadata)


def task_manager(data_dir: Any = None):
    """lm-eval's task index (with our tasks), built once per data dir: indexing takes seconds."""
    from harness.data.source import resolve_data_dir

    folder = resolve_data_dir(data_dir)
    return _manager(str(folder) if folder else None)


def load_task(manager, name: str):
    """One leaf task object (``ConfigurableTask``) by name."""
    return manager.load([name])["tasks"][name]
