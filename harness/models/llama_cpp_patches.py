"""Which of slmbench's llama.cpp patches the loaded library carries, and which are switched on.

Why: ``patches/llama.cpp`` changes how llama.cpp computes a LoRA (at decode no node of its own,
riding on the base matmul; in prompts on an x86 CPU with AVX2 one fused node instead of four) and
what an adapter switch costs (the compute reservation is kept), and on AMX hosts which
weights run on AMX's tiles (Q5_0 widened exactly to Q8_0; f16 split into bf16 pairs), and
which attention kernel a short prompt takes (the tiled one, as long prompts do). A
number measured with them is not stock llama.cpp's, so every record that times llama.cpp
says which library it loaded and which patches were on. A patched library is built by
``scripts/build_llama_cpp_lora_patches.sh`` and loaded with ``LLAMA_CPP_LIB_PATH``; each patch
is switched on per process by its environment variable, which a stock library ignores. Two
more patches in the set are always on: ``amx-tilecfg.patch``, a fix, lets llama.cpp's AMX
kernels run where a GCC 12 build of stock llama.cpp dies in them (see :mod:`llama_cpp_load`),
so on such a host a patched library runs quantized models with AMX and a stock one without;
records say which (``extra_bufts``); ``flash-attn-vectors.patch`` speeds up long prompts'
attention and changes no result, as does the half of ``flash-attn-short-prompts.patch`` that is
always on (a query tile computes its own rows only, not its padding); the library's version
hash says they are there.
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

# patch name: (the C symbol only a library with that patch exports, the variable that opts in)
# (the amx_ patches' symbols are libggml-cpu's, found through the libllama that loads it)
PATCHES = {"lora_fused": ("llama_lora_fused_enabled", "LLAMA_LORA_FUSED"),
           "lora_keep_reserve": ("llama_lora_keep_reserve_enabled", "LLAMA_LORA_KEEP_RESERVE"),
           "amx_q5_0": ("ggml_cpu_amx_q5_0_enabled", "LLAMA_AMX_Q5_0"),
           "amx_f16": ("ggml_cpu_amx_f16_enabled", "LLAMA_AMX_F16"),
           "fa_tiled_short": ("ggml_cpu_fa_tiled_short_enabled", "LLAMA_FA_TILED_SHORT")}
# the lora_fused patch's cap on its kernels' instruction set (a test's knob): another
# measurement, where it is set
FUSED_OPTIONS = ("LLAMA_LORA_FUSED_ISA",)
# what each changes, for the pages that show a patched number (true of every version of the
# patch, hence the version named where they differ)
WHAT_THEY_CHANGE = {
    "lora_fused": "each adapted matrix's update rides on its base matmul at decode (no graph "
                  "node of its own) and is one fused node in prompts on an x86 CPU with "
                  "AVX-512 (or AVX2, from version -f71b41a18106), where stock llama.cpp builds "
                  "four nodes",
    "lora_keep_reserve": "a switch between adapters of one layout keeps the compute graph's "
                         "reservation, which stock llama.cpp redoes at the next token",
    "amx_q5_0": "on an AMX host, Q5_0 weights (q4_k_m's fallback for rows that are not a "
                "multiple of 256) are held in AMX's buffer widened exactly to Q8_0 and run on "
                "its int8 tiles (34 bytes per 32 values instead of 22), where stock llama.cpp "
                "leaves them to its AVX2 kernels",
    "amx_f16": "on an AMX host, a prompt's f16 matmuls run on AMX's bf16 tiles, each weight "
               "split exactly into two bf16 and each activation into two (to 16 bits, where "
               "stock rounds it to f16's 11), three products accumulated in fp32, where stock "
               "llama.cpp runs AMX's fp32 FMA kernel",
    "fa_tiled_short": "flash attention over a batch of 2 to 63 tokens (a short prompt, or what "
                      "the prompt cache leaves of one) runs llama.cpp's tiled kernel with Q in "
                      "fp32, as 64 or more do, where stock llama.cpp runs its one-row kernel "
                      "with Q rounded to f16; a prompt's logits then no longer depend on how "
                      "the cache split it",
}


def llama_cpp_build() -> dict:
    """The library this process loaded, and each patch it carries with whether it is on.

    A patch the library lacks is left out, so ``{"patches": {}}`` is stock llama.cpp. Asking
    the library (not reading the variable) is what makes the answer true: the patch reads its
    variable itself, and a stock library ignores it.
    """
    import llama_cpp.llama_cpp as bindings

    patches = {}
    for name, (symbol, env) in PATCHES.items():
        if hasattr(bindings._lib, symbol):
            enabled = getattr(bindings._lib, symbol)
            enabled.argtypes, enabled.restype = [], ctypes.c_bool
            patches[name] = bool(enabled())
        elif _opted_in(env):
            log.warning("llama-cpp: %s is set, but the loaded libllama has no %s patch (build "
                        "it with scripts/build_llama_cpp_lora_patches.sh and point "
                        "LLAMA_CPP_LIB_PATH at it); stock llama.cpp runs", env, name)
    return {"lib_path": os.environ.get("LLAMA_CPP_LIB_PATH") or None, "patches": patches}


def llama_cpp_env() -> dict[str, str]:
    """The variables that pick the library and its patches, as this process has them set.

    Part of what a measurement is: a bench resumed under other ones must measure anew.
    """
    return _set_among(("LLAMA_CPP_LIB_PATH", *(env for _, env in PATCHES.values()),
                       *FUSED_OPTIONS))


def fused_options() -> dict[str, str]:
    """The lora_fused patch's kernel options (``FUSED_OPTIONS``) this process has set."""
    return _set_among(FUSED_OPTIONS)


def _set_among(names) -> dict[str, str]:
    return {name: os.environ[name] for name in names if os.environ.get(name)}


def _opted_in(env: str) -> bool:
    value = os.environ.get(env, "").strip()
    return value not in ("", "0")


def patches_on(build: dict | None) -> list[str]:
    """The patches that were on in a record's ``llama_cpp`` entry (empty for stock or none)."""
    return sorted(name for name, on in ((build or {}).get("patches") or {}).items() if on)
