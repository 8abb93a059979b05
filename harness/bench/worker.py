"""One format, one process: load, warm up, time, then score accuracy on the same engine.

Run by the bench runner as ``python -m harness.bench.worker <spec.json> <result.json>`` so
that each format starts from a clean process (no allocator, thread-pool or page-cache state
shared with the previous format) and its peak RSS is its own.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from harness.bench.engines import (
    GptqEngine,
    LlamaCppEngine,
    LlamaCppLoraEngine,
    PeftEngine,
    RequestTiming,
    TransformersEngine,
    VllmEngine,
)
from harness.bench.stats import repeat_until, summarize
from harness.meters.energy import EnergyMeter
from harness.meters.memory import PeakRSSSampler, peak_vram_mb
from harness.runs.atomic import write_json_atomic


def make_engine(spec: dict[str, Any]):
    if spec["engine"] == "transformers":
        return TransformersEngine(spec["artifact"], spec["precision"], spec["device"])
    if spec["engine"].startswith("llama.cpp"):
        load = {"n_threads": spec.get("threads"), "use_mmap": spec.get("use_mmap", True),
                "n_gpu_layers": -1 if spec["device"].startswith("cuda") else 0}
        if spec["engine"] == "llama.cpp":
            return LlamaCppEngine(spec["artifact"], **load)
        if spec["engine"] == "llama.cpp-lora":
            return LlamaCppLoraEngine(spec["artifact"], spec["adapter_ggufs"],
                                      spec["active_adapter"], **load)
    if spec["engine"] == "transformers-peft":
        return PeftEngine(spec["pretrained"], spec["zoo"], spec["active_adapter"], spec["device"])
    if spec["engine"] == "gptq":
        return GptqEngine(spec["artifact"], spec["device"])
    if spec["engine"] == "vllm":
        return VllmEngine(spec["artifact"], spec["device"])
    raise ValueError(f"no timing engine for {spec['engine']}")


def _decode_tok_s(t: RequestTiming) -> float:
    return (t.gen_tokens - 1) / t.decode_s  # the first token is prefill's


def _rates(timings: list[RequestTiming]) -> dict[str, Any]:
    return {
        "prefill_tok_s": summarize([t.prompt_tokens / t.prefill_s for t in timings]).as_dict(),
        "decode_tok_s": summarize([_decode_tok_s(t) for t in timings
                                   if t.gen_tokens > 1]).as_dict(),
        "ttft_s": summarize([t.ttft_s for t in timings]).as_dict(),
        "latency_s": summarize([t.total_s for t in timings]).as_dict(),
    }


def time_engine(engine, prompts: list[str], spec: dict[str, Any]) -> dict[str, Any]:
    ids = [engine.tokenize(p) for p in prompts]
    for warm in ids[: spec.get("warmup", 2)]:
        engine.timed_request(warm, spec["gen_tokens"])
    timings: list[RequestTiming] = []

    def one() -> float:
        timing = engine.timed_request(ids[len(timings) % len(ids)], spec["gen_tokens"])
        timings.append(timing)
        return timing.total_s

    meter = EnergyMeter(spec["device"])
    meter.start()
    repeat_until(one, spec["min_runs"], spec["min_seconds"])
    energy = meter.stop()
    result = {"requests": len(timings), **_rates(timings),
              "raw": [t.__dict__ for t in timings]}
    tokens = sum(t.prompt_tokens + t.gen_tokens for t in timings)
    result["energy"] = {
        "source": energy.source,
        "joules": energy.joules,
        "j_per_token": energy.joules / tokens if energy.joules is not None else None,
        "j_per_request": energy.joules / len(timings) if energy.joules is not None else None,
    }
    if spec.get("synthetic"):
        pp, tg = spec["synthetic"]
        synthetic_ids = [(i * 7919) % 1000 + 100 for i in range(pp)]
        reps = spec.get("synthetic_reps", 3)
        runs = [engine.timed_request(synthetic_ids, tg) for _ in range(reps)]
        result["synthetic"] = {"pp": pp, "tg": tg, **_rates(runs)}
    return result


def _alternating(engine, prompts: list[str], spec: dict[str, Any]) -> dict[str, Any]:
    """The adapter's decode cost as the ratio of neighbouring on/off requests, one process.

    Each round's ratio is kept, with a distribution-free 95% interval for their median: on a
    noisy VM two benches of the same code read several points apart, so a ratio near the
    target says nothing without its interval (and more rounds narrow it).
    """
    ids = [engine.tokenize(p) for p in prompts]
    timed = engine.alternating_decode(ids, spec["gen_tokens"], spec["alternating_rounds"])
    on, off = ([_decode_tok_s(t) for t in timings] for timings in timed)
    return {"rounds": len(on), "on_tok_s": summarize(on).as_dict(),
            "off_tok_s": summarize(off).as_dict(),
            **_ratios_record([a / b for a, b in zip(on, off, strict=True)])}


def _ratios_record(ratios: list[float]) -> dict[str, Any]:
    """Each pair's on/off ratio, their median and its distribution-free 95% interval."""
    from harness.significance import median_ci

    interval = median_ci(ratios)
    return {"ratios": ratios, "ratio_p50": statistics.median(ratios),
            "ratio_ci95": list(interval) if interval else None}


INTERLEAVED_BLOCK_TOKENS, INTERLEAVED_SETTLE_TOKENS = 8, 2


def _interleaved(engine, prompts: list[str], spec: dict[str, Any]) -> dict[str, Any]:
    """The adapter's decode cost from blocks of tokens with it on and off in turn, one request.

    The ratio of each pair of neighbouring blocks (on tok/s over off tok/s), their median and
    its distribution-free 95% interval: see :meth:`LlamaCppLoraEngine.interleaved_decode`.
    """
    on, off = engine.interleaved_decode(engine.tokenize(prompts[0]), spec["interleaved_pairs"],
                                        INTERLEAVED_BLOCK_TOKENS, INTERLEAVED_SETTLE_TOKENS)
    return {"pairs": len(on), "block_tokens": INTERLEAVED_BLOCK_TOKENS,
            "settle_tokens": INTERLEAVED_SETTLE_TOKENS,
            "on_ms_per_token": summarize([t * 1e3 for t in on]).as_dict(),
            "off_ms_per_token": summarize([t * 1e3 for t in off]).as_dict(),
            **_ratios_record([b / a for a, b in zip(on, off, strict=True)])}


def adapter_decode_measures(engine, prompts: list[str], spec: dict[str, Any]) -> dict[str, Any]:
    """The decode-ratio measures this engine can take and the spec asks for, by name.

    A measure the spec turns off (one generated token, or 0 block pairs) is left out of the
    record rather than written empty, so a page never reads an interval nobody measured.
    """
    measures: dict[str, Any] = {}
    if hasattr(engine, "alternating_decode") and spec["gen_tokens"] > 1:
        measures["alternating_decode"] = _alternating(engine, prompts, spec)
    if hasattr(engine, "interleaved_decode") and spec.get("interleaved_pairs"):
        measures["interleaved_decode"] = _interleaved(engine, prompts, spec)
    return measures


def score_accuracy(spec: dict[str, Any], out_dir: Path) -> dict[str, Any] | None:
    """Pass@1 on the task through lm-eval, with the model class of this very engine."""
    if not spec.get("task"):
        return None
    from harness.evaluation.run import run_eval
    from harness.evaluation.spec import EvalSpec

    artifact = spec["artifact"]
    if spec["engine"] == "transformers":
        dtype = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}[spec["precision"]]
        model, model_args = "hf", {"pretrained": artifact, "dtype": dtype}
    elif spec["engine"] == "gptq":  # lm-eval's HFLM loads it through GPTQModel itself
        model, model_args = "hf", {"pretrained": artifact, "gptqmodel": True}
    elif spec["engine"] == "vllm":  # vllm-peft without adapters: vLLM with the CPU settings
        model, model_args = "vllm-peft", {"pretrained": artifact}
    elif spec["engine"] == "transformers-peft":  # each task on its adapter
        model, model_args = "hf-peft", {"pretrained": spec["pretrained"], "adapters": spec["zoo"],
                                        "dtype": "float32"}
    elif spec["engine"] == "llama.cpp-lora":
        model, model_args = "llama-cpp-peft", {"pretrained": artifact, "adapters": spec["zoo"]}
    else:
        model, model_args = "llama-cpp", {"pretrained": artifact}
    started = time.time()
    run = run_eval(EvalSpec(
        model=model, model_args=model_args, tasks=(spec["task"],), output_path=str(out_dir),
        device=spec["device"], batch_size="8",
        apply_chat_template=True if spec.get("chat_template") else None,
        limit=spec.get("limit") or None, label=spec.get("label"),
        metadata={"data_dir": spec["data_dir"]} if spec.get("data_dir") else {}))
    info = run.tasks()[spec["task"]]
    samples = sorted(run.samples(spec["task"]) or [], key=lambda r: r["doc_id"])
    return {"task": spec["task"], "metric": info["metric"], "value": info["value"],
            "stderr": info["stderr"], "n": len(samples), "run": str(run.path),
            "ids": [r["id"] for r in samples], "per_doc": [r["score"] for r in samples],
            # beside the score on the pages: chance and the best constant on these questions
            "baselines": info.get("baselines"),
            "wall_s": round(time.time() - started, 1)}


def run(spec: dict[str, Any], out_path: Path) -> dict[str, Any]:
    prompts = spec["prompts"]
    engine = make_engine(spec)
    with PeakRSSSampler() as sampler:
        start = time.perf_counter()
        engine.load()
        load_s = time.perf_counter() - start
        timing = time_engine(engine, prompts, spec)
        if hasattr(engine, "switch_seconds"):  # with every adapter loaded, inside the peak
            switches = [t * 1e3 for t in engine.switch_seconds(spec["switches"])]
            timing["adapters"] = {"n": len(spec["adapter_names"]),
                                  "active": spec["active_adapter"],
                                  # the adapter's cost per token follows what it adapts
                                  "target_modules": spec.get("active_modules"),
                                  "switch_ms": summarize(switches).as_dict(),
                                  "switch_ms_raw": switches}
            parts = getattr(engine, "switch_parts", None)
            if parts:  # what the total is made of, where the engine defers work to a token
                timing["adapters"]["switch_parts_ms"] = {
                    name.removesuffix("_s"): summarize([t * 1e3 for t in values]).as_dict()
                    for name, values in parts.items()}
            timing["adapters"].update(adapter_decode_measures(engine, prompts, spec))
    result = {"format": spec["format"], "engine": spec["engine"], "load_s": load_s,
              "weight_bytes": engine.weight_bytes(), "threads": engine.threads(), **timing,
              **({"bits_per_weight": engine.bits_per_weight()}
                 if hasattr(engine, "bits_per_weight") else {}),
              **({"kernel": engine.kernel} if getattr(engine, "kernel", None) else {}),
              "peak_rss_mb": sampler.peak_mb, "vm_hwm_mb": PeakRSSSampler.high_water_mb(),
              "peak_vram_mb": peak_vram_mb()}
    if spec["engine"].startswith("llama.cpp"):  # stock, or which of slmbench's patches ran
        from harness.models.llama_cpp_load import llama_cpp_record

        result["llama_cpp"] = {**llama_cpp_record(),
                               **({} if engine.mapped() else {"use_mmap": False})}
    del engine
    result["accuracy"] = score_accuracy(spec, out_path.parent / f"acc_{spec['format']}")
    write_json_atomic(out_path, result)
    return result


if __name__ == "__main__":
    from harness.quant.gptq import ensure_cpu_workers

    ensure_cpu_workers()  # before lm-eval or the engine imports gptqmodel
    run(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))
