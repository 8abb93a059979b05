"""Peak memory of this process: kernel-tracked RSS high-water mark, and CUDA's allocator peak."""

from __future__ import annotations

import resource
import sys


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


class PeakRSSSampler:
    """Sample this process's RSS every ``interval`` s on a thread, keeping the peak.

    The kernel's own high-water mark (VmHWM) is read as well: it cannot miss a short spike,
    while the sampled peak can be reset per phase (load vs. inference).
    """

    def __init__(self, interval: float = 0.01) -> None:
        import threading

        self.interval = interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, _status_kb("VmRSS") or 0)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSSSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, _status_kb("VmRSS") or 0)

    @property
    def peak_mb(self) -> float:
        return self.peak_kb / 1024

    @staticmethod
    def high_water_mb() -> float | None:
        kb = _status_kb("VmHWM")
        return None if kb is None else kb / 1024
