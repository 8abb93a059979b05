"""Tiny Llama backbones and LoRA adapters built inside the tests (seconds on a CPU).

They borrow the embedded model's tokenizer so prompts tokenize as in real runs.
"""

from __future__ import annotations

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
