"""``SLMBENCH_REQUIRE``: the skips a run is not allowed to take.

Tests of the GPU, vLLM, GPTQ and real-data paths skip where those are absent, so the default
suite passes on any machine. A run meant to exercise them (``scripts/gpu_all.sh``, CI with the
fetched data) lists them, ``SLMBENCH_REQUIRE=gpu,vllm,gptq,data``, and each matching skip
becomes a failure naming what was missing: a green run then means the path ran.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

REQUIRE_ENV = "SLMBENCH_REQUIRE"
KINDS = {
    "gpu": "a CUDA GPU and the libraries of its paths (bitsandbytes, pynvml)",
    "vllm": "vLLM",
    "gptq": "GPTQModel",
    "data": "the real benchmark data (SLMBENCH_DATA_DIR or ../shared/data)",
}


def required() -> set[str]:
    """The kinds named in ``SLMBENCH_REQUIRE``; an unknown name is a usage error."""
    raw = os.environ.get(REQUIRE_ENV, "")
    names = {part.strip().lower() for part in raw.split(",") if part.strip()}
    unknown = sorted(names - set(KINDS))
    if unknown:
        raise pytest.UsageError(f"{REQUIRE_ENV}={raw}: unknown requirement {unknown[0]!r} "
                                f"(known: {', '.join(KINDS)})")
    return names


def skip_unless(kind: str, available: bool, reason: str) -> None:
    """Skip with ``reason`` when not ``available``, or fail if ``kind`` is required.

    Works inside a test, a fixture or at module level (a required module-level miss is a
    collection error, which fails the run too).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown requirement kind {kind!r}")
    if available:
        return
    if kind in required():
        pytest.fail(f"{reason}; {REQUIRE_ENV} requires {kind} ({KINDS[kind]})", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def import_or_skip(module: str, kind: str) -> ModuleType:
    """``pytest.importorskip`` that fails instead when ``kind`` is required."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        skip_unless(kind, False, f"{module} is not importable ({err})")
        raise  # unreachable: skip_unless raised


def cuda_or_skip() -> None:
    import torch

    skip_unless("gpu", torch.cuda.is_available(), "needs CUDA")
