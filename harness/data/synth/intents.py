"""E-commerce intent set: customer utterances in several languages, labelled with their intent.

Intent-set YAML (see ``resources/ecommerce_intents.yaml``)::

    intents:                       # every label, with a one-line description
      order_status: the customer asks where an order is or when it arrives
    languages:
      en:
        name: English
        slots:                     # values written natively in this language
          product: [the coffee machine, ...]      # ``{product}``; ``{Product}`` capitalises
          order: ["#4821937", ...]
        openers: [Hi!, ...]        # optional, added in front now and then
        closers: [Thanks., ...]    # optional, added at the end now and then
        distractors:               # optional background clauses that use another intent's
          payment_problem: [I paid with {payment} and that went through fine.]  # words
        templates:                 # every declared intent, in every language
          order_status: [Where is my order {order}?, ...]

A scenario is ``intent x language x slot combination`` (``contexts`` combinations per
intent and language, drawn with the seed); its utterances are different templates filled
with the same slot values, with optional opener, closer and a distractor clause taken from
another intent. Records follow the canonical label-task schema: ``id``, ``question`` (the
utterance), ``choices`` ([]), ``answer`` (the intent label), ``labels`` (every label,
sorted), ``subject`` (the language code) and ``scenario``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data.records import make_record
from harness.data.synth.dedup import dedup
from harness.data.synth.ids import content_id
from harness.data.synth.scenario_split import split_by_scenario
from harness.data.synth.yamlfile import RESOURCES, read_yaml
from harness.errors import SlmbenchError

DEFAULT_INTENTS = RESOURCES / "ecommerce_intents.yaml"
DEFAULT_PER_SCENARIO = 5
DEFAULT_CONTEXTS = 12
_SLOT = re.compile(r"\{([A-Za-z_]+)\}")
# How often an utterance gets an opener, a closer, a distractor, or casual casing.
P_OPENER, P_CLOSER, P_DISTRACTOR, P_CASUAL = 0.4, 0.35, 0.3, 0.08


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    slots: dict[str, tuple[str, ...]]
    openers: tuple[str, ...]
    closers: tuple[str, ...]
    distractors: dict[str, tuple[str, ...]]
    templates: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class IntentSet:
    intents: dict[str, str]  # label -> description
    languages: dict[str, Language]
    path: str
    sha256: str

    @property
    def labels(self) -> list[str]:
        return sorted(self.intents)


@dataclass(frozen=True)
class IntentScenario:
    id: str
    intent: str
    language: str
    slots: tuple[tuple[str, str], ...]


def _texts(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{what} must be a non-empty list")
    out = []
    for index, item in enumerate(value, 1):
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise ValueError(f"{what} item #{index} must be text")
        text = " ".join(str(item).split())
        if not text:
            raise ValueError(f"{what} item #{index} is empty")
        out.append(text)
    return tuple(out)


def _check_slots(texts: tuple[str, ...], slots: dict[str, Any], what: str) -> None:
    for index, text in enumerate(texts, 1):
        for name in _SLOT.findall(text):
            if name.lower() not in slots:
                raise ValueError(f"{what} #{index} uses unknown slot {{{name}}}")


def _parse_language(code: str, raw: Any, labels: dict[str, str], where: str) -> Language:
    label = f"{where}: language {code!r}"
    if not isinstance(raw, dict):
        raise SlmbenchError(f"{label}: must be a mapping with 'slots' and 'templates'")
    try:
        slots_raw = raw.get("slots") or {}
        if not isinstance(slots_raw, dict):
            raise ValueError("'slots' must be a mapping of slot name to values")
        slots = {str(k).lower(): _texts(v, f"slot {k!r}") for k, v in slots_raw.items()}
        openers = _texts(raw["openers"], "openers") if raw.get("openers") else ()
        closers = _texts(raw["closers"], "closers") if raw.get("closers") else ()
        templates_raw = raw.get("templates")
        if not isinstance(templates_raw, dict) or not templates_raw:
            raise ValueError("needs a non-empty mapping 'templates' (intent -> utterances)")
        distractors_raw = raw.get("distractors") or {}
        if not isinstance(distractors_raw, dict):
            raise ValueError("'distractors' must be a mapping of intent to clauses")
    except ValueError as err:
        raise SlmbenchError(f"{label}: {err}") from None
    templates, distractors = {}, {}
    for group, source, out in (("templates", templates_raw, templates),
                               ("distractors", distractors_raw, distractors)):
        for intent, items in source.items():
            intent = str(intent)
            if intent not in labels:
                raise SlmbenchError(
                    f"{label}: has intent {intent!r} in '{group}' that the intent list (and "
                    "the other languages) lack")
            try:
                out[intent] = _texts(items, f"{group} of intent {intent!r}")
                _check_slots(out[intent], slots, f"{group} of intent {intent!r}")
            except ValueError as err:
                raise SlmbenchError(f"{label}: {err}") from None
    for intent in labels:
        if intent not in templates:
            raise SlmbenchError(f"{where}: intent {intent!r} has no templates in language "
                                f"{code!r}")
    return Language(code=code, name=str(raw.get("name") or code), slots=slots, openers=openers,
                    closers=closers, distractors=distractors, templates=templates)


def parse_intent_set(data: Any, where: str, sha256: str = "") -> IntentSet:
    """Validate parsed YAML; every rule break is a one-line error naming label and language."""
    if not isinstance(data, dict):
        raise SlmbenchError(f"{where}: expected a mapping with 'intents' and 'languages'")
    intents_raw = data.get("intents")
    if not isinstance(intents_raw, dict) or not intents_raw:
        raise SlmbenchError(f"{where}: needs a non-empty mapping 'intents' (label -> description)")
    intents: dict[str, str] = {}
    for label, description in intents_raw.items():
        label = str(label).strip()
        if not label or not re.fullmatch(r"[a-z0-9_]+", label):
            raise SlmbenchError(f"{where}: intent label {label!r} must be snake_case "
                                "(a-z, 0-9, _)")
        intents[label] = " ".join(str(description or "").split())
    languages_raw = data.get("languages")
    if not isinstance(languages_raw, dict) or not languages_raw:
        raise SlmbenchError(f"{where}: needs a non-empty mapping 'languages' (code -> language)")
    languages = {str(code): _parse_language(str(code), raw, intents, where)
                 for code, raw in languages_raw.items()}
    return IntentSet(intents=intents, languages=languages, path=where, sha256=sha256)


def load_intent_set(path: str | Path | None = None) -> IntentSet:
    """The intent set at ``path`` (default: the shipped e-commerce set), validated."""
    path = Path(path) if path else DEFAULT_INTENTS
    data, sha256 = read_yaml(path)
    return parse_intent_set(data, str(path), sha256)


def _cap(text: str) -> str:
    """Upper-case the first letter (after any leading punctuation such as ``¿``)."""
    for i, ch in enumerate(text):
        if ch.isalpha():
            return text[:i] + ch.upper() + text[i + 1:]
    return text


def fill(template: str, slots: dict[str, str]) -> str:
    """Fill ``{slot}`` (value as written) and ``{Slot}`` (first letter capitalised)."""
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        value = slots[name.lower()]
        return _cap(value) if name[:1].isupper() else value
    return _SLOT.sub(one, template)


def build_intent_scenarios(intent_set: IntentSet, seed: int = 42,
                           contexts: int = DEFAULT_CONTEXTS) -> list[IntentScenario]:
    """``contexts`` distinct slot combinations for every intent and language."""
    out: list[IntentScenario] = []
    for code, lang in intent_set.languages.items():
        names = sorted(lang.slots)
        for intent in intent_set.intents:
            seen: set[str] = set()
            rng = random.Random(f"slmbench-intents:{seed}:{code}:{intent}")
            for _ in range(contexts * 20):
                if len(seen) == contexts:
                    break
                slots = tuple((n, rng.choice(lang.slots[n])) for n in names)
                sid = content_id("ecommerce", intent, code, [list(s) for s in slots], fold=True)
                if sid not in seen:
                    seen.add(sid)
                    out.append(IntentScenario(id=sid, intent=intent, language=code, slots=slots))
    return out


def _utterance(rng: random.Random, lang: Language, intent: str, template: str,
               slots: dict[str, str]) -> str:
    body = _cap(fill(template, slots))
    parts = [body]
    others = sorted(k for k in lang.distractors if k != intent)
    if others and rng.random() < P_DISTRACTOR:
        clause = _cap(fill(rng.choice(lang.distractors[rng.choice(others)]), slots))
        parts = [clause, body] if rng.random() < 1 / 3 else [body, clause]
    if lang.openers and rng.random() < P_OPENER:
        parts.insert(0, rng.choice(lang.openers))
    if lang.closers and rng.random() < P_CLOSER:
        parts.append(rng.choice(lang.closers))
    text = " ".join(parts)
    if rng.random() < P_CASUAL:
        text = text.lower().rstrip(".!")
    return text


def intent_record(text: str, intent: str, language: str, scenario: str,
                  labels: list[str], origin: str = "template") -> dict[str, Any]:
    """One canonical label record (``harness.data.records.make_record``) plus the scenario."""
    return make_record(kind="label", question=text, answer=intent, subject=language,
                       extra={"labels": list(labels), "scenario": scenario, "origin": origin})


def intent_examples(intent_set: IntentSet, scenarios: list[IntentScenario], seed: int = 42,
                    per_scenario: int = DEFAULT_PER_SCENARIO) -> list[dict[str, Any]]:
    """``per_scenario`` utterances per scenario, from distinct templates while they last."""
    if per_scenario < 1:
        raise ValueError(f"per_scenario must be >= 1, got {per_scenario}")
    labels = intent_set.labels
    out = []
    for sc in scenarios:
        lang = intent_set.languages[sc.language]
        slots = dict(sc.slots)
        rng = random.Random(f"slmbench-intents:{seed}:{sc.id}")
        templates = list(lang.templates[sc.intent])
        order: list[str] = []
        while len(order) < per_scenario:
            order += rng.sample(templates, len(templates))
        for template in order[:per_scenario]:
            text = _utterance(rng, lang, sc.intent, template, slots)
            out.append(intent_record(text, sc.intent, sc.language, sc.id, labels))
    return out


def dedup_intents(records: list[dict[str, Any]], threshold: float | None = None):
    """Exact and near-duplicate utterances dropped (compares the utterance only)."""
    kwargs = {} if threshold is None else {"threshold": threshold}
    return dedup(records, text=lambda r: r["question"], **kwargs)


def generate_intents(seed: int = 42, per_scenario: int = DEFAULT_PER_SCENARIO,
                     path: str | Path | None = None,
                     contexts: int = DEFAULT_CONTEXTS) -> list[dict[str, Any]]:
    """The deduplicated utterances of the intent set at ``path`` (default: the shipped one)."""
    intent_set = load_intent_set(path)
    scenarios = build_intent_scenarios(intent_set, seed, contexts)
    kept, _ = dedup_intents(intent_examples(intent_set, scenarios, seed, per_scenario))
    return kept


def split_intents(records: list[dict[str, Any]], seed: int = 42) -> dict[str, list[dict]]:
    """Train/validation/test 60/20/20 by scenario (see ``split.split_by_scenario``)."""
    return split_by_scenario(records, seed)
