"""GGUF export and quantization: llama.cpp must compute what transformers computes.

Tiny random Llama / Qwen2 / Qwen3 models (with the embedded model's tokenizer) are exported,
loaded with llama-cpp-python and fed the same token ids as transformers. Norm weights and
biases are randomised, because at their init values (ones / zeros) a mis-mapped norm or a
dropped bias would not change the logits.

llama.cpp keeps its KV cache in F16 by default, which alone moves logits by ~1e-3; the
comparisons use an F32 cache so that the bounds measure the exported file, not the cache.
Random 49k-way logits have near ties (gaps of 1e-5 happen), so "top-1 agrees" accepts
llama.cpp's pick when transformers scores it within the same bound as its own top-1.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from logits import F32_CACHE, hf_logits, llama_cpp_logits

from harness.artefacts.gguf_header import read_gguf_summary
from harness.artefacts.lora_fold import fold_adapter_into
from harness.errors import SlmbenchError
from harness.quant.gguf_export import detect_pretokenizer, export_gguf
from harness.quant.quantize import quantize_gguf

llama_cpp = pytest.importorskip("llama_cpp")

PROMPTS = [
    "The quick brown fox jumps over the lazy dog.",
    "In 5G NR, the gNB schedules 273 PRBs at 30 kHz subcarrier spacing.",
    "Question: which layer handles HARQ?\nA) PDCP\nB) MAC\nC) RRC\nAnswer:",
]
CHAT = [{"role": "user", "content": "What does RSRP measure? Answer in one word."}]
# Max |logit error| accepted, with an F32 KV cache: F32 export is exact up to summation order
# (measured ~1e-5); F16 rounds every matrix entry (relative 2^-11).
BOUND = {"f32": 1e-3, "f16": 1e-1}


@functools.lru_cache(maxsize=1)
def _tokenizer():
    from transformers import AutoTokenizer

    from harness.artefacts.embedded import ensure_checkpoint

    return AutoTokenizer.from_pretrained(ensure_checkpoint())


def _prompt_ids() -> list[list[int]]:
    tok = _tokenizer()
    chat = tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    return [tok(p, add_special_tokens=False)["input_ids"] for p in [*PROMPTS, chat]]


def _save_tiny(folder: Path, arch: str, seed: int = 0, **overrides):
    """A 2-layer random model of ``arch`` with the embedded tokenizer, saved to ``folder``."""
    import transformers

    tok = _tokenizer()
    prefix = {"llama": "Llama", "qwen2": "Qwen2", "qwen3": "Qwen3"}[arch]
    config_cls = getattr(transformers, f"{prefix}Config")
    model_cls = getattr(transformers, f"{prefix}ForCausalLM")
    kwargs = dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=256, initializer_range=0.2, tie_word_embeddings=True,
                  bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    kwargs.update(overrides)
    torch.manual_seed(seed)
    model = model_cls(config_cls(**kwargs)).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name:
                param.copy_(1 + 0.3 * torch.randn_like(param))
            elif name.endswith(".bias"):
                param.copy_(0.3 * torch.randn_like(param))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return Path(folder), model


def _llama_logits(path: Path, ids_list, **kwargs) -> list[np.ndarray]:
    return llama_cpp_logits(path, ids_list, n_ctx=256, dtype=np.float32, **kwargs)


def _compare(hf: list[np.ndarray], ll: list[np.ndarray], bound: float) -> float:
    """Assert top-1 agreement (up to ties within ``bound``) and the error bound."""
    worst = 0.0
    for p, (a, b) in enumerate(zip(hf, ll, strict=True)):
        assert a.shape == b.shape
        assert np.isfinite(b).all()
        worst = max(worst, float(np.abs(a - b).max()))
        picks = b.argmax(axis=1)
        rows = np.arange(len(a))
        tied = a[rows, picks] >= a.max(axis=1) - bound
        assert tied.all(), f"prompt {p}: top-1 differs at positions {np.where(~tied)[0]}"
    assert worst < bound, f"max |logit error| {worst:.2e} >= {bound}"
    return worst


TINY_VARIANTS = {
    # GQA, tied embeddings, default RoPE: the embedded model's shape.
    "llama-gqa-tied": ("llama", {}),
    # Llama-3.1 RoPE (rope_freqs tensor), attention biases (permuted q/k biases), untied head.
    "llama-llama3rope-bias": ("llama", dict(
        num_key_value_heads=4, tie_word_embeddings=False, attention_bias=True,
        rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 64})),
    # q/k/v biases, untied head, NeoX RoPE (no permutation).
    "qwen2-bias-untied": ("qwen2", dict(tie_word_embeddings=False)),
    # q_norm / k_norm, head_dim independent of hidden_size / heads.
    "qwen3-qknorm": ("qwen3", dict(head_dim=32)),
}


@pytest.fixture(scope="module", params=list(TINY_VARIANTS))
def tiny(request, tmp_path_factory):
    arch, overrides = TINY_VARIANTS[request.param]
    folder, model = _save_tiny(tmp_path_factory.mktemp(request.param), arch, **overrides)
    return request.param, folder, model, hf_logits(model, _prompt_ids())


@pytest.mark.parametrize("dtype", ["f32", "f16"])
def test_export_matches_transformers(tiny, dtype, tmp_path):
    name, folder, _, hf = tiny
    out = export_gguf(folder, tmp_path / f"{name}.{dtype}.gguf", dtype=dtype)
    summary = read_gguf_summary(out)
    assert summary.file_type == dtype.upper()
    assert summary.architecture == name.split("-")[0]
    if dtype == "f16":
        # Norms and biases stay F32, as llama.cpp's converter keeps 1-D tensors.
        assert set(summary.tensor_types) == {"F16", "F32"}
    worst = _compare(hf, _llama_logits(out, _prompt_ids(), **F32_CACHE), BOUND[dtype])
    print(f"{name} {dtype}: max |logit error| {worst:.2e}")
    assert not list(tmp_path.glob(".*.tmp")), "temp file left behind"
    if dtype == "f32":
        # transformers 5 builds Qwen2Tokenizer (Qwen's split regex) in a qwen2/qwen3 folder
        # even with SmolLM's tokenizer.json; the GGUF must follow what transformers does.
        from transformers import AutoTokenizer

        _assert_same_tokens(out, AutoTokenizer.from_pretrained(folder))


def _assert_same_tokens(path: Path, tok) -> None:
    texts = [*PROMPTS, tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True),
             "  leading spaces, émigré naïveté, 12345678 and 3.14159\n\ttabs", "🦙 日本語"]
    llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    try:
        for text in texts:
            ours = llm.tokenize(text.encode(), add_bos=False, special=True)
            assert ours == tok(text, add_special_tokens=False)["input_ids"], text
    finally:
        llm.close()


def test_gguf_metadata_and_tokenization_match_hf(tmp_path):
    import gguf

    folder, _ = _save_tiny(tmp_path / "m", "llama")
    out = export_gguf(folder, tmp_path / "m.gguf", dtype="f32")
    reader = gguf.GGUFReader(str(out))
    field = {k: f.contents() for k, f in reader.fields.items()
             if not k.startswith("tokenizer.ggml.") or k.endswith(("_id", "pre", "token"))}
    tok = _tokenizer()
    assert field["tokenizer.ggml.pre"] == "smollm"
    assert field["tokenizer.ggml.bos_token_id"] == tok.bos_token_id
    assert field["tokenizer.ggml.eos_token_id"] == tok.eos_token_id
    assert field["tokenizer.ggml.padding_token_id"] == tok.pad_token_id
    assert field["tokenizer.ggml.add_bos_token"] is False  # SmolLM2 adds no BOS
    assert field["tokenizer.chat_template"] == tok.chat_template
    assert "output.weight" not in {t.name for t in reader.tensors}  # tied
    _assert_same_tokens(out, tok)


def test_unknown_pretokenizer_is_refused_unless_named(tmp_path):
    folder, _ = _save_tiny(tmp_path / "m", "llama", hidden_size=32)
    tok_file = folder / "tokenizer.json"
    data = json.loads(tok_file.read_text())
    data["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": True,
                             "trim_offsets": True, "use_regex": True}
    tok_file.write_text(json.dumps(data))
    with pytest.raises(SlmbenchError, match="unknown BPE pre-tokenizer.*pass pre="):
        export_gguf(folder, tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()
    out = export_gguf(folder, tmp_path / "x.gguf", pre="gpt-2")
    assert read_gguf_summary(out).architecture == "llama"


def test_pretokenizer_structural_fallback():
    class FakeTok:
        def encode(self, text):
            return [0]  # hash matches nothing

    def split(regex):
        return {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated"},
            {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}]}}

    from harness.quant.gguf_export import _LLAMA3_REGEX, _QWEN2_REGEX

    assert detect_pretokenizer(FakeTok(), split(_QWEN2_REGEX)) == "qwen2"
    assert detect_pretokenizer(FakeTok(), split(_LLAMA3_REGEX)) == "llama-bpe"
    assert detect_pretokenizer(FakeTok(), {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "use_regex": True}]}}) == "smollm"
    assert detect_pretokenizer(FakeTok(), split("\\s+")) is None
    assert detect_pretokenizer(_tokenizer(), None) == "smollm"  # by llama.cpp's hash


def test_unsupported_architecture(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"]}))
    with pytest.raises(SlmbenchError) as err:
        export_gguf(tmp_path, tmp_path / "x.gguf")
    message = str(err.value)
    assert "GPT2LMHeadModel" in message and "LlamaForCausalLM" in message
    assert "Qwen3ForCausalLM" in message and "\n" not in message
    with pytest.raises(SlmbenchError, match="config.json is missing"):
        export_gguf(tmp_path / "nowhere", tmp_path / "x.gguf")


def test_quantized_files_load_and_give_finite_logits(tmp_path):
    # Rows of 256 (hidden 256, ffn 512) so every matrix takes the real k-quant types; with
    # narrower rows llama.cpp would silently fall back to Q5_0/Q8_0 for Q4_K_M.
    folder, model = _save_tiny(tmp_path / "m", "llama", hidden_size=256, intermediate_size=512,
                               num_attention_heads=4, num_key_value_heads=2,
                               initializer_range=0.05)
    src = export_gguf(folder, tmp_path / "m.f16.gguf", dtype="f16")
    ids = _prompt_ids()[:2]
    hf = hf_logits(model, ids)
    sizes = {}
    for qtype, expect in [("q8_0", "Q8_0"), ("Q4_K_M", "Q4_K_M"), ("q4_0", "Q4_0")]:
        dst = quantize_gguf(src, tmp_path / f"m.{qtype.lower()}.gguf", qtype, nthread=2)
        summary = read_gguf_summary(dst)
        assert summary.file_type == expect
        assert summary.parameter_count == read_gguf_summary(src).parameter_count
        sizes[qtype] = summary.bits_per_weight
        if qtype == "Q4_K_M":
            assert "Q4_K" in summary.tensor_types, summary.tensor_types
        for a, b in zip(hf, _llama_logits(dst, ids), strict=True):
            assert np.isfinite(b).all()
            # Quantization noise, not a broken file: logits stay strongly correlated.
            assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9, qtype
    assert sizes["q8_0"] > sizes["Q4_K_M"] > sizes["q4_0"] > 4.0
    assert not list(tmp_path.glob(".*.tmp"))


def test_quantize_errors(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(SlmbenchError, match="bad.gguf"):
        read_gguf_summary(bad)
    with pytest.raises(SlmbenchError, match="bad.gguf"):
        quantize_gguf(bad, tmp_path / "out.gguf", "q4_0")
    with pytest.raises(SlmbenchError, match="unknown type 'q3_x'.*bad.gguf"):
        quantize_gguf(bad, tmp_path / "out.gguf", "q3_x")
    # A well-formed GGUF that llama.cpp refuses: quantize returns non-zero, no output is left.
    import gguf

    odd = tmp_path / "odd.gguf"
    writer = gguf.GGUFWriter(odd, "notanarch")
    writer.add_tensor("token_embd.weight", np.zeros((4, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(SlmbenchError, match="llama.cpp failed .*odd.gguf"):
        quantize_gguf(odd, tmp_path / "out.gguf", "q4_0")
    assert not (tmp_path / "out.gguf").exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_truncated_gguf_is_refused(tmp_path):
    folder, _ = _save_tiny(tmp_path / "m", "llama", hidden_size=32)
    good = export_gguf(folder, tmp_path / "m.gguf", dtype="f32")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(SlmbenchError, match="cut.gguf"):
        read_gguf_summary(cut)


def test_merge_adapter_then_export(tmp_path):
    from peft import PeftModel
    from tiny_models import build_tiny_base, build_tiny_lora
    from transformers import LlamaForCausalLM

    base, _ = build_tiny_base(tmp_path / "base", hidden_size=64, init_range=0.2)
    lora = build_tiny_lora(base, tmp_path / "lora", seed=1, rank=4,
                           modules=["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"])
    merged = fold_adapter_into(str(base), lora, tmp_path / "merged")
    ids = _prompt_ids()[:2]
    peft_model = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(base), str(lora))
    reference = hf_logits(peft_model.eval(), ids)
    plain = hf_logits(LlamaForCausalLM.from_pretrained(base).eval(), ids)
    lora_effect = max(np.abs(a - b).max() for a, b in zip(reference, plain, strict=True))
    assert lora_effect > 1e-2  # the LoRA really changes the model
    assert not list(merged.glob("adapter_*"))
    out = export_gguf(merged, tmp_path / "merged.gguf", dtype="f32")
    _compare(reference, _llama_logits(out, ids, **F32_CACHE), BOUND["f32"])

    with pytest.raises(SlmbenchError, match="exists and is not empty"):
        fold_adapter_into(str(base), lora, tmp_path / "merged")
    other, _ = build_tiny_base(tmp_path / "other", hidden_size=32)
    with pytest.raises(SlmbenchError, match="does not fit base.*has in_features="):
        fold_adapter_into(str(other), lora, tmp_path / "merged2")
    assert not (tmp_path / "merged2").exists()
    shutil.rmtree(tmp_path / "merged")


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["f32", "f16"])
def test_embedded_model_export(dtype, tmp_path):
    from transformers import AutoModelForCausalLM

    from harness.artefacts.embedded import ensure_checkpoint

    folder = ensure_checkpoint()
    tok = _tokenizer()
    texts = [
        "The capital of France is",
        "Question: What does LTE stand for?\nAnswer:",
        "def fibonacci(n):\n    ",
        tok.apply_chat_template([{"role": "user", "content": "What is 5G NR?"}],
                                tokenize=False, add_generation_prompt=True),
        "Water boils at 100 degrees Celsius at sea level because",
    ]
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    out = export_gguf(folder, tmp_path / f"smollm2.{dtype}.gguf", dtype=dtype)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    n_params = sum(p.numel() for p in model.parameters())  # tied embedding counted once
    assert read_gguf_summary(out).parameter_count == n_params
    hf = hf_logits(model, ids)
    ll = _llama_logits(out, ids, **F32_CACHE)
    strict = all((a.argmax(1) == b.argmax(1)).all() for a, b in zip(hf, ll, strict=True))
    worst = _compare(hf, ll, {"f32": 1e-2, "f16": 0.25}[dtype])
    n_pos = sum(len(i) for i in ids)
    # For information: llama.cpp's default F16 KV cache, as benchmarks run it.
    ll_default = _llama_logits(out, ids)
    agree = sum(int((a.argmax(1) == b.argmax(1)).sum()) for a, b in zip(hf, ll_default,
                                                                         strict=True))
    default_err = max(float(np.abs(a - b).max()) for a, b in zip(hf, ll_default, strict=True))
    print(f"\nembedded {dtype}: {n_pos} positions, strict top-1 agreement {strict}, "
          f"max |logit error| {worst:.3e} (F32 KV cache); default F16 KV cache: "
          f"top-1 {agree}/{n_pos}, max |logit error| {default_err:.3e}")
