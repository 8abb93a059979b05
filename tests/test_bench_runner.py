"""``slmbench bench`` end to end on a tiny model: every format in its own process."""

from __future__ import annotations

import importlib.util
import json

from tiny_models import build_tiny_base

from harness.bench.outcomes import no_result
from harness.bench.runner import BenchConfig, run_bench


def test_bench_runs_each_format_and_skips_what_cannot_run(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    base_dir, _ = build_tiny_base(tmp_path / "base", hidden_size=256)
    cfg = BenchConfig(model=str(base_dir), formats=["fp32", "gguf-f32", "gguf-q8_0", "gptq"],
                      task="teletables", limit=4, data_dir=str(data_dir), prompts=2,
                      gen_tokens=4, min_runs=3, min_seconds=0, warmup=1, synthetic=(16, 4),
                      chat_template=False, output_dir=str(tmp_path / "runs"))
    report = run_bench(cfg)
    results = report["results"]
    if importlib.util.find_spec("gptqmodel") is None:  # the default environment
        assert "gptqmodel is not importable" in results["gptq"]["skipped"]
    for name in ("fp32", "gguf-f32", "gguf-q8_0"):
        r = results[name]
        assert no_result(r) is None, r
        assert r["requests"] >= 3 and len(r["raw"]) == r["requests"]
        assert r["decode_tok_s"]["p50"] > 0 and r["prefill_tok_s"]["p50"] > 0
        assert r["latency_s"]["p95"] >= r["latency_s"]["p50"] > 0
        assert r["peak_rss_mb"] > 0 and r["load_s"] > 0
        assert r["energy"]["j_per_token"] is None or r["energy"]["source"] in ("rapl", "nvml")
        assert r["accuracy"]["n"] == 4 and 0 <= r["accuracy"]["value"] <= 1
        assert r["synthetic"]["pp"] == 16
    assert results["gguf-q8_0"]["bits_per_weight"] < results["gguf-f32"]["bits_per_weight"]
    assert "delta_vs_baseline" in results["gguf-q8_0"]["accuracy"]
    [written] = list((tmp_path / "runs").rglob("bench.json"))
    saved = json.loads(written.read_text())
    assert saved["environment"]["versions"]["torch"] and saved["bandwidth_gbs"] > 0


def test_a_gguf_read_into_memory_is_another_measurement_and_says_so(data_dir, tmp_path,
                                                                   monkeypatch):
    """--no-llama-mmap: llama.cpp reads the GGUF instead of mapping it (where AMX repacks
    weights, the mapped pages would stay resident beside the copy); the row records it, and a
    mapped bench's spec stays as it was."""
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    base_dir, _ = build_tiny_base(tmp_path / "base", hidden_size=64)
    specs = {}
    for mmap in (True, False):
        cfg = BenchConfig(model=str(base_dir), formats=["gguf-q8_0"], task=None, limit=None,
                          data_dir=str(data_dir), prompts=2, gen_tokens=4, min_runs=2,
                          min_seconds=0, warmup=0, synthetic=None, chat_template=False,
                          llama_mmap=mmap, output_dir=str(tmp_path / f"runs-{mmap}"))
        row = run_bench(cfg)["results"]["gguf-q8_0"]
        assert no_result(row) is None, row
        [spec] = list((tmp_path / f"runs-{mmap}").rglob("spec_gguf-q8_0.json"))
        specs[mmap] = json.loads(spec.read_text())
        assert row["llama_cpp"].get("use_mmap", True) is mmap
    assert "use_mmap" not in specs[True] and specs[False]["use_mmap"] is False


def test_an_interrupted_bench_measures_only_the_formats_still_missing(data_dir, tmp_path,
                                                                      monkeypatch):
    """Killed after fp32 was measured: the re-run keeps fp32's result and measures bf16."""
    import subprocess

    import pytest

    from harness.bench import runner

    base_dir, _ = build_tiny_base(tmp_path / "base", hidden_size=64)
    cfg = BenchConfig(model=str(base_dir), formats=["fp32", "bf16"], task=None, limit=None,
                      data_dir=str(data_dir), prompts=2, gen_tokens=4, min_runs=2,
                      min_seconds=0, warmup=0, synthetic=None, chat_template=False,
                      output_dir=str(tmp_path / "runs"))
    real_run, measured, killed = subprocess.run, [], [False]

    def worker(argv, **kw):
        fmt = json.loads(open(argv[-2]).read())["format"]
        if fmt == "bf16" and not killed[0]:
            killed[0] = True
            raise KeyboardInterrupt  # the kill lands once fp32 is measured
        measured.append(fmt)
        return real_run(argv, **kw)

    monkeypatch.setattr(runner.subprocess, "run", worker)
    with pytest.raises(KeyboardInterrupt):
        run_bench(cfg)
    [folder] = list((tmp_path / "runs").iterdir())
    first = json.loads((folder / "result_fp32.json").read_text())
    assert runner.interrupted_run_dir(cfg) == folder and not (folder / "run.json").exists()
    report = run_bench(cfg)
    assert measured == ["fp32", "bf16"]  # fp32 was not measured again
    assert report["results"]["fp32"]["raw"] == first["raw"]
    assert (folder / "run.json").is_file() and runner.interrupted_run_dir(cfg) is None
    run_bench(cfg)  # a finished run is never reopened: a new measurement, a new folder
    assert len(list((tmp_path / "runs").iterdir())) == 2
