"""The e-commerce intent benchmark: data through the task pipeline, macro-F1, breakdowns."""

from __future__ import annotations

import math

import pytest

from harness.scoring.intent import (
    intent_breakdown,
    macro_f1,
    macro_f1_agg,
    macro_f1_de_agg,
    per_label_f1,
    process_results_intent,
)


def test_macro_f1_against_hand_computed_values():
    pairs = [("a", "a"), ("a", "a"), ("b", "a"), ("b", "b"), ("a", "b"), ("c", "c")]
    table = per_label_f1(pairs)
    # a: tp 2, fp 1, fn 1 -> p 2/3, r 2/3; b: tp 1, fp 1, fn 1 -> 1/2; c: perfect.
    assert table["a"]["f1"] == pytest.approx(2 / 3)
    assert table["b"]["f1"] == pytest.approx(1 / 2)
    assert table["c"]["f1"] == 1.0
    assert macro_f1(pairs) == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)


def test_unparsed_answers_are_wrong_but_no_false_positive():
    pairs = [("[unparsed] no label", "a"), ("a", "a"), ("B", "b")]
    table = per_label_f1(pairs)
    assert table["a"]["recall"] == 0.5 and table["a"]["precision"] == 1.0
    assert table["b"]["f1"] == 1.0  # labels compare case-insensitively
    assert "[unparsed]" not in table


def test_language_aggregations_only_see_their_language():
    doc_de = {"answer": "refund_status", "subject": "de", "labels": ["refund_status", "x"]}
    doc_en = {"answer": "x", "subject": "en", "labels": ["refund_status", "x"]}
    items = [process_results_intent(doc_de, ["refund_status"])["macro_f1_de"],
             process_results_intent(doc_en, ["refund_status"])["macro_f1_en"]]
    assert macro_f1_de_agg(items) == 1.0
    assert macro_f1_agg(items) == pytest.approx(1 / 3)  # refund_status 2/3, x 0
    assert math.isnan(macro_f1_de_agg(items[1:]))  # no German question: not a zero


def test_breakdown_from_store_rows():
    rows = [{"parsed": ["order_status"], "target": "order_status", "subject": "en"},
            {"parsed": ["complaint"], "target": "order_status", "subject": "fr"},
            {"parsed": ["complaint"], "target": "complaint", "subject": "fr"}]
    scores = intent_breakdown(rows)
    assert scores["accuracy"] == pytest.approx(2 / 3)
    assert scores["per_language"]["en"] == {"n": 1, "macro_f1": 1.0, "accuracy": 1.0}
    assert scores["per_intent"]["complaint"]["precision"] == 0.5


def test_intent_task_docs_are_split_by_scenario_without_leaks():
    from harness.data.source import load_splits

    parts = load_splits("ecommerce_intent")
    scenarios = {name: {r["scenario"] for r in rows} for name, rows in parts.items()}
    assert not scenarios["train"] & scenarios["test"]
    assert not scenarios["train"] & scenarios["validation"]
    test = parts["test"]
    assert {r["subject"] for r in test} >= {"en", "es", "de", "fr"}
    assert len(test[0]["labels"]) >= 10 and all(r["answer"] in r["labels"] for r in test)
    # A limit takes a spread of languages, not one scenario's paraphrases.
    assert len({r["subject"] for r in test[:40]}) == 4


def test_intent_tasks_build_in_lm_eval():
    from harness.task_loader import load_task, task_manager

    for name in ("ecommerce_intent", "ecommerce_intent_maj4", "ecommerce_intent_mc",
                 "ecommerce_intent_seen"):
        task = load_task(task_manager(None), name)
        doc = next(iter(task.test_docs()))
        assert "Customer message:" in task.doc_to_text(doc)
