"""Energy counters: NVML on NVIDIA GPUs, RAPL on CPUs where the kernel exposes it.

Both are hardware counters read before and after a window. Where neither is readable the
meter says so and returns no number: energy is never estimated from time or TDP.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RAPL_ROOT = Path("/sys/class/powercap")


@dataclass
class EnergyReading:
    joules: float | None
    source: str  # "nvml", "rapl" or "not measured: <why>"

    def as_dict(self) -> dict:
        return {"joules": self.joules, "source": self.source}


def _rapl_packages(root: Path = RAPL_ROOT) -> list[Path]:
    """Top-level RAPL zones (``intel-rapl:N``); sub-zones are already inside their package."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1
                  and (p / "energy_uj").is_file())


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


class EnergyMeter:
    """Measure the energy of a window: ``start()``, run the work, ``stop()``."""

    def __init__(self, device: str = "cpu", rapl_root: Path = RAPL_ROOT) -> None:
        self.device = device
        self.rapl_root = rapl_root
        self._start: dict | None = None
        self._handle = None

    def _nvml_mj(self) -> int | None:
        try:
            import pynvml

            if self._handle is None:
                pynvml.nvmlInit()
                index = int(self.device.split(":")[1]) if ":" in self.device else 0
                self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            return int(pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except Exception:  # noqa: BLE001 - any NVML failure means "not measurable here"
            return None

    def _rapl_uj(self) -> dict[Path, int] | None:
        zones = _rapl_packages(self.rapl_root)
        values = {z: _read_int(z / "energy_uj") for z in zones}
        if not values or any(v is None for v in values.values()):
            return None
        return values

    def start(self) -> None:
        if self.device.startswith("cuda"):
            self._start = {"nvml": self._nvml_mj()}
        else:
            self._start = {"rapl": self._rapl_uj()}

    def stop(self) -> EnergyReading:
        if self._start is None:
            raise RuntimeError("EnergyMeter.stop() before start()")
        if "nvml" in self._start:
            begin, end = self._start["nvml"], self._nvml_mj()
            if begin is None or end is None:
                return EnergyReading(None, "not measured: NVML energy counter unavailable")
            return EnergyReading((end - begin) / 1e3, "nvml")
        begin, end = self._start["rapl"], self._rapl_uj()
        if begin is None or end is None:
            return EnergyReading(None, f"not measured: RAPL not readable under {self.rapl_root}")
        total = 0
        for zone, value in end.items():
            delta = value - begin[zone]
            if delta < 0:  # the counter wrapped around
                delta += _read_int(zone / "max_energy_range_uj") or 0
            total += delta
        return EnergyReading(total / 1e6, "rapl")
