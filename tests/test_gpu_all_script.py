"""``scripts/gpu_all.sh`` on a machine without CUDA stops at once, non-zero, saying why.

It used to be able to exit 0 having run no GPU path; now the GPU check comes first and every
skip it would meet is a failure (SLMBENCH_REQUIRE).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_without_cuda_the_script_fails_with_a_reason(tmp_path):
    env = {**os.environ, "PY": sys.executable, "CUDA_VISIBLE_DEVICES": "",
           "SLMBENCH_REQUIRE": "gpu"}
    proc = subprocess.run(["bash", str(REPO / "scripts" / "gpu_all.sh"), str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f"gpu_all: no CUDA GPU visible to {sys.executable} (torch ")
    assert "nothing was run" in proc.stderr
    assert not list((tmp_path / "out").glob("*.log"))  # no step started
