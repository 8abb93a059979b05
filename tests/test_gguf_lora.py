"""peft LoRA -> llama.cpp LoRA GGUF: the backbone plus the adapter must compute the folded model.

A tiny random Llama (GQA, so k_proj's permutation runs per KV head) gets a LoRA with random A
and B on all seven projections. Its base is exported to GGUF, the adapter converted, and
llama.cpp's logits with the adapter active are compared with the GGUF of the folded
checkpoint (``fold_adapter_into``) and with transformers + peft. Comparisons use an F32 KV
cache, so the bounds measure the files, not the cache.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from logits import F32_CACHE, llama_cpp_logits

from harness.artefacts.lora_fold import fold_adapter_into
from harness.errors import SlmbenchError
from harness.hashing import sha256_file
from harness.quant import gguf_lora
from harness.quant.gguf_export import export_gguf
from harness.quant.gguf_lora import cached_adapter_gguf, convert_adapter, read_backbone

llama_cpp = pytest.importorskip("llama_cpp")

MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PROMPTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Question: which layer handles HARQ?\nA) PDCP\nB) MAC\nC) RRC\nAnswer:",
]
# Max |logit error| of base+adapter against the folded model. F32: summation order only.
# F16: the folded file rounds W + BA to F16 where the adapter path rounds W alone, and
# llama.cpp multiplies F16 weights with F16-rounded activations (measured 0.024).
BOUND = {"f32": 1e-3, "f16": 5e-2}


def _tokenizer():
    from transformers import AutoTokenizer

    from harness.artefacts.embedded import ensure_checkpoint

    return AutoTokenizer.from_pretrained(ensure_checkpoint())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(root, base dir, adapter dir, token ids of the prompts)."""
    from tiny_models import build_tiny_base, build_tiny_lora

    root = tmp_path_factory.mktemp("lora")
    base_dir, _ = build_tiny_base(root / "base", hidden_size=64, init_range=0.2)
    adapter = build_tiny_lora(base_dir, root / "adapter", seed=3, rank=4, modules=MODULES)
    tok = _tokenizer()
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]
    return root, base_dir, adapter, ids


@pytest.fixture(scope="module")
def ggufs(tiny):
    """dtype -> (base GGUF, folded GGUF), exported once for the module."""
    root, base_dir, adapter, _ = tiny
    folded = fold_adapter_into(base_dir, adapter, root / "folded")
    return {dtype: (export_gguf(base_dir, root / f"base.{dtype}.gguf", dtype=dtype),
                    export_gguf(folded, root / f"folded.{dtype}.gguf", dtype=dtype))
            for dtype in BOUND}


def _logits(model: Path, ids_list, adapter: Path | None = None) -> list[np.ndarray]:
    return llama_cpp_logits(model, ids_list, adapter, **F32_CACHE)


def _max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("dtype", ["f32", "f16"])
def test_base_plus_adapter_computes_the_folded_model(tiny, ggufs, dtype, tmp_path):
    _, _, adapter, ids = tiny
    base, merged = ggufs[dtype]
    lora = convert_adapter(adapter, read_backbone(base), tmp_path / "adapter.gguf")

    routed = _logits(base, ids, adapter=lora)
    reference = _logits(merged, ids)
    plain = _logits(base, ids)
    assert _max_diff(routed, reference) < BOUND[dtype]
    # The adapter moves the logits far more than the bound, so the check above can fail.
    assert _max_diff(plain, reference) > 20 * BOUND[dtype]


def test_top1_agrees_with_transformers_and_peft(tiny, ggufs, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    _, base_dir, adapter, ids = tiny
    base = ggufs["f32"][0]
    lora = convert_adapter(adapter, read_backbone(base), tmp_path / "adapter.gguf")
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir),
                                      str(adapter)).eval()
    with torch.no_grad():
        expect = [model(torch.tensor([x])).logits[0].double().numpy() for x in ids]
    got = _logits(base, ids, adapter=lora)
    for want, have in zip(expect, got, strict=True):
        assert (want.argmax(-1) == have.argmax(-1)).all()
    assert _max_diff(expect, got) < BOUND["f32"]


def test_q_and_k_need_the_row_permutation(tiny, ggufs, tmp_path, monkeypatch):
    """Without permuting lora_b of q/k the file loads and computes something else."""
    _, _, adapter, ids = tiny
    base, merged = ggufs["f32"]
    monkeypatch.setattr(gguf_lora, "_permuted_b", lambda b, module, backbone: b)
    wrong = convert_adapter(adapter, read_backbone(base), tmp_path / "wrong.gguf")
    assert _max_diff(_logits(base, ids, adapter=wrong), _logits(merged, ids)) > 10 * BOUND["f32"]


def test_file_is_llama_cpps_adapter_format(tiny, ggufs, tmp_path):
    import gguf

    _, _, adapter, _ = tiny
    base = ggufs["f16"][0]
    out = convert_adapter(adapter, read_backbone(base), tmp_path / "adapter.gguf")
    reader = gguf.GGUFReader(str(out))
    fields = {k: reader.fields[k].contents() for k in
              ("general.type", "general.architecture", "adapter.type", "adapter.lora.alpha")}
    assert fields == {"general.type": "adapter", "general.architecture": "llama",
                      "adapter.type": "lora", "adapter.lora.alpha": 8.0}
    names = {t.name: tuple(int(d) for d in reversed(list(t.shape))) for t in reader.tensors}
    assert len(names) == 2 * 2 * len(MODULES)
    assert names["blk.0.attn_q.weight.lora_a"] == (4, 64)
    assert names["blk.1.attn_k.weight.lora_b"] == (32, 4)  # 2 KV heads x head_dim 16
    assert names["blk.1.ffn_down.weight.lora_a"] == (4, 128)


def test_cached_once_per_adapter_hash(tiny, ggufs, tmp_path, monkeypatch):
    _, _, adapter, _ = tiny
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    backbone = read_backbone(ggufs["f16"][0])
    sha = sha256_file(adapter / "adapter_model.safetensors")
    first = cached_adapter_gguf(adapter, sha, backbone)
    stamp = first.stat().st_mtime_ns
    calls = []
    monkeypatch.setattr(gguf_lora, "convert_adapter", lambda *a: calls.append(a))
    assert cached_adapter_gguf(adapter, sha, backbone) == first
    assert first.stat().st_mtime_ns == stamp and not calls
    assert first.parent == tmp_path / "cache" / "gguf_lora"
    assert first.name.startswith(sha[:16])


def test_other_shapes_are_refused_in_one_line(tiny, tmp_path):
    from tiny_models import build_tiny_base

    _, _, adapter, _ = tiny
    other, _ = build_tiny_base(tmp_path / "wide", hidden_size=96)
    backbone = read_backbone(export_gguf(other, tmp_path / "wide.gguf", dtype="f16"))
    with pytest.raises(SlmbenchError) as err:
        cached_adapter_gguf(adapter, "0" * 64, backbone)
    message = str(err.value)
    assert "\n" not in message
    assert "does not fit" in message and "128 -> 64 features" in message and "192 -> 96" in message


def test_unsupported_adapters_are_refused(tiny, ggufs, tmp_path):
    _, _, adapter, _ = tiny
    backbone = read_backbone(ggufs["f16"][0])
    dora = tmp_path / "dora"
    shutil.copytree(adapter, dora)
    config = json.loads((dora / "adapter_config.json").read_text())
    (dora / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(SlmbenchError, match="DoRA"):
        convert_adapter(dora, backbone, tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()


def test_an_adapter_gguf_is_not_a_backbone(tiny, ggufs, tmp_path):
    _, _, adapter, _ = tiny
    base = ggufs["f16"][0]
    out = convert_adapter(adapter, read_backbone(base), tmp_path / "adapter.gguf")
    with pytest.raises(SlmbenchError, match="is a LoRA adapter GGUF, not a model"):
        read_backbone(out)


def test_a_foreign_adapter_fails_in_the_child_not_here(tiny, ggufs, tmp_path):
    """llama.cpp refuses an adapter of another architecture; the probe reports it in one line."""
    from harness.models.llama_cpp_load import open_llama

    _, _, adapter, _ = tiny
    base = ggufs["f16"][0]
    good = convert_adapter(adapter, read_backbone(base), tmp_path / "adapter.gguf")
    foreign = tmp_path / "foreign.gguf"
    gguf_lora._write(foreign, "qwen2", 8.0, [(t.name, np.array(t.data)) for t in
                                             __import__("gguf").GGUFReader(str(good)).tensors],
                     name="foreign")
    with pytest.raises(SlmbenchError) as err:
        open_llama(base, n_ctx=64, n_threads=1, verbose=False, adapters=[foreign])
    message = str(err.value)
    assert "\n" not in message and "foreign.gguf" in message
    llm = open_llama(base, n_ctx=64, n_threads=1, verbose=False, adapters=[good])
    llm.close()
