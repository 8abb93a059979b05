"""``llama-cpp-peft``: each task's requests get its adapter, as the folded GGUF of that adapter.

A tiny random Llama zoo (two adapters) is evaluated over one GGUF backbone and compared,
request by request, with ``llama-cpp`` on each adapter's folded GGUF and on the plain base.
The zoo checks (base, sha256) are hf-peft's and are tried once each here. The real-model
check (the embedded model's zoo against ``hf-peft`` on TeleQnA prompts) is marked slow.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from lm_eval.api.instance import Instance

from harness.artefacts.zoo_manifest import (
    WEIGHTS_FILE,
)
from harness.errors import SlmbenchError

llama_cpp = pytest.importorskip("llama_cpp")

MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PAIRS = [("Question: what is 5G NR?\nAnswer:", " B"), ("The O-RAN E2 interface", " is open")]
# |loglikelihood| difference accepted between base+adapter and the folded file: both run
# llama.cpp's default F16 KV cache, on slightly different keys and values.
TOL = 2e-2
ARGS = {"n_ctx": "128", "n_threads": "2", "seed": "7"}


def _requests(task: str, kind: str = "loglikelihood", gen: dict | None = None) -> list[Instance]:
    if kind == "generate_until":
        gen = gen or {"until": ["\n"], "max_gen_toks": 8, "do_sample": False}
        return [Instance(kind, {}, (ctx, dict(gen)), i, (task, i, 1))
                for i, (ctx, _) in enumerate(PAIRS)]
    return [Instance(kind, {}, pair, i, (task, i, 1)) for i, pair in enumerate(PAIRS)]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """(root, base GGUF, manifest, {name: folded GGUF}), with a private cache for the module."""
    from tiny_models import build_tiny_base, build_tiny_zoo

    from harness.artefacts.lora_fold import fold_adapter_into
    from harness.quant.gguf_export import export_gguf

    root = tmp_path_factory.mktemp("zoo")
    base_dir, config = build_tiny_base(root / "base", hidden_size=64, init_range=0.2)
    manifest = build_tiny_zoo(root, base_dir, config, MODULES)
    folded = {}
    for name in ("a", "b"):
        merged = fold_adapter_into(base_dir, root / name, root / f"folded-{name}")
        folded[name] = export_gguf(merged, root / f"folded-{name}.gguf", dtype="f32")
    base = export_gguf(base_dir, root / "base.gguf", dtype="f32")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLMBENCH_CACHE", str(root / "cache"))
        yield root, base, manifest, folded


@pytest.fixture(scope="module")
def routed(zoo):
    from harness.models.llama_cpp_peft import LlamaCppPeftLM

    _, base, manifest, _ = zoo
    return LlamaCppPeftLM(pretrained=str(base), adapters=str(manifest), **ARGS)


@pytest.fixture(scope="module")
def plain(zoo):
    """``llama-cpp`` on the base and on each folded GGUF: the references."""
    from harness.models.llama_cpp_lm import LlamaCppLM

    _, base, _, folded = zoo
    return {name: LlamaCppLM(pretrained=str(path), **ARGS)
            for name, path in [(None, base), *folded.items()]}


def test_each_task_runs_with_its_adapter(routed, plain):
    mixed = _requests("task_a") + _requests("task_b_seen") + _requests("other_task")
    got = [ll for ll, _ in routed.loglikelihood(mixed)]
    expect = [ll for ll, _ in plain["a"].loglikelihood(_requests("task_a"))
              + plain["b"].loglikelihood(_requests("task_b_seen"))
              + plain[None].loglikelihood(_requests("other_task"))]
    assert got == pytest.approx(expect, abs=TOL)
    # The adapters move the scores far more than the tolerance, so the check can fail.
    assert min(abs(got[0] - got[4]), abs(got[2] - got[4]), abs(got[0] - got[2])) > 10 * TOL
    # One switch per group, not per request: a (from the base), b, then the base again.
    assert len(routed.switch_seconds) <= 3


def test_greedy_generation_is_the_folded_models(routed, plain):
    got = routed.generate_until(_requests("task_b", "generate_until"))
    assert got == plain["b"].generate_until(_requests("task_b", "generate_until"))
    assert got != plain[None].generate_until(_requests("task_b", "generate_until"))


def test_sampling_is_seeded_per_request(zoo):
    """Maj@k: k repeats of one prompt draw k samples, reproducibly for a given seed."""
    from harness.models.llama_cpp_peft import LlamaCppPeftLM

    _, base, manifest, _ = zoo
    gen = {"until": ["\n"], "max_gen_toks": 6, "do_sample": True, "temperature": 1.0}
    repeats = [r for _ in range(4) for r in _requests("task_a", "generate_until", gen)[:1]]
    again = LlamaCppPeftLM(pretrained=str(base), adapters=str(manifest), **ARGS)
    first = again.generate_until(repeats)
    assert len(set(first)) > 1
    fresh = LlamaCppPeftLM(pretrained=str(base), adapters=str(manifest), **ARGS)
    assert fresh.generate_until(repeats) == first


def test_model_info_names_every_adapter(routed, zoo):
    info = routed.get_model_info()
    assert [a["name"] for a in info["adapters"]] == ["a", "b"]
    assert all(len(a["sha256"]) == 64 for a in info["adapters"])
    assert set(info["adapter_ggufs"]) == {"a", "b"}
    assert info["model_gguf"] == str(zoo[1])


def test_zoo_checks_are_hf_peft_s(zoo, tmp_path):
    from harness.models.llama_cpp_peft import LlamaCppPeftLM

    root, base, manifest, _ = zoo
    with pytest.raises(SlmbenchError, match="was trained on base .* loaded base is 'other'"):
        LlamaCppPeftLM(pretrained=str(base), adapters=str(manifest), base="other", **ARGS)
    copy = tmp_path / "zoo"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("base*", "folded*", "cache"))
    weights = copy / "a" / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(SlmbenchError, match="sha256 .* does not match"):
        LlamaCppPeftLM(pretrained=str(base), adapters=str(copy / "zoo.yaml"), **ARGS)
    with pytest.raises(SlmbenchError, match="needs adapters="):
        LlamaCppPeftLM(pretrained=str(base), **ARGS)


def test_registered_and_read_as_a_gguf_model():
    from lm_eval.api.registry import get_model

    from harness.models import GGUF, pretrained_format, register_models
    from harness.models.llama_cpp_peft import LlamaCppPeftLM

    register_models()
    assert get_model("llama-cpp-peft") is LlamaCppPeftLM
    assert pretrained_format("llama-cpp-peft") == GGUF


@pytest.mark.slow
def test_embedded_zoo_agrees_with_hf_peft_on_teleqna_prompts(tmp_path):
    """f16 GGUF of the embedded model + the zoo's teleqna adapter vs hf-peft, teacher-forced."""
    import torch
    from conftest import shared_data_or_skip

    from harness.artefacts.embedded import ensure_checkpoint
    from harness.models.llama_cpp_peft import LlamaCppPeftLM
    from harness.models.peft_router import RoutedPeftLM
    from harness.quant.gguf_export import export_gguf
    from harness.task_loader import load_task, task_manager

    task = load_task(task_manager(str(shared_data_or_skip())), "teleqna")
    hf = RoutedPeftLM(adapters="adapters_zoo/embedded.yaml", device="cpu", batch_size=1)
    tok = hf.tokenizer
    ids = [tok(tok.apply_chat_template([{"role": "user", "content": task.doc_to_text(d)}],
                                       tokenize=False, add_generation_prompt=True),
               add_special_tokens=False)["input_ids"] for d in list(task.test_docs())[:6]]
    with hf.using("teleqna"), torch.no_grad():
        want = [hf._model_call(torch.tensor([x]))[0].numpy() for x in ids]
    f16 = export_gguf(ensure_checkpoint(), tmp_path / "embedded.f16.gguf", dtype="f16")
    lm = LlamaCppPeftLM(pretrained=str(f16), adapters="adapters_zoo/embedded.yaml",
                        n_ctx="512", n_threads="2")
    got = []
    with lm.using("teleqna"):
        for x in ids:
            lm.llm.reset()
            lm.llm.eval(x)
            got.append(np.array(lm.llm.scores[: len(x)]))
    agree = np.concatenate([a.argmax(-1) == b.argmax(-1) for a, b in zip(want, got, strict=True)])
    # Measured: every position agrees and logits differ by at most 0.07.
    assert agree.mean() >= 0.98
    assert all(a[-1].argmax() == b[-1].argmax() for a, b in zip(want, got, strict=True))
