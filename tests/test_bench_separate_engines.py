"""The bench's GPTQ and vLLM rows on a tiny model, each in the environment holding its engine.

GPTQModel and vLLM pin versions the default environment does not have, so these run in
``tox -e gptq`` / ``tox -e vllm`` (or any environment where the engine imports) and skip
elsewhere; the default suite checks the skip reasons instead (test_bench_runner).
"""

from __future__ import annotations

import importlib.util

from require import skip_unless
from tiny_models import build_tiny_base

from harness.bench.outcomes import no_result
from harness.bench.runner import BenchConfig, run_bench


def _bench(tmp_path, data_dir, formats):
    base_dir, _ = build_tiny_base(tmp_path / "base", hidden_size=256)
    cfg = BenchConfig(model=str(base_dir), formats=formats, task="teletables", limit=4,
                      data_dir=str(data_dir), prompts=2, gen_tokens=4, min_runs=2,
                      min_seconds=0, warmup=1, synthetic=None, chat_template=False,
                      calibration=8, output_dir=str(tmp_path / "runs"))
    return run_bench(cfg)["results"]


def _timed(result):
    assert no_result(result) is None, result
    assert result["requests"] >= 2 and result["decode_tok_s"]["p50"] > 0
    assert result["ttft_s"]["p50"] > 0 and result["peak_rss_mb"] > 0
    assert result["accuracy"]["n"] == 4


def test_gptq_row_is_quantized_timed_and_scored_on_its_own_kernel(data_dir, tmp_path,
                                                                   monkeypatch):
    skip_unless("gptq", importlib.util.find_spec("gptqmodel") is not None,
                "GPTQModel is not installed here (tox -e gptq)")
    from harness.quant.gptq import DONE_FILE

    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    results = _bench(tmp_path, data_dir, ["fp32", "gptq"])
    _timed(results["gptq"])
    assert results["gptq"]["kernel"]  # the GPTQModel kernel that ran
    assert results["gptq"]["bits_per_weight"] < 16 < results["fp32"]["bits_per_weight"]
    assert results["gptq"]["file_size_mb"] < results["fp32"]["file_size_mb"]
    [built] = list((tmp_path / "cache" / "bench").glob("gptq-*"))
    assert (built / DONE_FILE).is_file()
    assert "delta_vs_baseline" in results["gptq"]["accuracy"]


def test_vllm_row_is_timed_and_scored_on_vllm(data_dir, tmp_path, monkeypatch):
    skip_unless("vllm", importlib.util.find_spec("vllm") is not None,
                "vLLM is not installed here (tox -e vllm)")
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    results = _bench(tmp_path, data_dir, ["fp32", "vllm"])
    _timed(results["vllm"])
    assert results["vllm"]["bits_per_weight"] in (16, 32)
