"""What a score is worth: the constant-answer baselines on exactly the questions scored.

A small model fine-tuned on a few hundred multiple-choice questions learns which answer the
key favours long before it learns the domain, and a score of 0.74 means nothing when always
answering "A" also scores 0.74 (srsRANBench). So every choice and label score is reported
beside what answering without reading the question would score on the same questions:

- ``chance``: the expected score of a uniform guess, 1/k per question (k its options);
- ``always_first``: always the first listed option;
- ``majority_key``: always the key that is most often right among these questions;
- ``best_constant``: the best single answer given to every question (for letter keys on
  questions of one size it is the majority key; it differs where questions have different
  option sets, and under circular scoring, where a constant letter can never be right in
  every rotation but a constant label can);

plus the model's own answer distribution (its most given answer, that answer's share and
the normalised entropy: 0 when it always says the same thing, 1 when its answers are spread
evenly over the options) and a paired test against the best constant answer. ``collapse``
is set when the model does not beat that constant on the same questions (exact McNemar,
two-sided, ``ALPHA``): then the score says nothing about knowledge, whatever its size.

Rows are the run store's per-sample records (``harness.evaluation.sample_rows.sample_rows``),
which keep each question's gold ``target``, its ``options`` and what the model answered
(``parsed``). Rows that share a ``circular_id`` are one question asked in several rotations:
the question counts as right only when every rotation is (strict), for the model and for
every baseline alike.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.data.records import parse_number
from harness.scoring.extract import LETTERS, UNPARSED_PREFIX, format_number, numbers_match
from harness.significance import mcnemar_exact

ALPHA = 0.05
RECORDED_P_FLOOR = 1e-6  # as_dict keeps six decimals
UNPARSED = "unparsed"


@dataclass(frozen=True)
class ScoredAnswer:
    """One prompt: the gold key, the keys it could be answered with, and the model's answer."""

    target: str
    options: tuple[str, ...]
    answer: str  # a key, or ``UNPARSED``
    correct: bool
    unit: str  # the question it belongs to (its circular id, else its own id)


@dataclass(frozen=True)
class Baselines:
    n: int  # questions (circular: whole questions, all rotations)
    prompts: int
    score: float
    chance: float | None
    always_first: float | None
    majority_key: str | None
    majority_key_score: float | None
    best_constant: str | None
    best_constant_score: float | None
    top_answer: str | None
    top_share: float | None
    entropy: float | None
    unparsed_share: float
    vs_constant_delta: float | None
    vs_constant_p: float | None
    vs_constant_lost: int | None
    vs_constant_gained: int | None
    collapse: bool | None

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v)
                for k, v in asdict(self).items()}


def answers_of(rows: Iterable[dict[str, Any]]) -> list[ScoredAnswer]:
    """The per-sample rows a baseline can be computed from; rows it cannot read are left out.

    Scored rows carry ``options`` since baselines were added; older records are read from
    what they do carry (the lettered options in the prompt, the label list it ends with).
    """
    rows = list(rows)
    seen: Counter = Counter(str(r["circular_id"]) for r in rows if r.get("circular_id"))
    out = []
    for row in rows:
        expected = row.get("n_rotations")
        if row.get("circular_id") and expected and seen[str(row["circular_id"])] < expected:
            continue  # a question --limit cut short is not scored, as in circular_strict
        answer = _scored_answer(row)
        if answer is not None:
            out.append(answer)
    return out


def _scored_answer(row: dict[str, Any]) -> ScoredAnswer | None:
    options = row.get("options") or _options_from_prompt(row.get("prompt"))
    target = row.get("target")
    if target is None or row.get("correct") is None:
        return None
    if not options:
        return _numeric_answer(row)
    options = tuple(str(o) for o in options)
    parsed = row.get("parsed")
    answer = _answer_from_parsed(parsed, options)
    target = _key(target, options)
    if target is None:
        return None
    unit = str(row.get("circular_id") or row.get("id") or row.get("doc_id"))
    return ScoredAnswer(target, options, answer, bool(row["correct"]), unit)


def _numeric_answer(row: dict[str, Any]) -> ScoredAnswer | None:
    """A numeric question (TeleMath): its constants are numbers, right within tolerance.

    Gold and answers are kept in ``format_number``'s canonical text; ``options`` is empty,
    so a uniform guess and "the first option" have no meaning and stay unset.
    """
    gold = parse_number(str(row["target"]))
    if gold is None:
        return None
    parsed = row.get("parsed")
    parsed = parsed[0] if isinstance(parsed, list) and parsed else parsed
    value = None if parsed is None or str(parsed).startswith(UNPARSED_PREFIX) else (
        parse_number(str(parsed)))
    answer = format_number(value) if value is not None else UNPARSED
    unit = str(row.get("circular_id") or row.get("id") or row.get("doc_id"))
    return ScoredAnswer(format_number(gold), (), answer, bool(row["correct"]), unit)


def _key(value: Any, options: Sequence[str]) -> str | None:
    """A gold or predicted answer as one of ``options``: an int index becomes its key."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return options[value] if 0 <= value < len(options) else None
    text = str(value).strip()
    if text.isdigit() and text not in options:  # loglikelihood targets are indices
        index = int(text)
        return options[index] if 0 <= index < len(options) else None
    for option in options:
        if option.lower() == text.lower():
            return option
    return None


def _answer_from_parsed(parsed: Any, options: Sequence[str]) -> str:
    """What the model answered: the filtered generation, or the likeliest option."""
    if isinstance(parsed, list) and parsed and isinstance(parsed[0], list | tuple):
        # loglikelihood tasks log [loglikelihood, is_greedy] per option
        lls = [float(p[0]) for p in parsed]
        return options[max(range(len(lls)), key=lls.__getitem__)] if len(lls) == len(
            options) else UNPARSED
    if isinstance(parsed, list):
        parsed = parsed[0] if parsed else None
    if parsed is None or str(parsed).startswith(UNPARSED_PREFIX):
        return UNPARSED
    key = _key(parsed, options)
    return key if key is not None else UNPARSED


def _options_from_prompt(prompt: Any) -> tuple[str, ...] | None:
    """Lettered options (``A. ...`` lines) or a closing label list, for records before options."""
    if not isinstance(prompt, str):
        return None
    letters = []
    for line in prompt.splitlines():
        if len(line) > 2 and line[1] == "." and line[0] in LETTERS and line[2] == " ":
            if line[0] == LETTERS[len(letters)]:
                letters.append(line[0])
    if len(letters) >= 2:
        return tuple(letters)
    marker = "Reply with exactly one label from: "
    if marker in prompt:
        tail = prompt.rsplit(marker, 1)[1].split(".\n", 1)[0]
        labels = tuple(label.strip() for label in tail.split(","))
        return labels if len(labels) >= 2 else None
    return None


def _units(answers: list[ScoredAnswer]) -> dict[str, list[ScoredAnswer]]:
    units: dict[str, list[ScoredAnswer]] = defaultdict(list)
    for answer in answers:
        units[answer.unit].append(answer)
    return units


def _right(answer: ScoredAnswer, constant: str) -> bool:
    if answer.options:
        return answer.target == constant
    return numbers_match(constant, answer.target)


def _constant_hits(units: dict[str, list[ScoredAnswer]], constant: str) -> list[bool]:
    return [all(_right(a, constant) for a in unit) for unit in units.values()]


def _normalised_entropy(counts: Counter, k: int) -> float | None:
    total = sum(counts.values())
    if total == 0 or k < 2:
        return None
    h = -sum(c / total * math.log(c / total) for c in counts.values() if c)
    return max(0.0, min(1.0, h / math.log(k)))  # one answer gives -0.0, shown "-0.000"


def compute(rows: Iterable[dict[str, Any]], alpha: float = ALPHA) -> Baselines | None:
    """The baselines of one task's scored rows, or None when none can be read (free form)."""
    answers = answers_of(rows)
    if not answers:
        return None
    units = _units(answers)
    n = len(units)
    choice = all(a.options for a in answers)
    model_hits = [all(a.correct for a in unit) for unit in units.values()]
    chance = first = None
    if choice:
        chance = sum(math.prod(1 / len(a.options) for a in unit)
                     for unit in units.values()) / n
        first = sum(all(a.target == a.options[0] for a in unit) for unit in units.values()) / n
    key_counts = Counter(a.target for a in answers)
    majority = min(key_counts, key=lambda k: (-key_counts[k], k))
    constants = sorted({o for a in answers for o in a.options} if choice else
                       {*key_counts, *(a.answer for a in answers if a.answer != UNPARSED)})
    scored = {c: _constant_hits(units, c) for c in constants}
    best = min(constants, key=lambda c: (-sum(scored[c]), c))
    given = Counter(a.answer for a in answers if a.answer != UNPARSED)
    top = min(given, key=lambda k: (-given[k], k)) if given else None
    lost = sum(1 for m, c in zip(model_hits, scored[best], strict=True) if c and not m)
    gained = sum(1 for m, c in zip(model_hits, scored[best], strict=True) if m and not c)
    p = mcnemar_exact(lost, gained)
    delta = (gained - lost) / n
    return Baselines(
        n=n, prompts=len(answers), score=sum(model_hits) / n, chance=chance, always_first=first,
        majority_key=majority, majority_key_score=sum(scored.get(majority, [])) / n,
        best_constant=best, best_constant_score=sum(scored[best]) / n,
        top_answer=top, top_share=given[top] / sum(given.values()) if top else None,
        entropy=_normalised_entropy(given, len(constants) if choice else len(answers)),
        unparsed_share=sum(a.answer == UNPARSED for a in answers) / len(answers),
        vs_constant_delta=delta, vs_constant_p=p, vs_constant_lost=lost,
        vs_constant_gained=gained, collapse=not (delta > 0 and p < alpha))


@dataclass(frozen=True)
class CircularMean:
    """A circular task's accuracy over rotations, per whole question, with its baselines.

    Strict circular accuracy is 0 for a model at chance and for one below it alike, so a
    small model's strict scores tell engines apart by nothing; the mean over rotations does,
    beside its own chance rate and best constant (a letter scores exactly chance here, as the
    gold letter visits every position; a label keeps its share of the key).
    """

    n: int  # whole questions
    score: float
    chance: float | None
    best_constant: str | None
    best_constant_score: float | None
    per_question: dict[str, float]  # circular id -> the model's mean over its rotations


def circular_mean(rows: Iterable[dict[str, Any]]) -> CircularMean | None:
    """The mean over rotations of a circular task's rows; None for rows of no circular task."""
    rows = list(rows)
    if not any(r.get("circular_id") for r in rows):
        return None
    units = _units([a for a in answers_of(rows) if a.options])
    if not units:
        return None

    def mean(values: Iterable[float]) -> float:
        values = list(values)
        return sum(values) / len(values)

    per_question = {u: mean(float(a.correct) for a in unit) for u, unit in units.items()}
    constants = sorted({o for unit in units.values() for a in unit for o in a.options})
    scored = {c: mean(mean(float(a.target == c) for a in unit) for unit in units.values())
              for c in constants}
    best = min(constants, key=lambda c: (-scored[c], c))
    return CircularMean(
        n=len(units), score=mean(per_question.values()),
        chance=mean(mean(1 / len(a.options) for a in unit) for unit in units.values()),
        best_constant=best, best_constant_score=scored[best], per_question=per_question)


TABLE_COLUMNS = ("task", "n", "score", "chance", "always first", "majority key",
                 "best constant", "vs constant (p)", "top answer", "entropy")


def table_cells(task: str, b: dict[str, Any]) -> list[str]:
    """One task's score beside its baselines, as table cells (console and pages alike)."""
    def num(key: str) -> str:
        value = b.get(key)  # + 0.0: records made before the fix hold -0.0 entropies
        return f"{value + 0.0:.3f}" if isinstance(value, int | float) else "-"

    below = (isinstance(b.get("vs_constant_delta"), int | float) and b["vs_constant_delta"] < 0
             and isinstance(b.get("vs_constant_p"), int | float) and b["vs_constant_p"] < ALPHA)
    verdict = "below it" if below else "≈ constant" if b.get("collapse") else "beats it"
    top = (f"{b['top_answer']} ({b['top_share']:.0%})" if b.get("top_answer") is not None
           and isinstance(b.get("top_share"), int | float) else "-")
    return [task, str(b.get("n")), num("score"), num("chance"), num("always_first"),
            f"{b.get('majority_key')} {num('majority_key_score')}",
            f"{b.get('best_constant')} {num('best_constant_score')}",
            f"{b.get('vs_constant_delta', 0):+.3f} ({_p_text(b.get('vs_constant_p', 1))}) "
            f"{verdict}", top, num("entropy")]


def _p_text(p: float) -> str:
    """Records keep six decimals, so a p under 1e-6 is stored as 0: "p<1e-06", not "p=0"."""
    return f"p<{RECORDED_P_FLOOR:.0e}" if p < RECORDED_P_FLOOR else f"p={p:.3g}"
