"""Memory bandwidth of the device that decodes: the physical bound for decode throughput.

Decoding one token reads (about) every weight once, so tokens/s can never exceed
bandwidth / bytes-per-token; the ratio of the two is the utilisation the bench reports. The
bound is the memory the weights live in: host RAM for CPU engines, the GPU's own memory
(often 20-50x faster) when decoding on a GPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Bandwidth:
    """A bandwidth in GB/s, the device it belongs to and how it was obtained."""

    gbs: float
    device: str
    source: str


def read_bandwidth_gbs(megabytes: int = 512, repeats: int = 5, threads: int | None = None
                       ) -> float:
    """Best of ``repeats`` multi-threaded sums over a buffer much larger than the caches."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    buffer = torch.ones(megabytes * 2**20 // 4, dtype=torch.float32)
    buffer.sum()  # fault the pages in before timing
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        buffer.sum()
        elapsed = time.perf_counter() - start
        best = max(best, buffer.numel() * 4 / elapsed / 1e9)
    return best


def nvml_bandwidth_gbs(nvml: Any, index: int = 0) -> tuple[float, str]:
    """Peak bandwidth of GPU ``index`` from NVML, and how it was computed.

    Bus width (bits) / 8 x max memory clock (MHz) x 2: NVML reports the memory clock at half
    the transfer rate for both HBM and GDDR (double data rate). H100 SXM: 5120 bits x
    2619 MHz x 2 = 3.35 TB/s, its data sheet figure.
    """
    nvml.nvmlInit()
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        bus_bits = nvml.nvmlDeviceGetMemoryBusWidth(handle)
        mhz = nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_MEM)
    finally:
        nvml.nvmlShutdown()
    gbs = bus_bits / 8 * mhz * 1e6 * 2 / 1e9
    return gbs, f"nvml: {bus_bits}-bit bus x {mhz} MHz max memory clock x 2 (DDR)"


def copy_bandwidth_gbs(device: str, megabytes: int = 256, repeats: int = 5) -> float:
    """Best of ``repeats`` device-to-device copies; each reads and writes the whole buffer."""
    import torch

    src = torch.ones(megabytes * 2**20 // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize(device)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        dst.copy_(src)
        torch.cuda.synchronize(device)
        best = max(best, 2 * src.numel() * 4 / (time.perf_counter() - start) / 1e9)
    return best


def device_bandwidth(device: str) -> Bandwidth:
    """The bandwidth of the memory ``device`` decodes from.

    On a GPU: NVML's peak figure when ``pynvml`` (nvidia-ml-py) answers, else a measured
    device-to-device copy. On the CPU: a measured read of host RAM.
    """
    if not device.startswith("cuda"):
        return Bandwidth(read_bandwidth_gbs(), "cpu", "measured host memory read")
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    try:
        import pynvml

        gbs, how = nvml_bandwidth_gbs(pynvml, index)
        if gbs > 0:
            return Bandwidth(gbs, device, how)
    except Exception:  # noqa: BLE001 - no NVML (or an old one): measure instead
        pass
    return Bandwidth(copy_bandwidth_gbs(device), device, "measured device-to-device copy")


def bandwidth_utilisation(bytes_per_token: float, tokens_per_s: float,
                          bandwidth_gbs: float) -> float:
    return bytes_per_token * tokens_per_s / (bandwidth_gbs * 1e9)
