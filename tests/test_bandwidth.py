"""Bandwidth utilisation is against the decoding device's own memory: NVML's figure on a GPU.

NVML is faked: the arithmetic (bus width x max memory clock x 2) is what is checked, with the
published figures of two GPUs.
"""

from __future__ import annotations

import sys
import types

import pytest

from harness.meters import bandwidth
from harness.meters.bandwidth import device_bandwidth, nvml_bandwidth_gbs


def fake_nvml(bus_bits: int, mem_mhz: int, broken: bool = False) -> types.ModuleType:
    nvml = types.ModuleType("pynvml")
    nvml.NVML_CLOCK_MEM = 2
    nvml.calls = []
    nvml.nvmlInit = lambda: nvml.calls.append("init")
    nvml.nvmlShutdown = lambda: nvml.calls.append("shutdown")
    nvml.nvmlDeviceGetHandleByIndex = lambda index: ("handle", index)

    def bus_width(handle):
        if broken:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        return bus_bits

    def max_clock(handle, clock):
        assert clock == nvml.NVML_CLOCK_MEM and handle[0] == "handle"
        nvml.calls.append(("clock of", handle[1]))
        return mem_mhz

    nvml.nvmlDeviceGetMemoryBusWidth = bus_width
    nvml.nvmlDeviceGetMaxClockInfo = max_clock
    return nvml


@pytest.mark.parametrize("bus_bits, mhz, gbs", [
    (5120, 2619, 3352.32),   # H100 SXM, HBM3: 3.35 TB/s
    (384, 10501, 1008.096),  # RTX 4090, GDDR6X: 1008 GB/s
])
def test_nvml_bandwidth_is_bus_width_times_memory_clock_times_two(bus_bits, mhz, gbs):
    nvml = fake_nvml(bus_bits, mhz)
    value, how = nvml_bandwidth_gbs(nvml, index=1)
    assert value == pytest.approx(gbs)
    assert how == f"nvml: {bus_bits}-bit bus x {mhz} MHz max memory clock x 2 (DDR)"
    assert nvml.calls == ["init", ("clock of", 1), "shutdown"]


def test_a_gpu_uses_nvml_and_a_cpu_its_host_memory(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(5120, 2619))
    monkeypatch.setattr(bandwidth, "read_bandwidth_gbs", lambda: 12.5)
    gpu = device_bandwidth("cuda:0")
    assert gpu.device == "cuda:0" and gpu.gbs == pytest.approx(3352.32)
    assert gpu.source.startswith("nvml: 5120-bit bus")
    cpu = device_bandwidth("cpu")
    assert (cpu.gbs, cpu.device, cpu.source) == (12.5, "cpu", "measured host memory read")


def test_without_nvml_a_gpu_measures_a_device_copy(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(0, 0, broken=True))
    monkeypatch.setattr(bandwidth, "copy_bandwidth_gbs", lambda device: 2900.0)
    monkeypatch.setattr(bandwidth, "read_bandwidth_gbs", lambda: pytest.fail("host RAM read"))
    gpu = device_bandwidth("cuda:1")
    assert (gpu.gbs, gpu.device, gpu.source) == (2900.0, "cuda:1",
                                                 "measured device-to-device copy")


@pytest.mark.gpu
def test_on_a_real_gpu_nvml_and_a_copy_roughly_agree():
    from require import cuda_or_skip, import_or_skip

    cuda_or_skip()
    nvml = import_or_skip("pynvml", "gpu")
    peak, _ = nvml_bandwidth_gbs(nvml, 0)
    copied = bandwidth.copy_bandwidth_gbs("cuda:0")
    print(f"\nNVML peak {peak:.0f} GB/s, measured copy {copied:.0f} GB/s")
    assert 0.3 * peak < copied <= 1.05 * peak
