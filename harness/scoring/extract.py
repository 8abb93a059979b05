"""Answer extraction from free-form generations.

Every extractor returns an ``Extraction``: the canonical answer (a letter, a label or a
normalised number) or ``None`` with the reason it could not be parsed. Unparsed answers
are scored as wrong and keep their reason in lm-eval's per-sample log, because the
filtered response of an unparsed generation is ``UNPARSED_PREFIX + reason``.
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass

from harness.data.records import parse_number

UNPARSED_PREFIX = "[unparsed] "
LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class Extraction:
    answer: str | None
    how: str

    @property
    def as_response(self) -> str:
        """The string lm-eval stores as the filtered response."""
        return self.answer if self.answer is not None else UNPARSED_PREFIX + self.how


def is_unparsed(response: str) -> bool:
    return response.startswith(UNPARSED_PREFIX)


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w%.\-+/]", " ", text.lower()).split()).strip(" .")


# "B", "B.", "B)", "(B)", "B: text" at the very start; "I think" and "A good" are words.
_LEAD_LETTER = re.compile(r"^(?:\(\s*([A-Za-z])\s*\)|([A-Za-z])(?:[.:)\]]|\s*$))")
_KEYWORD_LETTER = re.compile(
    r"\b(?:answer|option|choice)\b(?:\s+is)?\s*[:\-]?\s*\(?\s*([A-Za-z])\s*\)?(?=[\s.,:;)]|$)",
    re.IGNORECASE,
)
_OPTION_NUMBER = re.compile(r"\b(?:option|choice|answer)\b(?:\s+is)?\s*[:#\-]?\s*\(?(\d+)\)?",
                            re.IGNORECASE)
_BOXED = re.compile(r"\\boxed\s*\{")


def extract_choice(response: str, choices: list[str]) -> Extraction:
    """Which option a generation picked, as a letter ``A``.. within range.

    Accepted, in this order: a leading letter (``B``, ``B.``, ``(B)``, ``B) text``);
    ``Answer: B`` / ``the answer is (b)``; ``option 2`` (1-based, as TeleQnA writes it);
    the full text of exactly one choice. A leading letter counts only when punctuation,
    brackets or the end follow it, so "I think..." and "A good..." are read as words.
    """
    text = (response or "").strip()
    n = len(choices)
    if not text:
        return Extraction(None, "empty generation")
    boxed = last_boxed(text)
    if boxed is not None:
        text = boxed
    lead = _LEAD_LETTER.match(text)
    if lead:
        return _letter((lead.group(1) or lead.group(2)).upper(), n, "leading letter")
    keyword = _KEYWORD_LETTER.search(text)
    if keyword:
        return _letter(keyword.group(1).upper(), n, "answer/option letter")
    number = _OPTION_NUMBER.search(text)
    if number:
        index = int(number.group(1)) - 1
        if 0 <= index < n:
            return Extraction(LETTERS[index], "option number")
        return Extraction(None, f"option {number.group(1)} out of range for {n} choices")
    norm_text = _norm(text)
    exact = [i for i, c in enumerate(choices) if _norm(c) == norm_text]
    if len(exact) == 1:
        return Extraction(LETTERS[exact[0]], "choice text")
    contained = [i for i, c in enumerate(choices) if _norm(c) and _norm(c) in norm_text]
    # Prefer the longest contained choice when one choice text is part of another.
    contained = [i for i in contained
                 if not any(i != j and _norm(choices[i]) in _norm(choices[j]) for j in contained)]
    if len(contained) == 1:
        return Extraction(LETTERS[contained[0]], "choice text")
    if len(contained) > 1:
        return Extraction(None, f"mentions {len(contained)} choices' text")
    return Extraction(None, "no option letter, option number or choice text found")


def _letter(letter: str, n: int, how: str) -> Extraction:
    index = LETTERS.index(letter)
    if index < n:
        return Extraction(letter, how)
    return Extraction(None, f"letter {letter} out of range for {n} choices")


def last_boxed(text: str) -> str | None:
    r"""Content of the last ``\\boxed{...}``, braces balanced, or None."""
    starts = [m.end() for m in _BOXED.finditer(text)]
    if not starts:
        return None
    start, depth = starts[-1], 1
    for pos in range(start, len(text)):
        if text[pos] == "{":
            depth += 1
        elif text[pos] == "}":
            depth -= 1
            if depth == 0:
                return text[start:pos].strip()
    return None


def _final_answer_span(text: str) -> tuple[str, str]:
    """The span that states the final answer: the last box, else after 'answer', else all."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed, "boxed"
    marker = list(re.finditer(r"\b(?:final\s+answer|answer|root\s+cause)\b\s*(?:is)?\s*[:\-]?",
                              text, re.IGNORECASE))
    if marker:
        return text[marker[-1].end():], "after 'answer'"
    return text, "free text"


def extract_label(response: str, labels: list[str]) -> Extraction:
    r"""Which of a closed label set a generation names (3GPP working group, root cause).

    The final-answer span is searched (last ``\\boxed{}``, else the text after the last
    "answer"), and the first label mentioned there wins. Labels match case-insensitively
    and ignore spaces/dashes/underscores (``RAN 1`` = ``RAN1``), on token boundaries so that
    ``RAN1`` is not found inside ``RAN11``.
    """
    text = (response or "").strip()
    if not text:
        return Extraction(None, "empty generation")
    span, how = _final_answer_span(text)
    best: tuple[int, int, str] | None = None
    for label in labels:
        match = _label_pattern(label).search(span)
        if match:
            # earliest mention wins; at the same position the longer label (RAN11 over RAN1)
            candidate = (match.start(), -len(label), label)
            best = candidate if best is None or candidate < best else best
    if best is None:
        return Extraction(None, f"no known label in the {how} answer")
    return Extraction(best[2], f"label ({how})")


def _label_pattern(label: str) -> re.Pattern:
    """``RAN1`` also matches ``ran 1``/``RAN-1``, never inside ``RAN11`` or ``XRAN1``."""
    runs = re.findall(r"[A-Za-z]+|\d+|[^A-Za-z\d\s_\-]+", label)
    body = r"[\s_\-]*".join(re.escape(r) for r in runs)
    return re.compile(rf"(?<![A-Za-z0-9]){body}(?![A-Za-z0-9])", re.IGNORECASE)


_ANY_NUMBER = re.compile(r"[-+]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def extract_number(response: str) -> Extraction:
    """The final numeric answer: inside the last box, else after 'answer', else the last number."""
    text = (response or "").strip()
    if not text:
        return Extraction(None, "empty generation")
    span, how = _final_answer_span(text)
    numbers = [parse_number(m.group(0)) for m in _ANY_NUMBER.finditer(span)]
    numbers = [x for x in numbers if x is not None]
    if not numbers:
        return Extraction(None, f"no number in the {how} answer")
    value = numbers[0] if how != "free text" else numbers[-1]
    return Extraction(format_number(value), f"number ({how})")


def format_number(value: float) -> str:
    """Canonical text for a number, so that votes on 0.5 and .50 agree."""
    return f"{value:.6g}"


def numbers_match(predicted: str, gold: str, rel_tol: float = 0.01,
                  abs_tol: float = 0.01) -> bool:
    """True when ``predicted`` is within 1% of ``gold`` or 0.01 of it, whichever is looser.

    The tolerances are GSMA's TeleMath scorer's (``math.isclose(pred, answer, rel_tol=0.01,
    abs_tol=0.01)``), so scores compare with the published ones; the absolute term matters
    for answers near zero (a probability of 0.004 against a gold 0.005).
    """
    p, g = parse_number(predicted), parse_number(gold)
    if p is None or g is None:
        return False
    return math.isclose(p, g, rel_tol=rel_tol, abs_tol=abs_tol)
