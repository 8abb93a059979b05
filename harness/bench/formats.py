"""Deployment formats the bench compares, and how each one is produced and loaded.

A format name says engine and precision: ``fp32``/``fp16``/``bf16`` (transformers),
``gguf-f32``/``gguf-f16``/``gguf-q8_0``/``gguf-q5_k_m``/``gguf-q4_k_m``/``gguf-q4_0``
(llama.cpp; exported from the merged checkpoint, then quantized), ``gguf-shipped`` (the
embedded model's own Q4_1 file), ``gptq`` (GPTQModel 4-bit, CUDA) and ``vllm`` (CUDA).
Formats that cannot run on this machine are skipped with the reason, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

HF_DTYPES = ("fp32", "fp16", "bf16")
GGUF_TYPES = ("f32", "f16", "q8_0", "q5_k_m", "q4_k_m", "q4_0")


@dataclass(frozen=True)
class Format:
    name: str
    engine: str  # "transformers", "llama.cpp", "gptq", "vllm"
    precision: str
    needs_cuda: bool = False


def parse_format(name: str) -> Format:
    from harness.errors import SlmbenchError

    key = name.strip().lower()
    if key in HF_DTYPES:
        return Format(key, "transformers", key)
    if key == "gguf-shipped":
        return Format(key, "llama.cpp", "q4_1")
    if key.startswith("gguf-") and key[5:] in GGUF_TYPES:
        return Format(key, "llama.cpp", key[5:])
    if key == "gptq":
        return Format(key, "gptq", "int4", needs_cuda=True)
    if key == "vllm":
        return Format(key, "vllm", "bf16", needs_cuda=True)
    known = [*HF_DTYPES, *(f"gguf-{t}" for t in GGUF_TYPES), "gguf-shipped", "gptq", "vllm"]
    raise SlmbenchError(f"bench: unknown format {name!r} (known: {', '.join(known)})")


def skip_reason(fmt: Format, cuda: bool) -> str | None:
    """Why ``fmt`` cannot run here, or None."""
    if fmt.needs_cuda and not cuda:
        return f"{fmt.name} needs a CUDA GPU; none on this machine"
    return None
