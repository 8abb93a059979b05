"""The study's backbone families through every slmbench path, on tiny random models.

Users bring Llama-3.2, Qwen3 and EXAONE-4 backbones (and Gemma 3, Qwen2.5); slmbench had
only run on Llama. Each architecture here is built at 2 layers and hidden 64 with its real
config's features (``tiny_models.ARCH_FEATURES``), then:

- ``hf-peft`` routing must give the logits of lm-eval's ``hf`` with ``peft=``;
- LoRA training must lower the validation loss, and folding the adapter into the backbone must
  give the adapter's logits;
- GGUF export, llama.cpp quantization and slmbench's guarded llama.cpp load must give
  transformers' logits within a bound;
- the llama.cpp LoRA adapter converted from the peft adapter, on the backbone's GGUF, must give
  the GGUF of the folded checkpoint (``llama-cpp-peft``'s path);
- ``slmbench bench`` must produce a row for the HF engine and for a quantized GGUF.

Where an engine refuses an architecture's variant, the user gets one line naming the
architecture and the engine; those refusals are asserted at the end.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from logits import F32_CACHE, hf_logits, llama_cpp_logits, llama_scores
from tiny_models import ARCHS, build_tiny_arch, build_tiny_lora, write_tiny_teletables

from harness.errors import SlmbenchError
from harness.train.config import ALL_LINEAR

llama_cpp = pytest.importorskip("llama_cpp")

PROMPTS = ["The quick brown fox jumps over the lazy dog.",
           "Question: which layer handles HARQ?\nA) PDCP\nB) MAC\nC) RRC\nAnswer:"]
# Max |logit error| of an F32 GGUF (F32 KV cache) against transformers, measured on these
# models: ~1e-5 for the SiLU architectures. Gemma 3 measures ~2e-3, the size of ggml's
# F16-table GELU, against transformers' exact tanh GELU.
F32_BOUND = {"gemma3_text": 1e-2}
DEFAULT_F32_BOUND = 1e-3


@pytest.fixture(scope="module", params=ARCHS)
def backbone(request, tmp_path_factory):
    """(arch, folder, model) for one architecture, built once per module."""
    arch = request.param
    folder, model = build_tiny_arch(tmp_path_factory.mktemp(arch) / "base", arch)
    return arch, folder, model


def _token_ids(folder) -> list[list[int]]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    return [tok(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]


def _requests(task: str) -> list[Instance]:
    pairs = [(PROMPTS[1], " B"), ("The O-RAN E2 interface", " connects")]
    return [Instance("loglikelihood", {}, pair, i, (task, i, 1)) for i, pair in enumerate(pairs)]


def test_hf_peft_routing_equals_hf_with_peft(backbone, tmp_path):
    from harness.artefacts.zoo_manifest import (
        AdapterEntry,
        base_fingerprint,
        describe_weights,
        upsert_entry,
    )
    from harness.models.peft_router import RoutedPeftLM

    arch, base, model = backbone
    build_tiny_lora(base, tmp_path / "a", seed=1, rank=4, modules=ALL_LINEAR)
    sha, size = describe_weights(tmp_path / "a")
    manifest = tmp_path / "zoo.yaml"
    upsert_entry(manifest, AdapterEntry(
        name="a", task="task_a", path="a", base_model=str(base),
        base_fingerprint=base_fingerprint(model.config), sha256=sha, rank=4, alpha=8,
        target_modules=ALL_LINEAR, size_mb=size))
    routed = RoutedPeftLM(pretrained=str(base), adapters=str(manifest), device="cpu",
                          batch_size=2)
    reference = HFLM(pretrained=str(base), peft=str(tmp_path / "a"), device="cpu", batch_size=2)
    plain = HFLM(pretrained=str(base), device="cpu", batch_size=2)
    got = [ll for ll, _ in routed.loglikelihood(_requests("task_a") + _requests("other"))]
    want = [ll for ll, _ in reference.loglikelihood(_requests("task_a"))]
    base_ll = [ll for ll, _ in plain.loglikelihood(_requests("other"))]
    assert got == pytest.approx(want + base_ll, abs=1e-5), arch
    assert abs(got[0] - base_ll[0]) > 1e-3, "the adapter must change the scores"
    tokens = torch.tensor([_token_ids(base)[1]])
    with routed.using("a"), torch.no_grad():
        routed_logits = routed._model_call(tokens)
    with torch.no_grad():
        assert torch.equal(routed_logits, reference._model_call(tokens))


def test_training_lowers_the_loss_and_the_adapter_folds_in(backbone, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from harness.artefacts.lora_fold import fold_adapter_into
    from harness.train.config import TrainConfig
    from harness.train.lora import BEST, LoraTrainer

    arch, base, _ = backbone
    data = write_tiny_teletables(tmp_path / "data", rows=100)
    cfg = TrainConfig(benchmarks=["teletables"], output_dir=str(tmp_path / "run"),
                      base_model=str(base), data_dir=str(data), rank=4, alpha=8, lr=1e-2,
                      max_steps=8, batch_size=8, eval_every=4, max_val_examples=16,
                      patience=10, loss="answer", chat_template=False)
    record = LoraTrainer(cfg).run()
    curve = record["train"]["val_curve"]
    assert curve[0]["step"] == 0
    assert record["train"]["best_val_loss"] < 0.9 * curve[0]["val_loss"], (arch, curve)

    adapter = tmp_path / "run" / BEST
    merged = fold_adapter_into(str(base), adapter, tmp_path / "merged")
    ids = _token_ids(base)
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base),
                                           str(adapter)).eval()
    want = hf_logits(peft_model, ids)
    got = hf_logits(AutoModelForCausalLM.from_pretrained(merged).eval(), ids)
    plain = hf_logits(AutoModelForCausalLM.from_pretrained(base).eval(), ids)
    assert max(np.abs(w - p).max() for w, p in zip(want, plain, strict=True)) > 1e-2
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-4)


def test_gguf_export_quantize_and_load_match_transformers(backbone, tmp_path):
    from harness.artefacts.gguf_header import read_gguf_summary
    from harness.models.llama_cpp_load import open_llama
    from harness.quant.gguf_export import SUPPORTED_ARCHITECTURES, export_gguf
    from harness.quant.quantize import quantize_gguf

    arch, base, model = backbone
    ids = _token_ids(base)
    hf = hf_logits(model, ids)
    f32 = export_gguf(base, tmp_path / "m.f32.gguf", dtype="f32")
    assert read_gguf_summary(f32).architecture == SUPPORTED_ARCHITECTURES[
        model.config.architectures[0]]
    q8 = quantize_gguf(export_gguf(base, tmp_path / "m.f16.gguf", dtype="f16"),
                       tmp_path / "m.q8_0.gguf", "q8_0", nthread=2)
    assert read_gguf_summary(q8).file_type == "Q8_0"
    bound = F32_BOUND.get(arch, DEFAULT_F32_BOUND)
    for path, check in ((f32, "exact"), (q8, "close")):
        # open_llama: the guarded load users get (probed in a child process first).
        llm = open_llama(path, n_ctx=256, logits_all=True, n_threads=2, verbose=False,
                         **F32_CACHE)
        try:
            for want, prompt in zip(hf, ids, strict=True):
                got = llama_scores(llm, prompt)
                assert np.isfinite(got).all()
                if check == "exact":
                    assert np.abs(got - want).max() < bound, (arch, np.abs(got - want).max())
                    picks = got.argmax(axis=1)
                    assert (want[np.arange(len(want)), picks] >= want.max(axis=1) - bound).all()
                else:  # 8-bit weights: noise, not a different model
                    assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.99, arch
        finally:
            llm.close()


def test_llama_cpp_lora_adapter_computes_the_folded_model(backbone, tmp_path):
    """llama-cpp-peft's path: the backbone GGUF plus the converted adapter GGUF must compute
    the GGUF of the adapter folded into the backbone (F32 files, F32 KV cache)."""
    from harness.artefacts.lora_fold import fold_adapter_into
    from harness.quant.gguf_export import export_gguf
    from harness.quant.gguf_lora import convert_adapter, read_backbone

    arch, base, _ = backbone
    ids = _token_ids(base)
    adapter = build_tiny_lora(base, tmp_path / "adapter", seed=3, rank=4, modules=ALL_LINEAR)
    base_gguf = export_gguf(base, tmp_path / "base.gguf", dtype="f32")
    folded = export_gguf(fold_adapter_into(base, adapter, tmp_path / "folded"),
                         tmp_path / "folded.gguf", dtype="f32")
    lora = convert_adapter(adapter, read_backbone(base_gguf), tmp_path / "adapter.gguf")

    def logits(model, with_adapter: bool) -> list[np.ndarray]:
        return llama_cpp_logits(model, ids, lora if with_adapter else None, **F32_CACHE)

    routed, reference, plain = logits(base_gguf, True), logits(folded, False), logits(
        base_gguf, False)
    bound = F32_BOUND.get(arch, DEFAULT_F32_BOUND)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(routed, reference, strict=True))
    moved = max(float(np.abs(a - b).max()) for a, b in zip(plain, reference, strict=True))
    assert diff < bound, (arch, diff)
    assert moved > 10 * bound, (arch, moved)  # the adapter matters, so the check can fail


@pytest.mark.slow  # two worker processes per architecture: about a minute each on 2 cores
def test_bench_row(backbone, data_dir, tmp_path, monkeypatch):
    from harness.bench.runner import BenchConfig, run_bench

    arch, base, _ = backbone
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    cfg = BenchConfig(model=str(base), formats=["fp32", "gguf-q8_0"], task="teletables",
                      limit=2, data_dir=str(data_dir), prompts=1, gen_tokens=2, min_runs=2,
                      min_seconds=0, warmup=0, synthetic=None, chat_template=False,
                      output_dir=str(tmp_path / "runs"))
    results = run_bench(cfg)["results"]
    for name in ("fp32", "gguf-q8_0"):
        row = results[name]
        assert "skipped" not in row, (arch, name, row)
        assert row["requests"] >= 2 and row["decode_tok_s"]["p50"] > 0
        assert row["accuracy"]["n"] == 2


def _save_config(folder, arch: str, **overrides):
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(arch, **overrides)
    config.architectures = [AutoModelForCausalLM._model_mapping[type(config)].__name__]
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    return folder


@pytest.mark.parametrize(("arch", "overrides", "line"), [
    # EXAONE-4.0-32B: sliding-window layers with NoPE global layers.
    ("exaone4", {}, r"^gguf export: .*exaone4's hybrid sliding-window attention .* is not "
                    r"supported by slmbench's GGUF exporter for llama\.cpp"),
    # Gemma 2 style logit soft-capping: llama.cpp's gemma3 graph has none.
    ("gemma3_text", {"final_logit_softcapping": 30.0},
     r"^gguf export: .*gemma3 final_logit_softcapping is not supported by slmbench's GGUF "
     r"exporter for llama\.cpp"),
    ("gemma3_text", {"query_pre_attn_scalar": 144, "head_dim": 256},
     r"^gguf export: .*gemma3 query_pre_attn_scalar 144 != head_dim 256"),
])
def test_unsupported_variants_are_one_line(tmp_path, arch, overrides, line):
    from harness.quant.gguf_export import export_gguf

    folder = _save_config(tmp_path / arch, arch, **overrides)
    with pytest.raises(SlmbenchError, match=line) as err:
        export_gguf(folder, tmp_path / "x.gguf")
    assert "\n" not in str(err.value)
