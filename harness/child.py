"""Why a child process failed, in one line: its signal if it died of one, else its last words.

Native code (llama.cpp, GPTQ kernels) is run in child processes so that a crash costs one
measurement, not the run. A crashed child's last stderr line is usually a harmless log line
printed just before the crash, so the signal has to be named first, or the reason misleads.
"""

from __future__ import annotations

import signal
import subprocess


def failure_reason(proc: subprocess.CompletedProcess) -> str:
    lines = [ln.strip() for ln in (proc.stderr or "").splitlines() if ln.strip()]
    last = lines[-1] if lines else "no output"
    if proc.returncode is not None and proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        return f"crashed ({name}); last output: {last}"
    return last
