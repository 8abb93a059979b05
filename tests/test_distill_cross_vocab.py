"""Dual-Space KD between tiny models of different vocabularies (train/cross_vocab.py)."""

from __future__ import annotations

import json

import pytest
import torch
from tiny_models import (
    build_tiny_base,
    build_tiny_other_vocab_base,
    run_until_killed,
    write_tiny_teletables,
)

from harness.errors import SlmbenchError
from harness.train.cross_vocab import CrossModelAttention
from harness.train.distill import DistillConfig, DistillTrainer
from harness.train.lora import BEST, CHECKPOINT, RECORD


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A student on the embedded tokenizer; a teacher with a BPE vocabulary of its own."""
    root = tmp_path_factory.mktemp("cross_vocab")
    student, _ = build_tiny_base(root / "student", hidden_size=64, init_range=0.3)
    data = write_tiny_teletables(root / "data", rows=160)
    texts = [line for line in (data / "teletables" / "teletables.jsonl").read_text().splitlines()]
    teacher = build_tiny_other_vocab_base(root / "teacher", texts)
    return student, teacher, data


def _config(pair, out, **overrides) -> DistillConfig:
    student, teacher, data = pair
    values = dict(benchmarks=["teletables"], output_dir=str(out), base_model=str(student),
                  teacher=str(teacher), data_dir=str(data), rank=8, alpha=16, lr=1e-2,
                  max_steps=12, batch_size=8, eval_every=4, max_val_examples=24, patience=10,
                  loss="answer", chat_template=False, kd_weight=1.0, temperature=1.0,
                  cross_vocab="dskd")
    values.update(overrides)
    return DistillConfig(**values)


def test_the_pair_really_has_two_vocabularies(pair):
    from transformers import AutoTokenizer

    student, teacher, _ = pair
    a, b = AutoTokenizer.from_pretrained(student), AutoTokenizer.from_pretrained(teacher)
    text = "Row 7 says D."
    assert len(a) != len(b)
    assert a.tokenize(text) != b.tokenize(text)


def test_dskd_trains_the_student_in_both_spaces(pair, tmp_path):
    record = DistillTrainer(_config(pair, tmp_path / "run")).run()
    curve = record["train"]["val_curve"]
    first, last = curve[0], curve[-1]
    # In the teacher's space the target is fixed, so the student's KL to it must fall; the
    # projectors learn to align (their cross-entropy falls); in the student's space the target
    # is the projected teacher, which moves while the projectors learn, so only its presence is
    # checked. Through that projected teacher alone (kd_weight 1: no labels on the student)
    # the student's own loss on the answers falls.
    for key in ("val_dskd_kd_teacher_space", "val_dskd_align_ce"):
        assert last[key] < 0.8 * first[key], (key, first[key], last[key])
    assert 0 < last["val_dskd_kd_student_space"] < float("inf")
    assert last["val_answer_loss"] < 0.8 * first["val_answer_loss"]
    saved = json.loads((tmp_path / "run" / RECORD).read_text())
    assert saved["run"]["config"]["cross_vocab"] == "dskd"
    # the product is the student's adapter alone: the projectors are not in it
    from safetensors.torch import load_file

    weights = load_file(tmp_path / "run" / BEST / "adapter_model.safetensors")
    assert weights and all("lora_" in k for k in weights)


def test_a_killed_dskd_run_resumes_bit_identically(pair, tmp_path):
    from safetensors.torch import load_file

    DistillTrainer(_config(pair, tmp_path / "straight", max_steps=8)).run()
    run_until_killed(DistillTrainer(_config(pair, tmp_path / "killed", max_steps=8)), at_step=5)
    DistillTrainer(_config(pair, tmp_path / "killed", max_steps=8)).run()
    a = load_file(tmp_path / "straight" / CHECKPOINT / "adapter_model.safetensors")
    b = load_file(tmp_path / "killed" / CHECKPOINT / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    pa = torch.load(tmp_path / "straight" / CHECKPOINT / "trainer_state.pt", weights_only=True)
    pb = torch.load(tmp_path / "killed" / CHECKPOINT / "trainer_state.pt", weights_only=True)
    assert all(torch.equal(pa["extra"][k], pb["extra"][k]) for k in pa["extra"])


def test_without_a_method_the_pair_is_refused_and_unknown_methods_too(pair, tmp_path):
    with pytest.raises(SlmbenchError, match="different vocabularies .* --cross-vocab dskd"):
        DistillTrainer(_config(pair, tmp_path / "run", cross_vocab=None)).run()
    assert not (tmp_path / "run" / CHECKPOINT).exists()
    with pytest.raises(SlmbenchError, match="--cross-vocab must be one of dskd, got 'uld'"):
        _config(pair, tmp_path / "other", cross_vocab="uld")


def test_alignment_ignores_teacher_padding_and_gradients_skip_the_teacher():
    torch.manual_seed(0)
    attention = CrossModelAttention(student_embed=8, teacher_embed=6, student_hidden=8,
                                    teacher_hidden=6)
    student_pairs, teacher_pairs = torch.randn(2, 5, 16), torch.randn(2, 7, 12)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False
    align = attention.alignment(student_pairs, teacher_pairs, mask)
    assert torch.allclose(align.sum(-1), torch.ones(2, 5))
    assert torch.all(align[1, :, 4:] == 0)
    # changing what sits under the padding changes nothing
    moved = teacher_pairs.clone()
    moved[1, 4:] = torch.randn(3, 12) * 100
    assert torch.allclose(attention.alignment(student_pairs, moved, mask), align)
