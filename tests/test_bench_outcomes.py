"""``slmbench bench`` fails when a requested format produced no result, and says why.

A skip (the engine's package or hardware is missing) and a crash (the worker died; its exit
code or signal kept) are told apart; ``--allow-skip`` keeps the old exit 0.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from tiny_models import build_tiny_base

from harness.bench import runner
from harness.bench.outcomes import no_result, unmeasured
from harness.cli import main
from harness.meters.bandwidth import Bandwidth


@pytest.fixture
def no_gptqmodel(tmp_path, monkeypatch):
    """Whatever this environment holds, the engine check's child cannot import gptqmodel."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "gptqmodel.py").write_text("raise ImportError('GPTQModel hidden by the test')\n")
    import os

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(shadow), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.delenv("SLMBENCH_GPTQ_PYTHON", raising=False)


def _bench_args(tmp_path, data_dir) -> list[str]:
    base_dir, _ = build_tiny_base(tmp_path / "base", hidden_size=64)
    return ["bench", "--model", str(base_dir), "--formats", "fp32,gptq", "--task", "none",
            "--data-dir", str(data_dir), "--prompts", "2", "--gen-tokens", "4", "--min-runs",
            "2", "--min-seconds", "0", "--synthetic", "none", "--no-chat-template",
            "--output-dir", str(tmp_path / "runs")]


def test_a_skipped_format_fails_the_bench_unless_allowed(data_dir, tmp_path, monkeypatch,
                                                         no_gptqmodel, capfd):
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    args = _bench_args(tmp_path, data_dir)
    assert main(args) == 1
    out, err = capfd.readouterr()
    assert ("slmbench: error: bench: 1 of 2 requested formats produced no result (gptq); "
            "--allow-skip accepts that") in err
    table = out[out.index("formats requested"):]
    assert "fp32" in table and "measured" in table
    assert "skipped" in table and "gptqmodel is not importable" in table
    # The same outcome under --allow-skip, without measuring fp32 a second time.
    [written] = list((tmp_path / "runs").rglob("bench.json"))
    report = json.loads(written.read_text())
    monkeypatch.setattr("harness.bench.runner.run_bench", lambda cfg: report)
    assert main([*args, "--allow-skip"]) == 0
    out, err = capfd.readouterr()
    assert "skipped" in out[out.index("formats requested"):] and "error" not in err


def test_a_crashed_worker_is_recorded_as_crashed_with_its_signal(data_dir, tmp_path,
                                                                 monkeypatch):
    base_dir, _ = build_tiny_base(tmp_path / "base", hidden_size=64)
    real_run = subprocess.run

    def segfaulting_worker(argv, **kw):
        if "harness.bench.worker" in argv:
            return subprocess.CompletedProcess(argv, -11, "", "loading weights\n")
        return real_run(argv, **kw)

    monkeypatch.setattr(runner.subprocess, "run", segfaulting_worker)
    monkeypatch.setattr(runner, "device_bandwidth",
                        lambda device: Bandwidth(10.0, device, "test"))
    cfg = runner.BenchConfig(model=str(base_dir), formats=["fp32"], task=None, limit=None,
                             data_dir=str(data_dir), prompts=2, gen_tokens=4, min_runs=2,
                             min_seconds=0, warmup=0, synthetic=None, chat_template=False,
                             output_dir=str(tmp_path / "runs"))
    results = runner.run_bench(cfg)["results"]
    assert results["fp32"] == {
        "crashed": "worker failed: crashed (SIGSEGV); last output: loading weights",
        "exit_code": -11, "signal": "SIGSEGV"}
    assert no_result(results["fp32"]) == ("crashed", results["fp32"]["crashed"])
    assert unmeasured(results, ["fp32"]) == ["fp32"]


def test_measured_results_count_as_results():
    results = {"fp32": {"decode_tok_s": {"p50": 3.0}}, "gptq": {"skipped": "no gptqmodel"}}
    assert unmeasured(results, ["fp32", "gptq", "vllm"]) == ["gptq", "vllm"]
    assert no_result(results["gptq"]) == ("skipped", "no gptqmodel")
