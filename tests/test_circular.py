"""Circular and cloze variants, run through lm-eval for real with fake models of known answers.

A model that always gives one letter must land at chance on the mean over rotations and at 0
on strict accuracy; a model that knows every answer must score 1.0 on both. The perfect
model finds its letter by the gold option's TEXT (from the unrotated records), so it only
scores 1.0 if every rotation put the gold letter where its option went.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict

import pytest
from conftest import SHARED_DATA

from harness.scoring.circular import label_shifts, strict_accuracy
from harness.scoring.extract import LETTERS

DATA = SHARED_DATA
LIMIT = 12  # prompts: 3 questions of 4 options or labels rotations, a cut one for TeleQnA


def _records(bench: str) -> dict[str, dict]:
    """The unrotated test records of ``bench`` by id, loaded apart from the task under test."""
    from harness.data.source import load_splits

    return {r["id"]: r for r in load_splits(bench, data_dir=str(DATA))["test"]}


def _fake_lm(reply=None, score=None):
    """An lm-eval LM answering ``reply(prompt, doc)`` and scoring ``score(context, cont, doc)``."""
    from lm_eval.api.model import LM

    class FakeLM(LM):
        def generate_until(self, requests, disable_tqdm: bool = False):
            return [reply(r.args[0], r.doc) for r in requests]

        def loglikelihood(self, requests, disable_tqdm: bool = False):
            return [(score(r.args[0], r.args[1], r.doc), False) for r in requests]

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            raise NotImplementedError

    return FakeLM()


def _evaluate(lm, tasks: list[str], limit: int = LIMIT) -> dict:
    import lm_eval

    from harness.evaluation.run import register_components
    from harness.task_loader import task_manager

    register_components()
    return lm_eval.simple_evaluate(model=lm, tasks=tasks, limit=limit,
                                   task_manager=task_manager(str(DATA)), log_samples=True,
                                   bootstrap_iters=100)


@pytest.fixture(scope="module")
def gold():
    if not (DATA / "teleqna").is_dir():
        pytest.skip(f"{DATA} is absent")
    return {**_records("srsranbench"), **_records("teleqna"), **_records("three_gpp_tsg")}


CIRCULAR = ["srsranbench_circular", "teleqna_circular", "three_gpp_tsg_circular"]


def _knows_everything(gold):
    def reply(prompt: str, doc: dict) -> str:
        record = gold[doc["circular_id"]]
        if "labels" in record:
            return record["answer"]
        text = record["choices"][record["answer"]]
        letters = [LETTERS[i] for i in range(len(record["choices"]))
                   if f"\n{LETTERS[i]}. {text}\n" in prompt]
        assert len(letters) == 1, f"gold option {text!r} not listed once in {prompt!r}"
        return f"The answer is {letters[0]}."

    return reply


def _always_first(prompt: str, doc: dict) -> str:
    """Letter A for an MCQ; the first label listed for a label question."""
    listed = re.search(r"one label from: ([^,.]+)", prompt)
    return listed.group(1) if listed else "A"


def test_a_perfect_model_scores_one_on_strict_and_mean(gold):
    out = _evaluate(_fake_lm(reply=_knows_everything(gold)),
                    [*CIRCULAR, "teleqna_circular_maj4", "three_gpp_tsg_circular_maj4"])
    for task, result in out["results"].items():
        filt = "maj@4" if task.endswith("maj4") else "pass@1"
        assert result[f"circular_strict,{filt}"] == 1.0, task
        assert result[f"circular_mean,{filt}"] == 1.0, task
        assert result[f"unparsed,{filt}"] == 0.0, task


def test_a_constant_letter_scores_chance_on_mean_and_zero_on_strict(gold):
    from harness.evaluation.sample_rows import circular_scores, headline, sample_rows
    from harness.scoring import baselines

    out = _evaluate(_fake_lm(reply=_always_first),
                    [*CIRCULAR, "srsranbench_circular_maj4"])
    for task, result in out["results"].items():
        filt = "maj@4" if task.endswith("maj4") else "pass@1"
        samples = out["samples"][task]
        assert len(samples) == LIMIT
        by_question = defaultdict(list)
        for sample in samples:
            by_question[sample["doc"]["circular_id"]].append(sample)
        complete = [s for s in by_question.values() if len(s) == s[0]["doc"]["n_rotations"]]
        assert len(complete) >= 2, task
        if "three_gpp_tsg" in task:
            # The first listed label is right only in the rotation that lists the gold first.
            labels = sorted({r["answer"] for r in gold.values() if "labels" in r})
            expected = [labels.index(gold[s["doc"]["circular_id"]]["answer"])
                        == label_shifts(len(labels))[s["doc"]["rotation"]] for s in samples]
        else:
            # "A" is right in exactly one rotation of each question: the one whose shift
            # equals the original gold index.
            expected = [s["doc"]["rotation"] == gold[s["doc"]["circular_id"]]["answer"]
                        for s in samples]
            for rotations in complete:
                assert sum(s["circular_mean"] for s in rotations) == 1, task
        assert result[f"circular_mean,{filt}"] == pytest.approx(sum(expected) / len(expected))
        assert result[f"circular_strict,{filt}"] == 0.0, task
        # A custom aggregation gets no stderr from lm-eval; the mean keeps its own, and the
        # run store's headline still finds a value.
        assert result[f"circular_strict_stderr,{filt}"] == "N/A"
        assert isinstance(result[f"circular_mean_stderr,{filt}"], float)
        found = headline(result)
        assert found is not None and math.isfinite(found[1])
        metric, filt_name = found[0].split(",", 1)
        rows = sample_rows(samples, metric, filt_name)
        assert len({r["id"] for r in rows}) == LIMIT  # one record per rotation, ids unique
        # The run store scores whole questions: strict 0 over the complete ones, the mean
        # per question, and the constant-answer baselines at chance or below.
        scored = circular_scores(rows)
        assert scored["n"] == len(complete) and scored["strict"] == 0.0
        found = baselines.compute(rows)
        assert found.n == len(complete) and found.score == 0.0
        assert found.best_constant_score <= found.chance or "three_gpp_tsg" in task
        assert found.collapse is True
    srsran = out["results"]["srsranbench_circular"]["circular_mean,pass@1"]
    assert srsran == pytest.approx(0.25)  # 3 whole questions of 4 options: 1/k exactly


def test_rotations_move_the_gold_letter_with_its_option(gold):
    from harness.task_loader import load_task, task_manager

    manager = task_manager(str(DATA))
    for name in ("teleqna_circular", "srsranbench_circular"):
        docs = list(load_task(manager, name).test_docs())[:40]
        by_question = defaultdict(list)
        for doc in docs:
            by_question[doc["circular_id"]].append(doc)
        for cid, rotations in by_question.items():
            original = gold[cid]
            k = len(original["choices"])
            assert [d["rotation"] for d in rotations] == list(range(len(rotations)))
            assert all(d["n_rotations"] == k for d in rotations)
            for d in rotations:
                assert d["choices"][d["answer"]] == original["choices"][original["answer"]]
                assert d["choices"] == original["choices"][d["rotation"]:] + \
                    original["choices"][:d["rotation"]]
            if len(rotations) == k:  # the gold sits once in every position
                assert sorted(d["answer"] for d in rotations) == list(range(k))
    tsg = load_task(manager, "three_gpp_tsg_circular")
    docs = list(tsg.test_docs())[:8]
    firsts = []
    for doc in docs:
        prompt = tsg.doc_to_text(doc)
        in_text = re.search(r"\{'([^']+)'", prompt).group(1)
        appended = re.search(r"one label from: ([^,.]+)", prompt).group(1)
        assert in_text == appended == doc["labels"][0]  # both lists rotated alike
        assert doc["answer"] == gold[doc["circular_id"]]["answer"]
        firsts.append(appended)
    assert firsts[:4] == ["CT1", "RAN1", "RAN5", "SA3"] and firsts[4:] == firsts[:4]


def _favour(pick):
    def score(context: str, continuation: str, doc: dict) -> float:
        return 0.0 if continuation.strip() == pick(doc) else -5.0

    return score


CLOZE = ["teleqna_cloze", "srsranbench_cloze", "three_gpp_tsg_cloze"]


def test_cloze_shows_no_options_and_scores_option_texts(gold):
    def gold_text(doc):
        record = gold[doc["id"]]
        return record["answer"] if "labels" in record else record["choices"][record["answer"]]

    def first_option(doc):
        return (doc.get("labels") or doc["choices"])[0]

    knows = _evaluate(_fake_lm(score=_favour(gold_text)), CLOZE, limit=8)
    first = _evaluate(_fake_lm(score=_favour(first_option)), CLOZE, limit=8)
    for task in CLOZE:
        assert knows["results"][task]["acc,none"] == 1.0, task
        assert knows["results"][task]["acc_norm,none"] == 1.0, task
        samples = first["samples"][task]
        always_first = sum(
            (gold_text(s["doc"]) == first_option(s["doc"])) for s in samples) / len(samples)
        assert first["results"][task]["acc,none"] == pytest.approx(always_first), task
        for sample in samples:
            prompt = sample["arguments"][0][0]
            assert "\nA. " not in prompt and "one label from" not in prompt
            assert "'CT1', 'CT3'" not in prompt  # 3GPP-TSG: the instruction's list is gone


def test_strict_accuracy_leaves_out_a_question_cut_by_limit(caplog):
    items = [("q1", 4, 1)] * 4 + [("q2", 4, 1), ("q2", 4, 0), ("q2", 4, 1), ("q2", 4, 1)] + \
        [("q3", 4, 1)] * 2
    assert strict_accuracy(items) == 0.5
    assert "1 question(s)" in caplog.text
    assert math.isnan(strict_accuracy([("q1", 4, 1)]))
