"""Prompts that ask an LLM for more examples of a scenario, and parsers for its answers.

Telecom: one request per scenario asks for ``n`` new question/answer pairs grounded in the
scenario's term, cause, symptom, fix and customer context. E-commerce: one request per
scenario asks for ``n`` customer utterances with the scenario's intent, language and slot
values. Each parsed example carries its scenario id, so it lands in that scenario's split.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from harness.data.synth.generator import make_example
from harness.data.synth.intents import IntentScenario, IntentSet, intent_record
from harness.data.synth.llm import LLMItem
from harness.data.synth.scenarios import Scenario

SYSTEM = ("You write realistic, varied customer-support training data. Reply with one JSON "
          "object and nothing else.")
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def pick(scenario_ids: list[str], seed: int, limit: int | None) -> set[str]:
    """A seeded, order-independent choice of at most ``limit`` scenario ids (all if None)."""
    ranked = sorted(set(scenario_ids),
                    key=lambda s: hashlib.sha256(f"{seed}:llm:{s}".encode()).hexdigest())
    return set(ranked if limit is None else ranked[:max(0, limit)])


def _json_object(text: str) -> dict[str, Any]:
    match = _FENCE.match(text)
    try:
        value = json.loads(match.group(1) if match else text)
    except ValueError as err:
        raise ValueError(f"completion is not JSON ({err})") from None
    if not isinstance(value, dict):
        raise ValueError("completion is not a JSON object")
    return value


def _strings(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"missing or empty {what!r}")
    return " ".join(value.split())


def telecom_items(scenarios: list[Scenario], n: int = 2, seed: int = 42,
                  limit: int | None = None) -> list[LLMItem]:
    chosen = pick([s.id for s in scenarios], seed, limit)
    return [_telecom_item(sc, n) for sc in scenarios if sc.id in chosen]


def _telecom_item(sc: Scenario, n: int) -> LLMItem:
    prompt = (
        f"Write {n} new, different exchanges between a customer of a mobile and broadband "
        "operator and a support agent.\n"
        f"Topic: {sc.term.term}. {sc.term.definition}\n"
        f"What the customer notices: {sc.cause.symptom}.\n"
        f"Actual cause: {sc.cause.cause}.\n"
        f"Fix: {sc.cause.fix}.\n"
        f"About the customer: {sc.context.customer}.\n"
        "The customer describes the problem in their own words; the agent's answer names the "
        "cause and gives the fix. Reply as JSON: "
        '{"examples": [{"question": "...", "answer": "..."}]}'
    )

    def parse(text: str) -> list[dict[str, Any]]:
        rows = _json_object(text).get("examples")
        if not isinstance(rows, list) or not rows:
            raise ValueError("no 'examples' list")
        out = []
        for row in rows:
            if not isinstance(row, dict):
                raise ValueError("an example is not an object")
            out.append(make_example(sc, kind="qa", question=_strings(row.get("question"),
                                    "question"), answer=_strings(row.get("answer"), "answer"),
                                    origin="llm"))
        return out

    return LLMItem(key=sc.id, messages=[{"role": "system", "content": SYSTEM},
                                        {"role": "user", "content": prompt}], parse=parse)


def intent_items(intent_set: IntentSet, scenarios: list[IntentScenario], n: int = 3,
                 seed: int = 42, limit: int | None = None) -> list[LLMItem]:
    chosen = pick([s.id for s in scenarios], seed, limit)
    return [_intent_item(intent_set, sc, n) for sc in scenarios if sc.id in chosen]


def _intent_item(intent_set: IntentSet, sc: IntentScenario, n: int) -> LLMItem:
    lang = intent_set.languages[sc.language]
    details = "; ".join(f"{k}: {v}" for k, v in sc.slots)
    prompt = (
        f"Write {n} different messages that a customer might send to an online shop's support "
        f"chat, in {lang.name} (language code {sc.language}), written natively.\n"
        f"Intent: {sc.intent} ({intent_set.intents[sc.intent]}).\n"
        f"Details you may use where they fit: {details}.\n"
        "Vary length, tone and wording; each message must express only this intent. Reply as "
        'JSON: {"utterances": ["...", "..."]}'
    )
    labels = intent_set.labels

    def parse(text: str) -> list[dict[str, Any]]:
        rows = _json_object(text).get("utterances")
        if not isinstance(rows, list) or not rows:
            raise ValueError("no 'utterances' list")
        return [intent_record(_strings(u, "utterance"), sc.intent, sc.language, sc.id, labels,
                              origin="llm") for u in rows]

    return LLMItem(key=sc.id, messages=[{"role": "system", "content": SYSTEM},
                                        {"role": "user", "content": prompt}], parse=parse)
