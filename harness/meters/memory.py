"""Peak memory of this process (and its children), and CUDA's allocator peak."""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (exact; the kernel tracks it)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def peak_vram_mb() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / 2**20


def _status_kb(field: str, pid: int | str = "self") -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _children(pid: int | str) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


def tree_rss_kb(pid: int | str = "self") -> int:
    """RSS of a process plus all its descendants (vLLM runs its engine core in a child)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        total += _status_kb("VmRSS", current) or 0
        pending += _children(current)
    return total


class PeakRSSSampler:
    """Sample the RSS of this process and its children every ``interval`` s, keeping the peak.

    The kernel's own high-water mark (VmHWM, this process only) is read as well: it cannot
    miss a short spike, while the sampled peak also covers engines that work in a child
    process.
    """

    def __init__(self, interval: float = 0.01) -> None:
        import threading

        self.interval = interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, tree_rss_kb())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSSSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, tree_rss_kb())

    @property
    def peak_mb(self) -> float:
        return self.peak_kb / 1024

    @staticmethod
    def high_water_mb() -> float | None:
        kb = _status_kb("VmHWM")
        return None if kb is None else kb / 1024
