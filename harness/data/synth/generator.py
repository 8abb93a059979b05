"""Expand telecom scenarios into question/answer pairs and short conversations.

Offline and deterministic: example ``k`` of a scenario draws its phrasing from an RNG seeded
with ``(seed, scenario id, k)``, so the output depends only on the glossary, the seed and
``per_scenario`` (never on order or on other scenarios), and another seed picks other phrasing.
"""

from __future__ import annotations

import random
from typing import Any

from harness.data.synth import templates as T
from harness.data.synth.ids import content_id
from harness.data.synth.scenarios import Scenario

DEFAULT_PER_SCENARIO = 20
CONVERSATION_EVERY = 3  # examples k = 2, 5, 8, ... of a scenario are conversations


def _slots(scenario: Scenario) -> dict[str, str]:
    symptom = scenario.cause.symptom
    return {
        "term": scenario.term.term, "definition": scenario.term.definition,
        "cause": scenario.cause.cause, "symptom": symptom,
        "Symptom": symptom[:1].upper() + symptom[1:], "fix": scenario.cause.fix,
        "customer": scenario.context.customer, "note": scenario.context.note,
    }


def _compose(rng: random.Random, layouts: tuple[tuple[str, ...], ...],
             slots: dict[str, str]) -> str:
    parts = []
    for bank in rng.choice(layouts):
        chance = T.OPTIONAL.get(bank)
        if chance is not None and rng.random() >= chance:
            continue
        if bank == "NOTE" and not slots["note"]:
            continue
        parts.append(rng.choice(T.BANKS[bank]).format(**slots))
    text = " ".join(p for p in parts if p)
    return text[:1].upper() + text[1:]


def make_example(scenario: Scenario, *, kind: str, question: str, answer: str,
                 messages: list[dict[str, str]] | None = None,
                 origin: str = "template") -> dict[str, Any]:
    """One example record; its id hashes its content (kind, question, answer, turns)."""
    record: dict[str, Any] = {
        "id": content_id(kind, question, answer, messages or []),
        "scenario": scenario.id,
        "kind": kind,
        "question": question,
        "answer": answer,
        "term": scenario.term.term,
        "cause": scenario.cause.cause,
        "context": scenario.context.name,
        "origin": origin,
    }
    if kind == "conversation":
        record["messages"] = messages or []
    return record


def _qa(rng: random.Random, scenario: Scenario, slots: dict[str, str]) -> dict[str, Any]:
    question = _compose(rng, T.QUESTION_LAYOUTS, slots)
    answer = _compose(rng, T.ANSWER_LAYOUTS, slots)
    return make_example(scenario, kind="qa", question=question, answer=answer)


def _conversation(rng: random.Random, scenario: Scenario,
                  slots: dict[str, str]) -> dict[str, Any]:
    opening = _compose(rng, T.OPENING_LAYOUTS, slots)
    clarify = _compose(rng, (("GREET", "CLARIFY"), ("CLARIFY",)), slots)
    confirm = _compose(rng, (("CONFIRM",),), slots)
    resolution = _compose(rng, T.RESOLUTION_LAYOUTS, slots)
    turns = [("user", opening), ("assistant", clarify), ("user", confirm),
             ("assistant", resolution)]
    if rng.random() < 0.3:
        turns += [("user", rng.choice(T.THANKS)), ("assistant", rng.choice(T.GOODBYE))]
    messages = [{"role": role, "content": text} for role, text in turns]
    return make_example(scenario, kind="conversation", question=opening, answer=resolution,
                        messages=messages)


def scenario_examples(scenario: Scenario, seed: int, per_scenario: int) -> list[dict[str, Any]]:
    """The ``per_scenario`` template examples of one scenario (repeats are left to dedup)."""
    slots = _slots(scenario)
    out = []
    for k in range(per_scenario):
        rng = random.Random(f"slmbench-synth:{seed}:{scenario.id}:{k}")
        if k % CONVERSATION_EVERY == CONVERSATION_EVERY - 1:
            example = _conversation(rng, scenario, slots)
        else:
            example = _qa(rng, scenario, slots)
        out.append(example)
    return out


def generate_examples(scenarios: list[Scenario], seed: int = 42,
                      per_scenario: int = DEFAULT_PER_SCENARIO) -> list[dict[str, Any]]:
    """Template examples for every scenario, in scenario order."""
    if per_scenario < 1:
        raise ValueError(f"per_scenario must be >= 1, got {per_scenario}")
    return [ex for sc in scenarios for ex in scenario_examples(sc, seed, per_scenario)]
