"""Distillation on tiny models: the student moves toward its teacher; bad pairs are refused."""

from __future__ import annotations

import json

import pytest
import torch
from tiny_models import (
    assert_stopped_at_last_good,
    build_tiny_base,
    build_tiny_lora,
    run_until_killed,
    write_tiny_teletables,
)

from harness.errors import SlmbenchError
from harness.train.config import ALL_LINEAR
from harness.train.distill import DistillConfig, DistillTrainer
from harness.train.lora import CHECKPOINT, RECORD


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A student base, and a teacher: the same base with a random LoRA folded in."""
    root = tmp_path_factory.mktemp("distill")
    base_dir, _ = build_tiny_base(root / "base", hidden_size=64, init_range=0.3)
    teacher_adapter = build_tiny_lora(base_dir, root / "teacher_lora", seed=3, rank=8,
                                      modules=ALL_LINEAR)
    data = write_tiny_teletables(root / "data", rows=160)
    return base_dir, teacher_adapter, data


def _config(pair, out, **overrides) -> DistillConfig:
    base_dir, teacher_adapter, data = pair
    values = dict(benchmarks=["teletables"], output_dir=str(out), base_model=str(base_dir),
                  teacher=str(base_dir), teacher_adapter=str(teacher_adapter),
                  data_dir=str(data), rank=8, alpha=16, lr=1e-2, max_steps=12, batch_size=8,
                  eval_every=4, max_val_examples=24, patience=10, loss="answer",
                  chat_template=False, kd_weight=1.0, temperature=1.0)
    values.update(overrides)
    return DistillConfig(**values)


@pytest.mark.parametrize("kind", ["forward", "reverse", "skew"])
def test_student_moves_toward_its_teacher(pair, tmp_path, kind):
    record = DistillTrainer(_config(pair, tmp_path / kind, kd_loss=kind)).run()
    curve = [e["val_kl_to_teacher"] for e in record["train"]["val_curve"]]
    assert curve[0] > 0
    assert curve[-1] < 0.7 * curve[0], curve
    saved = json.loads((tmp_path / kind / RECORD).read_text())
    assert saved["run"]["config"]["kd_loss"] == kind
    assert saved["run"]["config"]["teacher_adapter"]


def test_a_killed_distillation_resumes_to_the_same_student(pair, tmp_path):
    from safetensors.torch import load_file

    DistillTrainer(_config(pair, tmp_path / "straight")).run()
    run_until_killed(DistillTrainer(_config(pair, tmp_path / "killed")), at_step=6)
    DistillTrainer(_config(pair, tmp_path / "killed")).run()
    a = load_file(tmp_path / "straight" / CHECKPOINT / "adapter_model.safetensors")
    b = load_file(tmp_path / "killed" / CHECKPOINT / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_teacher_with_another_vocabulary_is_refused_before_a_step(pair, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir, _, _ = pair
    other = tmp_path / "other_vocab"
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    tokenizer.add_tokens(["<cell_id>", "<pci>"])
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    model.resize_token_embeddings(len(tokenizer))
    model.save_pretrained(other)
    tokenizer.save_pretrained(other)
    cfg = _config(pair, tmp_path / "run", teacher=str(other), teacher_adapter=None)
    with pytest.raises(SlmbenchError, match="different vocabularies .* cross-vocabulary"):
        DistillTrainer(cfg).run()
    assert not (tmp_path / "run" / CHECKPOINT).exists()


def test_bad_settings_and_a_teacher_too_big_are_one_line_errors(pair, tmp_path, monkeypatch):
    with pytest.raises(SlmbenchError, match="--kd-loss must be one of forward, reverse, skew"):
        _config(pair, tmp_path / "a", kd_loss="jsd")
    with pytest.raises(SlmbenchError, match="--kd-weight must be in"):
        _config(pair, tmp_path / "b", kd_weight=1.5)
    monkeypatch.setattr("harness.train.distill._available_ram_bytes", lambda: 1024)
    with pytest.raises(SlmbenchError, match="needs .* GiB in fp32, 0.0 GiB is available"):
        DistillTrainer(_config(pair, tmp_path / "c", teacher_adapter=None)).run()


def test_cli_distills_into_a_layer_pruned_student(pair, tmp_path, monkeypatch):
    """`slmbench distill --student-layers` builds the student from the base, then trains it."""
    import os
    import subprocess
    import sys

    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    base_dir, teacher_adapter, data = pair
    deep = tmp_path / "deep"
    LlamaForCausalLM(LlamaConfig.from_pretrained(base_dir, num_hidden_layers=4)).save_pretrained(
        deep)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(deep)
    env = {**os.environ, "SLMBENCH_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "distill", "teletables", "--base-model", str(deep),
         "--student-layers", "2", "--teacher", str(deep), "--data-dir", str(data),
         "--output-dir", str(tmp_path / "run"), "--max-steps", "2", "--eval-every", "2",
         "--max-val-examples", "8", "--rank", "4", "--alpha", "8", "--no-chat-template",
         "--loss", "answer", "--kd-loss", "skew"],
        capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((tmp_path / "run" / RECORD).read_text())
    assert record["run"]["config"]["base_model"].endswith("deep-2layers")
    assert record["train"]["steps"] == 2
    assert "val_kl_to_teacher" in record["train"]["val_curve"][-1]


def test_a_teacher_gone_nan_stops_with_the_last_good_student(pair, tmp_path):
    class TeacherGoesNan(DistillTrainer):
        def _forward(self, model, batch, step):
            if step == 5:  # e.g. an overflowing teacher: every KD target is NaN from here
                self.teacher.get_output_embeddings().weight.data.fill_(float("nan"))
            return super()._forward(model, batch, step)

    assert_stopped_at_last_good(TeacherGoesNan(_config(pair, tmp_path / "run", max_steps=8)),
                                tmp_path / "run", bad_step=6, good_step=4)
