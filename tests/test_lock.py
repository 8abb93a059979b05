"""The environment under test is the lock: every package pinned in constraints.txt that is
installed has exactly its pinned version.

This fails when an install step stops going through the lock (scripts/_venv.sh, tox), which
is how main once went red on a new machine. The drift check (tox -e latest, or
SLMBENCH_UNLOCKED=1) installs the newest versions on purpose and skips it.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import re
from pathlib import Path

import pytest

LOCK = Path(__file__).resolve().parents[1] / "constraints.txt"


def _pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def test_the_lock_pins_the_core_stack():
    pins = _pins()
    for name in ("torch", "lm-eval", "transformers", "peft", "llama-cpp-python", "gguf",
                 "numpy", "pytest", "pytest-xdist"):
        assert name in pins, f"constraints.txt does not pin {name}"
    assert pins["torch"] == "2.13.0"  # the CPU wheel, matched without its +cpu label


def test_installed_versions_are_the_locked_ones():
    if os.environ.get("SLMBENCH_UNLOCKED") == "1":
        pytest.skip("drift check: newest versions installed on purpose")
    drift = []
    for name, pinned in sorted(_pins().items()):
        try:
            installed = md.version(name)
        except md.PackageNotFoundError:
            continue  # an extra's package that this environment did not install
        if installed.split("+")[0] != pinned:
            drift.append(f"{name} {installed} (lock: {pinned})")
    assert not drift, "installed outside the lock: " + ", ".join(drift)
