"""Why a child process failed, in one line: its signal if it died of one, else its last words.

Native code (llama.cpp, GPTQ kernels) is run in child processes so that a crash costs one
measurement, not the run. A crashed child's last stderr line is usually a harmless log line
printed just before the crash, so the signal has to be named first, or the reason misleads.
"""

from __future__ import annotations

import re
import signal
import subprocess


def failure_reason(proc: subprocess.CompletedProcess, telling: str | None = None) -> str:
    """One line on why ``proc`` failed; ``telling`` is a regex for the line worth quoting.

    Without it the last stderr line is quoted (a Python error's message). Native aborts
    print their assertion and then a backtrace, so callers name what to look for.
    """
    lines = [ln.strip() for ln in (proc.stderr or "").splitlines() if ln.strip()]
    found = [ln for ln in lines if telling and re.search(telling, ln)]
    last = (found or lines or ["no output"])[-1]
    if proc.returncode is not None and proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        return f"crashed ({name}); last output: {last}"
    return last


_LLAMA_ERROR = r"GGML_ASSERT|GGML_ABORT|error|failed|Error"


def llama_failure(proc: subprocess.CompletedProcess) -> str:
    """Why a child running llama.cpp failed: its signal, and llama.cpp's own error line."""
    who = "llama.cpp " if proc.returncode < 0 else ""
    return who + re.sub(r"\S*/vendor/", "", failure_reason(proc, telling=_LLAMA_ERROR))
