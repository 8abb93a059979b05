"""GPTQ calibration text and group size: the parts of harness.quant.gptq that need no GPTQModel."""

from __future__ import annotations

from types import SimpleNamespace

from harness.quant.gptq import calibration_texts, group_size_for


def test_group_size_tiles_every_layer_width():
    # SmolLM2-135M: hidden 576, MLP 1536 -> 128 does not tile 576, 64 does.
    assert group_size_for(SimpleNamespace(hidden_size=576, intermediate_size=1536)) == 64
    assert group_size_for(SimpleNamespace(hidden_size=2048, intermediate_size=8192)) == 128
    assert group_size_for(SimpleNamespace(hidden_size=960, intermediate_size=2560)) == 64


def test_calibration_comes_from_the_train_split_with_answers(data_dir):
    from transformers import AutoTokenizer

    from harness.artefacts.embedded import ensure_checkpoint
    from harness.task_loader import load_task, task_manager

    tokenizer = AutoTokenizer.from_pretrained(ensure_checkpoint())
    texts = calibration_texts("teletables", str(data_dir), tokenizer, n=6)
    assert len(texts) == 6 and texts == calibration_texts("teletables", str(data_dir),
                                                           tokenizer, n=6)
    task = load_task(task_manager(str(data_dir)), "teletables")
    test_questions = {task.doc_to_text(d) for d in task.test_docs()}
    train_questions = {task.doc_to_text(d) for d in task.training_docs()}
    for text in texts:
        assert "<|im_start|>assistant" in text  # rendered as the evaluation renders it
        assert any(q in text for q in train_questions)
        assert not any(q in text for q in test_questions)
