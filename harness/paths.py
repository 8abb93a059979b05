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
    """The ``tasks/`` folder handed to lm-eval as ``--include_path``.

    An editable install or a checkout has it beside the package; a wheel install carries
    a copy as ``harness/_tasks`` (``package-dir`` in ``pyproject.toml``).
    """
    for candidate in (REPO_ROOT / "tasks", Path(__file__).resolve().parent / "_tasks"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("slmbench task folder not found next to the harness package")
