"""The layer-pruned student: fewer layers, the same vocabulary, a working model."""

from __future__ import annotations

import json

import pytest
import torch
from tiny_models import build_tiny_base
from transformers import AutoModelForCausalLM, AutoTokenizer

from harness.errors import SlmbenchError
from harness.train.student import MARKER, build_pruned_student, kept_layers


def test_kept_layers_are_evenly_spaced_with_both_ends():
    assert kept_layers(30, 15) == [0, 2, 4, 6, 8, 10, 12, 14, 17, 19, 21, 23, 25, 27, 29]
    assert kept_layers(4, 2) == [0, 3] and kept_layers(4, 4) == [0, 1, 2, 3]
    with pytest.raises(SlmbenchError, match="--student-layers must be in 1..4"):
        kept_layers(4, 5)


def test_pruned_student_keeps_the_vocabulary_and_generates(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    base_dir, _ = build_tiny_base(tmp_path / "base", hidden_size=64)
    deep = LlamaForCausalLM(LlamaConfig.from_pretrained(base_dir, num_hidden_layers=4))
    deep.save_pretrained(tmp_path / "deep")
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(tmp_path / "deep")
    student_dir = build_pruned_student(tmp_path / "deep", tmp_path / "student", keep=2)
    assert json.loads((student_dir / MARKER).read_text())["kept"] == [0, 3]
    student = AutoModelForCausalLM.from_pretrained(student_dir)
    assert student.config.num_hidden_layers == 2
    assert student.config.vocab_size == deep.config.vocab_size
    # The kept layers are the source's own weights.
    torch.testing.assert_close(student.model.layers[1].mlp.up_proj.weight,
                               deep.model.layers[3].mlp.up_proj.weight)
    ids = torch.tensor([[1, 2, 3, 4]])
    out = student.generate(ids, max_new_tokens=3, do_sample=False)
    assert out.shape == (1, 7)
    assert build_pruned_student(tmp_path / "deep", student_dir, keep=2) == student_dir  # reused
