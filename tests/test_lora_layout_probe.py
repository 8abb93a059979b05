"""``scripts/lora_layout_probe.py``'s variants: each writes the layout its name promises.

The timings are the probe's own business (a benchmark that prints numbers); what can be
wrong cheaply is a variant that silently is another one: a padded rank that changes B·A, a
cut that keeps the full rank, an alpha that no longer keeps alpha / rank.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "lora_layout_probe.py"


@pytest.fixture(scope="module")
def probe():
    spec = importlib.util.spec_from_file_location("lora_layout_probe", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _adapter(path: Path, a: np.ndarray, b: np.ndarray, alpha: float) -> None:
    from harness.quant.gguf_export import write_gguf_atomic

    def fill(writer) -> None:
        writer.add_type("adapter")
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", alpha)
        writer.add_tensor("blk.0.attn_q.weight.lora_a", a.astype(np.float16))
        writer.add_tensor("blk.0.attn_q.weight.lora_b", b.astype(np.float16))

    write_gguf_atomic(path, "llama", fill)


def _read(path: Path) -> tuple[float, dict[str, np.ndarray]]:
    import gguf

    reader = gguf.GGUFReader(path)
    alpha = float(reader.fields["adapter.lora.alpha"].parts[-1][0])
    return alpha, {t.name.rsplit(".", 1)[1]: np.array(t.data, dtype=np.float32)
                   for t in reader.tensors}


@pytest.mark.parametrize("rank", [32, 2])
def test_padding_keeps_the_update_and_cutting_keeps_the_first_components(tmp_path, probe, rank):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 32)).astype(np.float16)  # (rank, in): lora_a as numpy reads it
    b = rng.standard_normal((16, 4)).astype(np.float16)  # (out, rank)
    source, out = tmp_path / "src.gguf", tmp_path / "out.gguf"
    _adapter(source, a, b, alpha=8.0)
    probe.write_variant(source, out, rank, "f16", "f16")
    alpha, got = _read(out)
    assert alpha == 8.0 * rank / 4  # alpha / rank, llama.cpp's scale, is kept
    assert got["lora_a"].shape == (rank, 32) and got["lora_b"].shape == (16, rank)
    kept = min(rank, 4)
    np.testing.assert_array_equal(got["lora_a"][:kept], a[:kept].astype(np.float32))
    np.testing.assert_array_equal(got["lora_b"][:, :kept], b[:, :kept].astype(np.float32))
    if rank > 4:  # zero rows and columns: B·A, the update, unchanged
        assert not got["lora_a"][4:].any() and not got["lora_b"][:, 4:].any()
        np.testing.assert_allclose(got["lora_b"] @ got["lora_a"],
                                   b.astype(np.float32) @ a.astype(np.float32), rtol=1e-6)
