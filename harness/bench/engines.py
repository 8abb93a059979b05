"""Timed inference on each engine, with prefill and decode measured apart.

Each engine exposes the same three calls: ``load()``, ``tokenize(prompt)`` and
``timed_request(ids, gen_tokens)``. A request runs the prompt once (prefill, no prefix-cache
reuse: caches are reset first), then decodes exactly ``gen_tokens`` tokens greedily with EOS
ignored, so every format does the same work. Time to first token is prefill plus the first
sampled token; decode throughput counts the tokens after the first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class RequestTiming:
    prompt_tokens: int
    gen_tokens: int
    prefill_s: float
    ttft_s: float
    decode_s: float  # tokens 2..n
    total_s: float


class TransformersEngine:
    """transformers on CPU or CUDA in fp32 / fp16 / bf16, with a manual KV-cache decode loop."""

    def __init__(self, model_dir: str, dtype: str, device: str) -> None:
        self.model_dir, self.dtype, self.device = model_dir, dtype, device
        self.model = self.tokenizer = None

    def load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.dtype]
        self.model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=dtype)
        self.model.to(self.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)

    def tokenize(self, prompt: str) -> list[int]:
        return self.tokenizer(prompt, add_special_tokens=False)["input_ids"]

    def _sync(self) -> None:
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def timed_request(self, ids: list[int], gen_tokens: int) -> RequestTiming:
        import torch

        with torch.inference_mode():
            inputs = torch.tensor([ids], device=self.device)
            self._sync()
            start = time.perf_counter()
            out = self.model(input_ids=inputs, use_cache=True)
            self._sync()
            prefill = time.perf_counter() - start
            token = out.logits[:, -1].argmax(-1, keepdim=True)
            self._sync()
            first = time.perf_counter()
            past = out.past_key_values
            for _ in range(gen_tokens - 1):
                out = self.model(input_ids=token, past_key_values=past, use_cache=True)
                past = out.past_key_values
                token = out.logits[:, -1].argmax(-1, keepdim=True)
            self._sync()
            end = time.perf_counter()
        return RequestTiming(len(ids), gen_tokens, prefill, first - start, end - first,
                             end - start)

    def weight_bytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.model.parameters())

    def threads(self) -> dict[str, int]:
        import torch

        return {"decode": torch.get_num_threads(), "batch": torch.get_num_threads()}


class LlamaCppEngine:
    """llama.cpp in process through llama-cpp-python, greedy, prefix cache defeated by reset."""

    def __init__(self, gguf: str, n_threads: int | None = None, n_gpu_layers: int = 0,
                 n_ctx: int = 2048) -> None:
        self.gguf, self.n_threads, self.n_gpu_layers, self.n_ctx = (
            gguf, n_threads, n_gpu_layers, n_ctx)
        self.llm = None

    def load(self) -> None:
        from harness.models.llama_cpp_load import open_llama

        # The bench worker is a throwaway process already: no probe (it would be timed).
        self.llm = open_llama(self.gguf, n_ctx=self.n_ctx, isolate=False,
                              n_threads=self.n_threads, n_threads_batch=self.n_threads,
                              n_gpu_layers=self.n_gpu_layers, logits_all=False, verbose=False)

    def tokenize(self, prompt: str) -> list[int]:
        return self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def timed_request(self, ids: list[int], gen_tokens: int) -> RequestTiming:
        import numpy as np

        llm = self.llm
        llm.reset()  # no prefix-cache reuse between repetitions
        start = time.perf_counter()
        llm.eval(ids)
        prefill = time.perf_counter() - start
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        first = time.perf_counter()
        for _ in range(gen_tokens - 1):
            llm.eval([token])
            token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        end = time.perf_counter()
        return RequestTiming(len(ids), gen_tokens, prefill, first - start, end - first,
                             end - start)

    def weight_bytes(self) -> int:
        return Path(self.gguf).stat().st_size

    def threads(self) -> dict[str, int]:
        """Threads in use (the bench passes torch's count unless ``--threads`` is given).

        llama-cpp-python's own defaults decode on half the logical cores (it assumes SMT
        siblings), which on a 2-vCPU machine leaves a third of decode speed unused.
        """
        return {"decode": self.llm.n_threads, "batch": self.llm.n_threads_batch}
