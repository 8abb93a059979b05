"""Where slmbench keeps its caches and finds its shipped task YAMLs."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Root of slmbench's caches; ``SLMBENCH_CACHE`` overrides it so tests stay hermetic."""
    env = os.environ.get("SLMBENCH_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "slmbench"


def tasks_dir() -> Path:
    """The ``harness/tasks/`` folder handed to lm-eval as ``--include_path``.

    It ships inside the package (as lm-eval ships ``lm_eval/tasks``), so a checkout, an
    editable install and a wheel install all find it in the same place.
    """
    return Path(__file__).resolve().parent / "tasks"
