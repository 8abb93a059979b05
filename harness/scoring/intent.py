"""Intent-recognition scoring: exact match plus macro-F1, overall and per language.

Accuracy hides a model that answers the frequent intents well and never predicts the rare
ones; macro-F1 weighs every intent equally. lm-eval metrics are scalars, so each question
contributes a ``(predicted, gold, language)`` triple and the aggregation functions below
compute F1 over the whole split (overall, or restricted to one language). The per-intent
table comes from the run store's per-question records (``intent_breakdown``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from harness.scoring.extract import is_unparsed
from harness.scoring.filters import is_correct

LANGUAGES = ("en", "es", "de", "fr")
UNPARSED = "[unparsed]"


def _norm(label: str) -> str:
    return UNPARSED if is_unparsed(label) else label.strip().lower()


def per_label_f1(pairs: Iterable[tuple[str, str]]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per gold label; unparsed answers are never right."""
    tp, fp, fn, support = Counter(), Counter(), Counter(), Counter()
    for predicted, gold in pairs:
        predicted, gold = _norm(predicted), _norm(gold)
        support[gold] += 1
        if predicted == gold:
            tp[gold] += 1
        else:
            fn[gold] += 1
            if predicted != UNPARSED:
                fp[predicted] += 1
    table = {}
    for label in sorted(support):
        p = tp[label] / (tp[label] + fp[label]) if tp[label] + fp[label] else 0.0
        r = tp[label] / support[label]
        table[label] = {"precision": p, "recall": r,
                        "f1": 2 * p * r / (p + r) if p + r else 0.0,
                        "support": support[label]}
    return table


def macro_f1(pairs: Iterable[tuple[str, str]]) -> float:
    """Mean F1 over the gold labels present (predicted-only labels add false positives)."""
    table = per_label_f1(pairs)
    return sum(row["f1"] for row in table.values()) / len(table) if table else 0.0


def process_results_intent(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    predicted = results[0]
    item = (predicted, str(doc["answer"]), str(doc.get("subject") or ""))
    scores: dict[str, Any] = {"exact_match": int(is_correct("label", predicted, doc)),
                              "unparsed": int(is_unparsed(predicted)), "macro_f1": item}
    scores.update({f"macro_f1_{lang}": item for lang in LANGUAGES})
    return scores


def macro_f1_agg(items: list[tuple[str, str, str]]) -> float:
    return macro_f1((p, g) for p, g, _ in items)


def _language_agg(language: str):
    def aggregate(items: list[tuple[str, str, str]]) -> float:
        chosen = [(p, g) for p, g, lang in items if lang == language]
        return macro_f1(chosen) if chosen else float("nan")

    aggregate.__name__ = f"macro_f1_{language}_agg"
    aggregate.__doc__ = f"Macro-F1 over the {language} questions only."
    return aggregate


macro_f1_en_agg = _language_agg("en")
macro_f1_es_agg = _language_agg("es")
macro_f1_de_agg = _language_agg("de")
macro_f1_fr_agg = _language_agg("fr")


def intent_breakdown(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-intent and per-language scores from run-store sample rows (``parsed``/``target``).

    ``parsed`` holds lm-eval's filtered response list; its first item is the answer scored.
    """
    def answer(row: dict[str, Any]) -> str:
        parsed = row.get("parsed")
        return str(parsed[0] if isinstance(parsed, list) and parsed else parsed)

    pairs = [(answer(r), str(r["target"])) for r in rows]
    by_language: dict[str, list[tuple[str, str]]] = {}
    for row, pair in zip(rows, pairs, strict=True):
        by_language.setdefault(str(row.get("subject") or "?"), []).append(pair)
    return {
        "n": len(rows),
        "accuracy": sum(_norm(p) == _norm(g) for p, g in pairs) / len(pairs) if pairs else 0.0,
        "macro_f1": macro_f1(pairs),
        "per_intent": per_label_f1(pairs),
        "per_language": {lang: {"n": len(items), "macro_f1": macro_f1(items),
                                "accuracy": sum(_norm(p) == _norm(g) for p, g in items)
                                / len(items)}
                         for lang, items in sorted(by_language.items())},
    }
