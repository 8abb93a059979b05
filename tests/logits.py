"""The same prompts' logits from transformers and from llama.cpp, for tests that compare them.

Exporters, quantizers and adapter converters are all checked the same way: evaluate the
prompts position by position on each side and compare the arrays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

F32_CACHE = {"type_k": 0, "type_v": 0}  # GGML_TYPE_F32: a KV cache that rounds nothing


def hf_logits(model, ids_list) -> list[np.ndarray]:
    """Every position's logits of each prompt (token ids) on a transformers model."""
    with torch.no_grad():
        return [model(torch.tensor([ids])).logits[0].float().numpy() for ids in ids_list]


def llama_scores(llm, ids, dtype=np.float32) -> np.ndarray:
    """Every position's logits of one prompt on an open llama.cpp model, from a clean cache."""
    llm.reset()
    llm.eval(ids)
    return np.array(llm.scores[: len(ids)], dtype=dtype)


def llama_cpp_logits(model: Path, ids_list, adapter: Path | None = None, n_ctx: int = 128,
                     dtype=np.float64, **kwargs) -> list[np.ndarray]:
    """``hf_logits`` on a GGUF, optionally with one LoRA GGUF adapter switched on."""
    from harness.models.llama_cpp_load import activate, load_adapters, open_llama

    # unprobed, as in a throwaway process, but with this host's verdict on AMX
    llm = open_llama(model, n_ctx=n_ctx, isolate=False, logits_all=True, n_threads=2,
                     verbose=False, **kwargs)
    try:
        if adapter is not None:
            activate(llm, load_adapters(llm, [adapter])[0])
        return [llama_scores(llm, ids, dtype) for ids in ids_list]
    finally:
        llm.close()
