"""QLoRA on CUDA (4-bit NF4 base through bitsandbytes). Run: ``pytest -m gpu -s``."""

from __future__ import annotations

import json

import pytest
from require import cuda_or_skip, import_or_skip
from tiny_models import build_tiny_base

pytestmark = pytest.mark.gpu


def test_qlora_trains_a_tiny_adapter(tmp_path):
    cuda_or_skip()
    import_or_skip("bitsandbytes", "gpu")
    from harness.train.config import TrainConfig
    from harness.train.lora import LoraTrainer

    base_dir, _ = build_tiny_base(tmp_path / "base", hidden_size=64, init_range=0.3)
    data = tmp_path / "data" / "teletables"
    data.mkdir(parents=True)
    rows = [{"question": f"Row {i} says {'ABCD'[i % 4]}.", "choices": ["w", "x", "y", "z"],
             "answer": i % 4} for i in range(120)]
    (data / "teletables.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    cfg = TrainConfig(benchmarks=["teletables"], output_dir=str(tmp_path / "run"),
                      base_model=str(base_dir), data_dir=str(tmp_path / "data"), qlora=True,
                      max_steps=10, eval_every=5, lr=1e-2, chat_template=False, loss="answer")
    record = LoraTrainer(cfg).run()
    curve = record["train"]["val_curve"]
    print(f"\nQLoRA val loss {curve[0]['val_loss']} -> {record['train']['best_val_loss']}, "
          f"peak VRAM {record['train']['peak_vram_mb']:.0f} MB, energy {record['train']['energy']}")
    assert record["train"]["best_val_loss"] < curve[0]["val_loss"]
