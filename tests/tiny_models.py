"""Tiny Llama backbones and LoRA adapters built inside the tests (seconds on a CPU).

They borrow the embedded model's tokenizer so prompts tokenize as in real runs.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from harness.reliability.tiny_fixtures import build_tiny_base, write_tiny_teletables  # noqa: F401


def build_tiny_lora(base_dir: Path, folder: Path, seed: int, rank: int, modules: list[str]):
    """Save a LoRA adapter with random (non-zero) B matrices, so it changes the logits."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    model = LlamaForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=modules,
                        init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(model, config).save_pretrained(folder)
    return Path(folder)


def build_tiny_zoo(root: Path, base_dir: Path, config, modules: list[str],
                   adapters=(("a", "task_a", 1), ("b", "task_b", 2)), rank: int = 4) -> Path:
    """Random LoRA adapters (name, routed task, seed) in ``root`` and their zoo manifest."""
    from harness.artefacts.zoo_manifest import (
        AdapterEntry,
        base_fingerprint,
        describe_weights,
        upsert_entry,
    )

    manifest = root / "zoo.yaml"
    for name, task, seed in adapters:
        build_tiny_lora(base_dir, root / name, seed=seed, rank=rank, modules=modules)
        sha, size = describe_weights(root / name)
        upsert_entry(manifest, AdapterEntry(
            name=name, task=task, path=name, base_model=str(base_dir),
            base_fingerprint=base_fingerprint(config), sha256=sha, rank=rank, alpha=2 * rank,
            target_modules=modules, size_mb=size))
    return manifest


def run_until_killed(trainer, at_step: int) -> None:
    """Run ``trainer`` and interrupt it right after optimizer step ``at_step`` (a kill)."""
    import pytest

    def kill(step: int) -> None:
        if step == at_step:
            raise KeyboardInterrupt

    trainer.on_step = kill
    with pytest.raises(KeyboardInterrupt):
        trainer.run()


def build_tiny_other_vocab_base(folder: Path, texts: list[str], hidden_size: int = 48,
                                seed: int = 1):
    """A tiny Llama whose tokenizer is a byte-level BPE trained here on ``texts``.

    Its vocabulary and token boundaries differ from the embedded model's, which is what a
    cross-vocabulary distillation test needs.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="</s>",
                                        pad_token="<pad>")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden_size,
                         intermediate_size=2 * hidden_size, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, tie_word_embeddings=False,
                         initializer_range=0.3, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return Path(folder)


def assert_stopped_at_last_good(trainer, out: Path, bad_step: int, good_step: int) -> None:
    """``trainer.run()`` stops on a NaN loss at ``bad_step``; the last good state survives."""
    import pytest
    from safetensors.torch import load_file

    from harness.errors import SlmbenchError
    from harness.train.lora import BEST, CHECKPOINT, RECORD

    with pytest.raises(SlmbenchError,
                       match=f"nan at step {bad_step}; stopped. Last good checkpoint"):
        trainer.run()
    record = json.loads((out / RECORD).read_text())
    assert record["train"]["stopped"] == f"non-finite loss at step {bad_step}"
    state = torch.load(out / CHECKPOINT / "trainer_state.pt", weights_only=True)
    assert json.loads(state["state_json"])["step"] == good_step
    weights = load_file(out / BEST / "adapter_model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())


# The study's backbone families, at 2 layers and hidden 64 but with each real config's
# features: what differs between architectures is where an engine breaks, not the sizes.
ARCH_FEATURES = {
    # Llama-3.2-1B: tied embeddings, GQA, Llama-3 RoPE scaling.
    "llama": dict(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                  max_position_embeddings=131072,
                  rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0,
                                   "factor": 32.0, "low_freq_factor": 1.0,
                                   "high_freq_factor": 4.0,
                                   "original_max_position_embeddings": 8192}),
    # Qwen3-0.6B: q/k RMSNorm, head_dim independent of hidden / heads, tied embeddings.
    "qwen3": dict(num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                  tie_word_embeddings=True, rope_parameters={"rope_type": "default",
                                                             "rope_theta": 1000000.0}),
    # EXAONE-4.0-1.2B: q/k norm, norms after attention and MLP (no pre-norm), Llama-3 RoPE,
    # global attention in every layer (the 1.2B has no sliding window), tied embeddings.
    "exaone4": dict(num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                    tie_word_embeddings=True, sliding_window=None,
                    max_position_embeddings=65536,
                    layer_types=["full_attention", "full_attention"],
                    rope_parameters={"rope_type": "llama3", "rope_theta": 1000000.0,
                                     "factor": 16.0, "low_freq_factor": 1.0,
                                     "high_freq_factor": 4.0,
                                     "original_max_position_embeddings": 8192}),
    # gemma-3-1b: MQA, q/k norm, pre- and post-norms, GELU, scaled embeddings, sliding-window
    # layers with their own RoPE base, query scaling by query_pre_attn_scalar.
    "gemma3_text": dict(num_attention_heads=4, num_key_value_heads=1, head_dim=32,
                        query_pre_attn_scalar=32, sliding_window=512,
                        tie_word_embeddings=True),
    # Qwen2.5-0.5B: q/k/v biases, tied embeddings.
    "qwen2": dict(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                  rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
}
ARCHS = list(ARCH_FEATURES)


_TINY_CORPUS = [
    "The quick brown fox jumps over the lazy dog. In 5G NR, the gNB schedules 273 PRBs at "
    "30 kHz subcarrier spacing. Question: which layer handles HARQ? A) PDCP B) MAC C) RRC "
    "D) PHY Answer: B. The O-RAN E2 interface connects the near-RT RIC to E2 nodes.",
    *[f"Row {i} says {'ABCD'[i % 4]}. Choices: w x y z. Answer: {'ABCD'[i % 4]}"
      for i in range(40)],
]


@functools.lru_cache(maxsize=1)
def tiny_tokenizer():
    """A 400-token byte-level BPE with SmolLM's pre-tokenizer (digits split, GPT-2 regex).

    The embedded tokenizer's 49k-way output layer would be 40x the rest of a hidden-64
    model; this one keeps every matrix tiny. Its pre-tokenizer is one llama.cpp knows
    (``smollm``), so the GGUF path tokenizes as transformers does.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(_TINY_CORPUS, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")


def build_tiny_arch(folder: Path, arch: str, seed: int = 0, init_range: float = 0.2,
                    hidden_size: int = 64):
    """Save a random 2-layer ``arch`` model (``ARCH_FEATURES``) with :func:`tiny_tokenizer`.

    Norm weights and biases are randomised: at their init values (ones / zeros, or zeros for
    Gemma's ``1 + w`` norms) a mis-mapped norm or a dropped bias would not change any logit,
    and the engine comparisons could not catch it.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = tiny_tokenizer()
    features = {"max_position_embeddings": 512, "num_hidden_layers": 2, **ARCH_FEATURES[arch]}
    special = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                   pad_token_id=tokenizer.pad_token_id)
    # The vocabulary is the tokenizer transformers builds in this folder: transformers 5 makes
    # a Qwen2Tokenizer in a qwen2/qwen3 folder, which adds <|endoftext|> after the 400 tokens.
    # No spare rows: lm-eval's ``hf`` with ``peft=`` resizes the embeddings to the tokenizer
    # (``hf`` alone does not), which would change every log-softmax.
    AutoConfig.for_model(arch, **features, **special).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    n_vocab = len(AutoTokenizer.from_pretrained(folder))
    config = AutoConfig.for_model(
        arch, vocab_size=n_vocab, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        initializer_range=init_range, **special, **features)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name:
                param.copy_(param.mean() + 0.3 * torch.randn_like(param))
            elif name.endswith(".bias"):
                param.copy_(0.3 * torch.randn_like(param))
    model.save_pretrained(folder)
    return Path(folder), model
