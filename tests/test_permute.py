"""Option shuffling for adapter training: unbiased, faithful and a pure function of its key."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from conftest import SHARED_DATA

from harness.scoring.extract import LETTERS
from harness.train.config import TrainConfig
from harness.train.data import ExampleSet, load_sources
from harness.train.lora import config_hash
from harness.train.permute import permutation, permute_doc, reorder_embedded_lists

DOC = {"id": "q1", "question": "Which layer carries RRC?",
       "choices": ["PHY", "MAC", "RLC", "PDCP", "RRC"], "answer": 4}
TSG = ("Classify the text. You MUST select ONE working group name from this list: "
       "{'CT1', 'RAN1', 'SA2'}.\n\n###TEXT:\n{A (short) text, about paging.}")
LABEL_DOC = {"id": "t1", "question": TSG, "choices": [], "labels": ["CT1", "RAN1", "SA2"],
             "answer": "RAN1"}


def test_the_gold_option_keeps_its_text_and_visits_every_position():
    positions = Counter()
    for epoch in range(500):
        doc, done = permute_doc(DOC, 42, epoch, "srsranbench/q1")
        assert done == "permuted"
        assert doc["choices"][doc["answer"]] == "RRC"
        assert sorted(doc["choices"]) == sorted(DOC["choices"])
        positions[doc["answer"]] += 1
    assert set(positions) == set(range(5))
    assert all(60 <= n <= 140 for n in positions.values()), positions  # 100 expected each
    assert DOC["choices"][4] == "RRC" and DOC["answer"] == 4  # the input is left alone


def test_the_order_is_a_pure_function_of_seed_epoch_and_id():
    assert permute_doc(DOC, 42, 3, "x/q1") == permute_doc(dict(DOC), 42, 3, "x/q1")
    # Pinned: a resumed run must redraw what the interrupted one drew, in any process.
    assert permutation(42, 0, "srsranbench/q1", 5) == [4, 2, 3, 1, 0]
    orders = [tuple(permutation(42, e, "x/q1", 5)) for e in range(40)]
    assert len(set(orders)) > 25  # 120 orders; epochs do not repeat one
    same = sum(permutation(42, 0, f"x/q{i}", 5) == permutation(42, 1, f"x/q{i}", 5)
               for i in range(200))
    assert same < 10  # 1/120 expected
    assert ([permutation(7, 0, f"x/q{i}", 5) for i in range(20)]
            != [permutation(42, 0, f"x/q{i}", 5) for i in range(20)])


def test_options_about_other_options_stay_meaningful():
    above = {**DOC, "choices": ["PHY", "MAC", "RRC", "All of the above"], "answer": 3}
    for epoch in range(30):
        doc, done = permute_doc(above, 1, epoch, "x")
        assert done == "permuted" and doc["choices"][3] == "All of the above"
        assert doc["answer"] == 3
    named = {**DOC, "choices": ["PHY", "MAC", "Both option 1 and option 2"], "answer": 2}
    assert permute_doc(named, 1, 0, "x") == (named, "kept")
    letters = {**DOC, "choices": ["PHY", "MAC", "Both A and B", "RRC"], "answer": 2}
    assert permute_doc(letters, 1, 0, "x")[1] == "kept"
    split = {**DOC, "choices": ["Option 7-2x", "Option 8x", "RU", "DU"], "answer": 0}
    assert permute_doc(split, 1, 0, "x")[1] == "permuted"  # O-RAN split names, not references


def test_numeric_and_free_text_docs_are_untouched():
    number = {"id": "n", "question": "2 + 2?", "choices": [], "answer": 4.0}
    text = {"id": "f", "question": "Why?", "choices": [], "answer": "Because."}
    assert permute_doc(number, 1, 0, "x") == (number, "none")
    assert permute_doc(text, 1, 0, "x") == (text, "none")


def test_a_label_doc_reorders_its_embedded_list_and_keeps_its_answer():
    seen = set()
    for epoch in range(60):
        doc, done = permute_doc(LABEL_DOC, 42, epoch, "three_gpp_tsg/t1")
        assert done == "permuted" and doc["answer"] == "RAN1"
        listed = re.search(r"list: \{(.*?)\}", doc["question"]).group(1)
        assert [s.strip("'") for s in listed.split(", ")] == doc["labels"]
        assert doc["question"].endswith("{A (short) text, about paging.}")
        seen.add(tuple(doc["labels"]))
    assert len(seen) == 6
    other = "Pick one of [CT1, RAN1] or {'SA2', 'SA9'}."
    assert reorder_embedded_lists(other, ["CT1", "RAN1", "SA2"], ["SA2", "CT1", "RAN1"]) == other


def _real(name: str, **overrides) -> ExampleSet:
    if not (SHARED_DATA / name).is_dir():
        pytest.skip("../shared/data is absent")
    from transformers import AutoTokenizer

    from harness.artefacts.embedded import resolve_pretrained

    cfg = TrainConfig(benchmarks=[name], data_dir=str(SHARED_DATA), chat_template=False,
                      **overrides)
    tokenizer = AutoTokenizer.from_pretrained(resolve_pretrained("embedded"))
    return ExampleSet(cfg, tokenizer, load_sources(cfg, "train", None))


def _chi_square(counts: Counter, k: int) -> float:
    n = sum(counts.values())
    return sum((counts.get(LETTERS[i], 0) - n / k) ** 2 / (n / k) for i in range(k))


def test_srsranbench_training_targets_lose_their_position_skew():
    """75.8% of srsRANBench's train keys are A; after shuffling each letter gets about 1/4."""
    examples = _real("srsranbench")
    assert {len(s.doc["choices"]) for s in examples.sources} == {4}
    written = Counter(c for _, c in examples.pairs)
    assert written["A"] / len(examples) > 0.7  # the skew the adapter would otherwise learn
    assert _chi_square(written, 4) > 500
    for epoch in (0, 1):
        targets = Counter(c for _, c in examples.permuted_pairs(epoch))
        # 3 degrees of freedom: 16.3 is p = 0.001.
        assert _chi_square(targets, 4) < 16.3, targets
        assert all(abs(targets[x] / len(examples) - 0.25) < 0.05 for x in "ABCD")
    unshuffled = _real("srsranbench", permute_options=False)
    assert [c for _, c in unshuffled.permuted_pairs(0)] == [c for _, c in unshuffled.pairs]
    assert unshuffled.epoch(3) is unshuffled.base


def _without_lists(prompt: str) -> str:
    return re.sub(r"from this list: \{.*?\}", "", re.sub(r"one label from: .*\.", "", prompt))


def test_three_gpp_tsg_prompts_list_the_labels_in_the_new_order_twice():
    examples = _real("three_gpp_tsg", max_train_examples=40)
    before = examples.pairs
    after = examples.permuted_pairs(0)
    moved = 0
    for source, (old_prompt, old_target), (prompt, target) in zip(
            examples.sources, before, after, strict=True):
        assert target == old_target == source.doc["answer"]
        embedded = re.search(r"from this list: \{(.*?)\}", prompt).group(1)
        embedded = [s.strip("'") for s in embedded.split(", ")]
        reply = re.search(r"one label from: (.*)\.\nAnswer:", prompt).group(1).split(", ")
        assert embedded == reply and sorted(reply) == sorted(source.doc["labels"])
        assert _without_lists(prompt) == _without_lists(old_prompt)  # nothing else changed
        moved += reply != source.doc["labels"]
    assert moved == len(after)


def test_the_setting_is_hashed_only_where_it_shuffles_something():
    on = TrainConfig(benchmarks=["teleqna"])
    off = TrainConfig(benchmarks=["teleqna"], permute_options=False)
    assert on.permute_options and config_hash(on) != config_hash(off)
    numeric = [TrainConfig(benchmarks=["telemath"], permute_options=p) for p in (True, False)]
    assert not numeric[0].permuted_benchmarks()
    assert config_hash(numeric[0]) == config_hash(numeric[1])
    freeform = TrainConfig(benchmarks=["teleqna"], answer_format="freeform")
    assert not freeform.permutes("teleqna")
    assert on.permuted_benchmarks() == ["teleqna"]


def test_slmbench_train_can_turn_it_off():
    import argparse

    from harness.cli.train_flags import add_train_args, config_from_args

    parser = argparse.ArgumentParser()
    add_train_args(parser)
    assert "--no-permute-options" in parser.format_help()
    for flags, expected in (([], True), (["--no-permute-options"], False)):
        cfg = config_from_args(parser.parse_args(flags), ["srsranbench"], "out")
        assert cfg.permute_options is expected
