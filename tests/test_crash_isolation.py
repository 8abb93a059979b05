"""A test that crashes the interpreter fails by name; the rest of the session still runs.

llama.cpp is native code: a segfault in one test used to kill the whole pytest run with
"Fatal Python error". The suite's own options (pyproject's addopts, pytest-xdist with one
worker) are applied here to a file holding one crashing and one passing test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_a_segfaulting_test_fails_by_name_and_the_session_goes_on(tmp_path):
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    addopts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"][
        "ini_options"]["addopts"]
    (tmp_path / "pytest.ini").write_text(f"[pytest]\naddopts = {addopts}\n")
    (tmp_path / "test_native.py").write_text(
        "import ctypes\n\n"
        "def test_crashes_in_native_code():\n"
        "    ctypes.string_at(0)  # reads address 0: SIGSEGV\n\n"
        "def test_after_the_crash():\n"
        "    assert True\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "test_native.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "FAILED test_native.py::test_crashes_in_native_code" in out, out[-3000:]
    assert "1 failed, 1 passed" in out, out[-3000:]
