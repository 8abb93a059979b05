"""hf-peft routing: each task gets its own adapter's logits, identical to lm-eval's ``hf``."""

from __future__ import annotations

import shutil

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from tiny_models import build_tiny_base, build_tiny_lora

from harness.artefacts.zoo_manifest import (
    WEIGHTS_FILE,
    AdapterEntry,
    base_fingerprint,
    describe_weights,
    load_manifest,
    upsert_entry,
)
from harness.errors import SlmbenchError
from harness.models.peft_router import RoutedPeftLM

MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _entry(root, name, task, base_dir, config) -> AdapterEntry:
    sha, size = describe_weights(root / name)
    return AdapterEntry(name=name, task=task, path=name, base_model=str(base_dir),
                        base_fingerprint=base_fingerprint(config), sha256=sha, rank=4, alpha=8,
                        target_modules=MODULES, size_mb=size)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo")
    base_dir, config = build_tiny_base(root / "base")
    for name, seed in (("a", 1), ("b", 2)):
        build_tiny_lora(base_dir, root / name, seed=seed, rank=4, modules=MODULES)
    manifest = root / "zoo.yaml"
    upsert_entry(manifest, _entry(root, "a", "task_a", base_dir, config))
    upsert_entry(manifest, _entry(root, "b", "task_b", base_dir, config))
    return root, base_dir, manifest


def _requests(task: str, kind: str = "loglikelihood") -> list[Instance]:
    pairs = [("Question: what is 5G NR?\nAnswer:", " B"), ("The O-RAN E2 interface", " is")]
    if kind == "generate_until":
        return [Instance(kind, {}, (ctx, {"until": ["\n"], "max_gen_toks": 6,
                                           "do_sample": False}), i, (task, i, 1))
                for i, (ctx, _) in enumerate(pairs)]
    return [Instance(kind, {}, pair, i, (task, i, 1)) for i, pair in enumerate(pairs)]


def _hf(pretrained, **kwargs) -> HFLM:
    kwargs.setdefault("batch_size", 2)
    return HFLM(pretrained=str(pretrained), device="cpu", **kwargs)


@pytest.fixture(scope="module")
def routed(zoo):
    _, base_dir, manifest = zoo
    return RoutedPeftLM(pretrained=str(base_dir), adapters=str(manifest), device="cpu",
                        batch_size=2)


def test_each_task_gets_its_own_adapter(zoo, routed):
    root, base_dir, _ = zoo
    mixed = _requests("task_a") + _requests("task_b_seen") + _requests("other_task")
    got = routed.loglikelihood(mixed)
    expect = (_hf(base_dir, peft=str(root / "a")).loglikelihood(_requests("task_a"))
              + _hf(base_dir, peft=str(root / "b")).loglikelihood(_requests("task_b_seen"))
              + _hf(base_dir).loglikelihood(_requests("other_task")))
    assert [ll for ll, _ in got] == pytest.approx([ll for ll, _ in expect], abs=1e-5)
    # The adapters really differ, so the comparison above could fail.
    assert abs(got[0][0] - got[2][0]) > 1e-3 and abs(got[0][0] - got[4][0]) > 1e-3
    info = routed.get_model_info()
    assert info["adapter_switch_ms_max"] >= 0
    # Answering time per request type, for evaluation speed without load time.
    assert "loglikelihood" in info["request_seconds"]
    assert info["request_seconds"]["loglikelihood"] > 0
    assert info["request_counts"]["loglikelihood"] >= len(mixed)


def test_logits_match_hf_peft_and_merged_model(zoo, routed, tmp_path):
    root, base_dir, _ = zoo
    tokens = torch.tensor([[1, 17, 400, 2048, 9, 33]])
    with routed.using("a"), torch.no_grad():
        routed_logits = routed._model_call(tokens)
    reference = _hf(base_dir, peft=str(root / "a"))
    with torch.no_grad():
        peft_logits = reference._model_call(tokens)
    merged = reference.model.merge_and_unload()
    merged.save_pretrained(tmp_path / "merged")
    shutil.copy(base_dir / "tokenizer.json", tmp_path / "merged")
    shutil.copy(base_dir / "tokenizer_config.json", tmp_path / "merged")
    merged_lm = _hf(tmp_path / "merged")
    with torch.no_grad():
        merged_logits = merged_lm._model_call(tokens)
    assert torch.equal(routed_logits, peft_logits)
    torch.testing.assert_close(merged_logits, peft_logits, atol=1e-4, rtol=1e-4)
    reqs = _requests("task_a")
    assert [x for x, _ in routed.loglikelihood(reqs)] == pytest.approx(
        [x for x, _ in merged_lm.loglikelihood(reqs)], abs=1e-4)


def test_generation_is_routed(zoo, routed):
    root, base_dir, _ = zoo
    got = routed.generate_until(_requests("task_b", "generate_until"))
    expect = _hf(base_dir, peft=str(root / "b")).generate_until(
        _requests("task_b", "generate_until"))
    assert got == expect


def test_tampered_adapter_is_refused(zoo, tmp_path):
    root, base_dir, manifest = zoo
    copy = tmp_path / "zoo"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("base"))
    weights = copy / "a" / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(SlmbenchError, match="sha256 .* does not match"):
        RoutedPeftLM(pretrained=str(base_dir), adapters=str(copy / "zoo.yaml"), device="cpu")


def test_pickle_weights_are_refused(zoo, tmp_path):
    root, base_dir, _ = zoo
    copy = tmp_path / "zoo"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("base"))
    (copy / "b" / "adapter_model.bin").write_bytes(b"not loaded")
    with pytest.raises(SlmbenchError, match="pickle"):
        RoutedPeftLM(pretrained=str(base_dir), adapters=str(copy / "zoo.yaml"), device="cpu")


def test_adapter_for_another_base_is_refused(zoo, tmp_path):
    root, _, manifest = zoo
    other_dir, _ = build_tiny_base(tmp_path / "base", hidden_size=48)
    with pytest.raises(SlmbenchError, match="trained on base .* loaded base"):
        RoutedPeftLM(pretrained=str(other_dir), adapters=str(manifest), device="cpu")


def test_missing_manifest_and_bad_entries(tmp_path):
    with pytest.raises(SlmbenchError, match="does not exist"):
        load_manifest(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("adapters:\n  - name: x\n    colour: red\n")
    with pytest.raises(SlmbenchError, match="entry 0"):
        load_manifest(bad)
    # A damaged seal key is not "no seal": the file is refused, not vouched for.
    bad.write_text("adapters:\n  - name: x\nadapters_sha2u6: abc\n")
    with pytest.raises(SlmbenchError,
                       match=r"bad.yaml: unknown top-level key\(s\) \['adapters_sha2u6'\]"):
        load_manifest(bad)


def test_routes_default_to_the_benchmark_and_its_variants():
    entry = AdapterEntry(name="t", task="teleqna", path="t", base_model="embedded",
                         base_fingerprint="x", sha256="y", rank=16, alpha=32,
                         target_modules=MODULES, size_mb=1.0)
    assert entry.serves("teleqna") and entry.serves("teleqna_maj4_seen")
    assert not entry.serves("teleqna2") and not entry.serves("oranbench")


def test_shared_prefill_of_repeated_prompts_changes_nothing(zoo):
    """slm-hf prefills identical rows once; greedy output must equal plain ``hf``'s."""
    from harness.models.hf_lm import EmbeddedAwareHFLM

    _, base_dir, _ = zoo
    shared = EmbeddedAwareHFLM(pretrained=str(base_dir), device="cpu", batch_size=8)
    plain = _hf(base_dir, batch_size=8)
    contexts = ["Question: what is 5G NR?\nAnswer:", "The O-RAN E2 interface"]
    requests = [Instance("generate_until", {}, (contexts[i % 2], {
        "until": ["\n\n"], "max_gen_toks": 8, "do_sample": False}), i, ("t", i // 4, 4))
        for i in range(8)]
    calls = []
    original = type(shared.model).forward

    def counting(self, *args, **kwargs):
        calls.append(kwargs.get("input_ids", args[0] if args else None).shape)
        return original(self, *args, **kwargs)

    type(shared.model).forward = counting
    try:
        got = shared.generate_until(requests)
    finally:
        type(shared.model).forward = original
    assert got == plain.generate_until(requests)
    assert calls[0][0] == 2  # the prefix was computed for the 2 distinct prompts only


def test_committed_zoo_verifies_against_the_embedded_model():
    """The adapters shipped in adapters_zoo/ load: sha256, base model and safetensors check."""
    from transformers import AutoConfig

    from harness.artefacts.embedded import resolve_pretrained
    from harness.artefacts.zoo_manifest import verify_entry
    from harness.paths import REPO_ROOT

    path = REPO_ROOT / "adapters_zoo" / "embedded.yaml"
    if not path.is_file():
        pytest.skip("no committed zoo")
    manifest = load_manifest(path)
    pretrained = resolve_pretrained(manifest.base_model)
    config = AutoConfig.from_pretrained(pretrained)
    for entry in manifest.adapters:
        assert verify_entry(manifest, entry, pretrained, config).is_dir()
        assert entry.train_data_sha256 and entry.val_loss is not None and entry.test_metrics


def test_routing_follows_the_models_real_active_adapter(zoo, routed):
    """A caller switching the peft model behind our back must not make routing stale."""
    root, base_dir, _ = zoo
    routed._model.set_adapter("b")
    got = routed.loglikelihood(_requests("task_a"))
    expect = _hf(base_dir, peft=str(root / "a")).loglikelihood(_requests("task_a"))
    assert [x for x, _ in got] == pytest.approx([x for x, _ in expect], abs=1e-5)
