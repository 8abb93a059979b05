"""A tiny Llama and a learnable task: what the campaign and the tests run real commands on.

The killed-runs campaign must run ``slmbench lm-eval``, ``train`` and ``sweep`` dozens of
times on 2 cores, so it needs a backbone that loads and trains in seconds; the tests use the
same builders. The tiny model borrows the embedded tokenizer so prompts tokenize as in real
runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from harness.artefacts.embedded import ensure_checkpoint


def build_tiny_base(folder: Path, hidden_size: int = 32, seed: int = 0,
                    init_range: float = 0.02):
    """Save a randomly initialised 2-layer Llama (with tokenizer) into ``folder``.

    With the usual init (0.02) the tied output layer can barely move the logits, so a LoRA
    cannot learn much; training tests pass a larger ``init_range``.
    """
    tokenizer = AutoTokenizer.from_pretrained(ensure_checkpoint())
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden_size,
                         intermediate_size=2 * hidden_size, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, tie_word_embeddings=True,
                         initializer_range=init_range,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return Path(folder), config


def write_tiny_teletables(data_dir: Path, rows: int = 80) -> Path:
    """A learnable TeleTables data dir (the answer letter is in the question) for training."""
    folder = data_dir / "teletables"
    folder.mkdir(parents=True)
    lines = [json.dumps({"question": f"Row {i} says {'ABCD'[i % 4]}.",
                         "choices": ["w", "x", "y", "z"], "answer": i % 4})
             for i in range(rows)]
    (folder / "teletables.jsonl").write_text("\n".join(lines))
    return data_dir
