"""The free-form telecom_support task: generated data, token F1, and its place in the store."""

from __future__ import annotations

import pytest

from harness.evaluation.sample_rows import headline
from harness.scoring.freeform import process_results_support
from harness.scoring.overlap import token_f1


def test_token_f1_against_hand_computed_values():
    assert token_f1("reset the APN settings", "Reset APN settings.") == 1.0  # articles, case
    # pred {restart, phone}, ref {restart, your, router}: p 1/2, r 1/3 -> F1 0.4
    assert token_f1("restart phone", "restart your router") == pytest.approx(0.4)
    assert token_f1("", "anything") == 0.0 and token_f1("", "") == 1.0
    scored = process_results_support({"answer": "a b"}, ["a b"])
    assert scored["token_f1"] == 1.0 and scored["exact_match"] == 1.0


def test_headline_falls_back_to_a_free_form_metric():
    assert headline({"alias": "telecom_support", "token_f1,none": 0.21,
                     "token_f1_stderr,none": 0.07}) == ("token_f1,none", 0.21, 0.07)
    # exact match still wins where a task has it, and "unparsed" is never a headline
    assert headline({"unparsed,pass@1": 0.1, "exact_match,pass@1": 0.3})[0] == \
        "exact_match,pass@1"
    # a free-form task's whole-answer exact match is not its headline: token F1 is
    assert headline({"exact_match,none": 0.0, "token_f1,none": 0.3, "bleu,none": 4.1})[0] == \
        "token_f1,none"


def test_support_data_is_generated_and_split_by_scenario():
    from harness.data.source import load_splits

    parts = load_splits("telecom_support")
    assert sum(len(p) for p in parts.values()) > 3000
    train = {r["scenario"] for r in parts["train"]}
    assert not train & {r["scenario"] for r in parts["test"]}
    doc = parts["test"][0]
    assert doc["question"] and doc["answer"] and doc["subject"]  # subject: the glossary term


def test_an_answer_opening_with_a_speaker_label_is_not_emptied():
    """lm-eval cuts a generation at the first stop string anywhere in it; a bare "Customer:"
    stop emptied every answer a small model began with that label (v1 of the task)."""
    from lm_eval.tasks._yaml_loader import load_yaml

    from harness.paths import tasks_dir

    config = load_yaml(str(tasks_dir() / "telecom_support" / "telecom_support.yaml"),
                       resolve_func=False)
    until = config["generation_kwargs"]["until"]
    generated = "Customer: thanks for waiting, reset the APN.\nCustomer: it works"
    for stop in until:  # what lm-eval's HFLM.generate_until does with `until`
        generated = generated.split(stop)[0]
    assert generated == "Customer: thanks for waiting, reset the APN."
    assert config["metadata"]["version"] == 3.0
    scored = process_results_support({"answer": "reset the APN"}, ["Agent: reset the APN"])
    assert scored["token_f1"] == 1.0 and scored["bleu"] == ("reset the APN", "reset the APN")
