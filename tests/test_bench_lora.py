"""``slmbench bench`` rows of a zoo: ``gguf-<quant>+lora`` paired against ``hf-peft``.

A tiny random Llama with a zoo of two adapters (one routed from the accuracy task): both
routed formats are timed with every adapter loaded, switch between them, and are scored on
their own engine, the ``+lora`` row paired against ``hf-peft`` on the same questions.
"""

from __future__ import annotations

import pytest

from harness.bench.runner import BenchConfig
from harness.errors import SlmbenchError

pytest.importorskip("llama_cpp")

MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _zoo(root):
    from tiny_models import build_tiny_base, build_tiny_zoo

    base_dir, config = build_tiny_base(root / "base", hidden_size=64, init_range=0.2)
    return base_dir, build_tiny_zoo(root, base_dir, config, MODULES, adapters=(
        ("tables", "teletables", 1), ("other", "oranbench", 2)))


@pytest.mark.slow  # two worker processes, a GGUF export and two evaluations: about 2 minutes
def test_lora_row_times_every_adapter_and_pairs_with_hf_peft(data_dir, tmp_path, monkeypatch):
    from harness.bench.runner import run_bench

    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    base_dir, manifest = _zoo(tmp_path)
    cfg = BenchConfig(model=str(base_dir), zoo=str(manifest), switches=10, alternating_rounds=6,
                      interleaved_pairs=7,
                      formats=["hf-peft", "gguf-q8_0+lora"], task="teletables", limit=4,
                      data_dir=str(data_dir), prompts=2, gen_tokens=4, min_runs=2,
                      min_seconds=0, warmup=1, synthetic=None, chat_template=False,
                      output_dir=str(tmp_path / "runs"))
    results = run_bench(cfg)["results"]
    peft, lora = results["hf-peft"], results["gguf-q8_0+lora"]
    for r in (peft, lora):
        assert "crashed" not in r and "skipped" not in r, r
        assert r["prefill_tok_s"]["p50"] > 0 and r["decode_tok_s"]["p50"] > 0
        assert r["ttft_s"]["p50"] > 0 and r["peak_rss_mb"] > 0
        assert r["adapters"]["n"] == 2 and r["adapters"]["active"] == "tables"
        assert r["adapters"]["target_modules"] == MODULES  # the lever on its decode cost
        assert len(r["adapters"]["switch_ms_raw"]) == 10
        assert r["adapters"]["switch_ms"]["p95"] >= r["adapters"]["switch_ms"]["p50"]
        assert r["accuracy"]["n"] == 4
    assert peft["adapters"]["switch_ms"]["p50"] > 0 and "switch_parts_ms" not in peft["adapters"]
    parts = lora["adapters"]["switch_parts_ms"]  # llama.cpp rebuilds its graph at the next token
    assert {"call", "first_token", "token_without_switch"} == set(parts)
    assert parts["first_token"]["p50"] > parts["token_without_switch"]["p50"]
    assert lora["adapters"]["switch_ms"]["p50"] > parts["call"]["p50"]
    alternating = lora["adapters"]["alternating_decode"]  # off and on in turn, one process
    assert alternating["rounds"] == 6 and alternating["ratio_p50"] > 0
    assert alternating["on_tok_s"]["n"] == alternating["off_tok_s"]["n"] == 6
    low, high = alternating["ratio_ci95"]  # six rounds: the smallest and largest ratio
    assert (low, high) == (min(alternating["ratios"]), max(alternating["ratios"]))
    assert low <= alternating["ratio_p50"] <= high
    blocks = lora["adapters"]["interleaved_decode"]  # 8-token blocks on and off, one request
    assert (blocks["pairs"], blocks["block_tokens"], len(blocks["ratios"])) == (7, 8, 7)
    assert blocks["on_ms_per_token"]["n"] == blocks["off_ms_per_token"]["n"] == 7
    assert blocks["ratio_ci95"] == [sorted(blocks["ratios"])[0], sorted(blocks["ratios"])[-1]]
    assert "alternating_decode" not in peft["adapters"]  # transformers: not measured
    assert "interleaved_decode" not in peft["adapters"]
    disk = lora["disk_bytes"]
    assert disk["backbone"] > 0 and disk["adapters"] > 0
    assert disk["total"] == disk["backbone"] + disk["adapters"]
    assert lora["file_size_mb"] == round(disk["total"] / 1e6, 1)
    assert lora["bits_per_weight"] < 16  # the backbone's q8_0, not the adapters
    assert lora["accuracy"]["paired_with"] == "hf-peft"
    assert lora["accuracy"]["delta_vs_baseline"]["n"] == 4
    # hf-peft has no full-precision row to pair with here, so it stays unpaired
    assert "delta_vs_baseline" not in peft["accuracy"]


@pytest.mark.parametrize("formats, zoo, message", [
    (["gguf-q3+lora"], "zoo.yaml", "unknown GGUF quantization 'q3'"),
    (["fp32+lora"], "zoo.yaml", "unknown GGUF quantization 'fp32'"),
    (["gguf-q4_k_m+lora"], None, "give --zoo"),
])
def test_a_bad_lora_format_is_one_line(formats, zoo, message):
    with pytest.raises(SlmbenchError) as err:
        BenchConfig(formats=formats, zoo=zoo)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("counts, message", [
    ({"alternating_rounds": 0}, "bench: --alternating-rounds must be >= 1"),
    ({"interleaved_pairs": -1}, "bench: --interleaved-pairs must be >= 0"),
    ({"switches": 0}, "bench: --switches must be >= 1"),
])
def test_a_bad_count_of_timed_repeats_is_one_line(counts, message):
    with pytest.raises(SlmbenchError) as err:
        BenchConfig(formats=["gguf-q8_0+lora"], zoo="zoo.yaml", **counts)
    assert str(err.value) == message


def test_no_interleaved_pairs_is_allowed():
    """0 skips the token blocks (their record is then absent, not an empty interval)."""
    assert BenchConfig(formats=["gguf-q8_0+lora"], zoo="zoo.yaml",
                       interleaved_pairs=0).interleaved_pairs == 0
