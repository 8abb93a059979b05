"""Circular evaluation (MMBench's CircularEval), wired into lm-eval through task hooks.

A small model fine-tuned on a few hundred MCQs learns which letter the key favours, and a
plain score cannot tell that from knowledge. Asking each question once per cyclic rotation
of its options moves the gold answer through every position, so a model that always gives
one letter is right in exactly one rotation of each question: chance on the mean over
rotations, 0 on strict accuracy (a question counts only if right in every rotation).

Hooks, named by ``harness/tasks/_templates/*circular*_yaml``:
- ``mcq_rotation_docs`` / ``label_rotation_docs``: ``process_docs``, one doc per
  (question, rotation), question-major so ``--limit`` takes whole questions first;
- ``process_results_mcq`` / ``process_results_label``: per doc, the extracted answer scored
  by ``harness.scoring.filters`` (no second extraction);
- ``strict_accuracy``: the aggregation that groups rotations by question.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

from harness.scoring.extract import is_unparsed
from harness.scoring.filters import is_correct

log = logging.getLogger(__name__)

# 3GPP-TSG has 16 labels and excerpts of up to 8k characters: 16 rotations would cost 16
# prompts per question. Four evenly spaced ones put every label in four different quarters
# of the list, which is what defeats a position preference (first or last listed); a
# preference for one *label* is no position effect and no rotation can remove it.
LABEL_ROTATIONS = 4

# The label list the 3GPP-TSG question text carries: {'CT1', 'CT3', ...}.
_LABEL_SET = re.compile(r"\{'[^'{}]+'(?:\s*,\s*'[^'{}]+')+\}")


def rotate(items: list[Any], shift: int) -> list[Any]:
    """``items`` cyclically shifted left: item ``shift`` comes first."""
    shift %= len(items)
    return items[shift:] + items[:shift]


def label_shifts(n_labels: int, rotations: int = LABEL_ROTATIONS) -> list[int]:
    """``rotations`` shifts spread evenly over ``n_labels`` positions (fewer if fewer labels)."""
    count = min(rotations, n_labels)
    return [j * n_labels // count for j in range(count)]


def _expanded(doc: dict[str, Any], rotation: int, n_rotations: int,
              **changes: Any) -> dict[str, Any]:
    return {**doc, **changes, "id": f"{doc['id']}#r{rotation}", "circular_id": doc["id"],
            "rotation": rotation, "n_rotations": n_rotations}


def mcq_rotations(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One doc per rotation of the options; the gold index moves with its option."""
    k = len(doc["choices"])
    for shift in range(k):
        yield _expanded(doc, shift, k, choices=rotate(list(doc["choices"]), shift),
                        answer=(int(doc["answer"]) - shift) % k)


def _rotate_label_set(question: str, rotation: int, n_rotations: int) -> str:
    """The question with its in-text label list rotated by the same fraction of its length."""
    found = _LABEL_SET.search(question)
    if not found:
        return question
    labels = re.findall(r"'([^']+)'", found.group(0))
    shift = rotation * len(labels) // n_rotations  # as label_shifts spaces them
    listed = "{" + ", ".join(f"'{label}'" for label in rotate(labels, shift)) + "}"
    return question[:found.start()] + listed + question[found.end():]


def label_rotations(doc: dict[str, Any],
                    rotations: int = LABEL_ROTATIONS) -> Iterator[dict[str, Any]]:
    """One doc per evenly spaced rotation of the label list; the gold label stays the same.

    The list is rotated both in the question text and in ``labels``, which ``label_prompt``
    appends.
    """
    labels = list(doc["labels"])
    shifts = label_shifts(len(labels), rotations)
    for rotation, shift in enumerate(shifts):
        yield _expanded(doc, rotation, len(shifts), labels=rotate(labels, shift),
                        question=_rotate_label_set(doc["question"], rotation, len(shifts)))


# lm-eval calls ``process_docs`` each time it reads a task's docs (four times a run); the
# expansion of a split is kept per (hook, dataset fingerprint), which names its content.
_EXPANDED: dict[tuple[str, str], Any] = {}


def _expand(dataset, rotations):
    import datasets

    key = (rotations.__name__, getattr(dataset, "_fingerprint", None))
    if key[1] is not None and key in _EXPANDED:
        return _EXPANDED[key]
    expanded = datasets.Dataset.from_list([r for doc in dataset for r in rotations(doc)])
    if key[1] is not None:
        if len(_EXPANDED) >= 32:  # a long sweep reads many splits; keep memory bounded
            _EXPANDED.clear()
        _EXPANDED[key] = expanded
    return expanded


def mcq_rotation_docs(dataset):
    """lm-eval ``process_docs``: every MCQ once per cyclic rotation of its options."""
    return _expand(dataset, mcq_rotations)


def label_rotation_docs(dataset):
    """lm-eval ``process_docs``: every label question once per ``LABEL_ROTATIONS`` rotation."""
    return _expand(dataset, label_rotations)


def _make_process_results(kind: str):
    def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
        predicted = results[0]
        correct = int(is_correct(kind, predicted, doc))
        return {
            "circular_strict": (doc["circular_id"], int(doc["n_rotations"]), correct),
            "circular_mean": correct,
            "unparsed": int(is_unparsed(predicted)),
        }

    process_results.__doc__ = (f"Score one rotation's filtered {kind} answer; strict gets "
                               "(question id, rotations, correct) to group by question.")
    return process_results


process_results_mcq = _make_process_results("mcq")
process_results_label = _make_process_results("label")


def strict_accuracy(items: list[tuple[str, int, int]]) -> float:
    """Share of questions right in every rotation, over the questions scored in full.

    ``--limit`` counts prompts, so it can cut the last question's rotations short; such a
    question is left out (with a warning) rather than judged on part of its rotations.
    """
    by_question: dict[str, list[int]] = {}
    expected: dict[str, int] = {}
    for question, n_rotations, correct in items:
        by_question.setdefault(question, []).append(int(correct))
        expected[question] = int(n_rotations)
    complete = [all(marks) for question, marks in by_question.items()
                if len(marks) == expected[question]]
    cut = len(by_question) - len(complete)
    if cut:
        log.warning("circular_strict: %d question(s) scored in only part of their rotations "
                    "(--limit counts prompts, not questions) left out", cut)
    if not complete:
        log.warning("circular_strict: no question was scored in all its rotations; raise "
                    "--limit to a multiple of the rotations per question")
        return float("nan")
    return sum(complete) / len(complete)
