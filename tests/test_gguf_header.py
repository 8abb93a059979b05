"""One GGUF header parse per file version: a llama.cpp run asks the same file three questions,
and the parse must not stay resident beside the model it describes."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import gguf
import numpy as np

from harness.artefacts import gguf_header
from harness.artefacts.gguf_header import read_gguf_name, read_gguf_summary


def _write(path: Path, name: str, rows: int = 4) -> None:
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_context_length(64)
    writer.add_tensor("token_embd.weight", np.ones((rows, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_a_file_is_parsed_once_and_again_when_it_is_replaced(tmp_path, monkeypatch):
    parsed: list[str] = []
    readers: list[weakref.ref] = []
    real = gguf.GGUFReader

    def counting(path, *args, **kwargs):
        parsed.append(path)
        reader = real(path, *args, **kwargs)
        readers.append(weakref.ref(reader))
        return reader

    monkeypatch.setattr(gguf, "GGUFReader", counting)
    gguf_header._cached_header.cache_clear()
    path = tmp_path / "m.gguf"
    _write(path, "first")
    assert read_gguf_name(path) == "first"
    summary = read_gguf_summary(path)
    assert (summary.architecture, summary.context_length, summary.parameter_count) == (
        "llama", 64, 32)
    assert len(parsed) == 1
    gc.collect()
    # the reader's memory map and parsed arrays are gone: a bench's peak RSS must not count them
    assert readers[0]() is None

    staged = tmp_path / "m.gguf.tmp"  # replaced the way slmbench writes files: a rename
    _write(staged, "second", rows=2)
    staged.replace(path)
    assert read_gguf_name(path) == "second"
    assert read_gguf_summary(path).parameter_count == 16
    assert len(parsed) == 2
