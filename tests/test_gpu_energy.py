"""NVML energy on CUDA: the counter the bench reports as J/token. Run: ``pytest -m gpu -s``."""

from __future__ import annotations

import pytest
import torch
from require import cuda_or_skip, import_or_skip

from harness.meters.energy import EnergyMeter

pytestmark = pytest.mark.gpu


def test_nvml_measures_the_energy_of_gpu_work():
    cuda_or_skip()
    import_or_skip("pynvml", "gpu")
    meter = EnergyMeter("cuda:0")
    a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    meter.start()
    for _ in range(200):
        a = torch.tanh(a @ a)
    torch.cuda.synchronize()
    reading = meter.stop()
    assert reading.source == "nvml", reading.source
    # 200 products of 4096^3 take ~0.1-1 s on a current GPU drawing 100+ W.
    assert 1 < reading.joules < 10_000
