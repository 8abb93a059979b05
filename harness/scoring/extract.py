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
    """Lower case, punctuation to spaces, and a number split from its unit ("6dB" = "6 dB")."""
    text = re.sub(r"(\d)([^\W\d_]|%)", r"\1 \2", text.lower())
    return " ".join(re.sub(r"[^\w%.\-+/]", " ", text).split()).strip(" .")


# "B", "B.", "B)", "(B)", "B: text", "**B**" at the very start; "I think", "A good" and
# "e.g." are words.
_LEAD_LETTER = re.compile(
    r"^(?:\(\s*([A-Za-z])\s*\)|([A-Za-z])(?:[.:)\]*](?![A-Za-z]\.)|\s*$))")
_MARKUP = " \t\n*_`\"'"
# Where a reply states its pick: "answer is", "Answer:", "the answer to this question is",
# "option 2", "choice: B". What follows is read by ``_statement``.
_STATEMENT = re.compile(
    r"\b(?:(?P<answer>answer)(?:\s+to\s+(?:this|the)\s+question)?|(?P<option>option|choice))\b"
    r"(?:\s+(?:is|would\s+be|should\s+be|will\s+be))?\s*(?:[:#=]|-(?!\d))?\s*",
    re.IGNORECASE)
_STATED_LETTER = re.compile(r"\(\s*([A-Za-z])\s*\)|([A-Za-z])(?![\w'’\-])")
# A number with a unit is a quantity ("3 dB", "20 MHz"), never an option number.
_UNIT = (r"%|°|dB\w*|[kMGTmunµp]?(?:Hz|bps|b/s|B/s|W|Wh|s|m|B|bits?|bytes?|sec(?:onds?)?)"
         r"|min(?:utes?)?|hours?|km/h|m/s|degrees?|symbols?|slots?|sub-?carriers?|subframes?"
         r"|frames?|PRBs?|RBs?|REs?|layers?|ports?|antennas?|beams?|users?|UEs?|times")
_STATED_NUMBER = re.compile(
    rf"(?P<num>[-+]?\d+(?:[.,]\d+)*(?:/\d+)?)(?P<unit>\s*(?:{_UNIT})(?![A-Za-z]))?",
    re.IGNORECASE)
# After a stated pick: "option E is wrong" states no pick; "B or C" names two.
_NEGATED = re.compile(r"\s*(?:is|was|would\s+be)?\s*(?:not\b|incorrect|wrong|false)", re.I)
_ALSO_LETTER = re.compile(r"\s*(?:,|/|&|\bor\b|\band\b)\s*\(?([A-HJ-Z])\)?(?![\w'’\-])")
_BOXED = re.compile(r"\\boxed\s*\{")


def extract_choice(response: str, choices: list[str]) -> Extraction:
    """Which option a generation picked, as a letter ``A``.. within range.

    Read in this order, each step only when the ones before found nothing:

    1. a leading letter (``B``, ``B.``, ``(B)``, ``B) text``), where a Q/A-style "A:" that
       introduces a letter or a choice's text ("A: B. text") is that answer's prefix;
    2. a reply that is exactly one choice's text;
    3. stated answers: ``Answer: B``, ``the answer is (b)``, ``The correct answer is 6 dB``,
       ``Answer: 2``; the last one counts, as a reader takes a reply's final word. Otherwise
       ``option 2`` / ``choice B`` (1-based numbers, as TeleQnA writes them), when the
       reply names only one option that way;
    4. the text of exactly one choice anywhere in the reply.

    After "answer", a choice's text is read before an option number, so "Answer: 3 dB"
    picks the choice "3 dB" and not option 3; a number with a unit that is no choice's text
    is unparsed rather than taken as an option number. A bare number is an option's
    position, or after "answer" a choice's value (see ``_statement``). A letter counts only
    when punctuation, brackets, the end, or (for letters other than the words "a" and "I")
    a following word come after it: "The answer is a protocol" is the article, not option A.
    A stated pick that is negated ("option E is wrong") or paired ("B or C") picks nothing.
    """
    text = (response or "").strip()
    n = len(choices)
    if not text:
        return Extraction(None, "empty generation")
    boxed = last_boxed(text)
    if boxed is not None:
        text = boxed
    norms = [_norm(c) for c in choices]
    lead = _LEAD_LETTER.match(text.lstrip(_MARKUP))
    if lead:
        if lead.group(0) == "A:":  # "A: B. text" and "A: TDLB1" are Q/A style answers
            stated = _statement(text.lstrip(_MARKUP)[2:], choices, norms, True)
            if stated is not None and stated.answer is not None:
                return stated
        return _letter((lead.group(1) or lead.group(2)).upper(), n, "leading letter")
    exact = [i for i, c in enumerate(norms) if c and c == _norm(text)]
    if len(exact) == 1:
        return Extraction(LETTERS[exact[0]], "choice text")
    stated = _stated(text, choices, norms)
    if stated is not None:
        return stated
    contained = [i for i, c in enumerate(norms) if c and _contains(_norm(text), c)]
    # Prefer the longest contained choice when one choice text is part of another.
    contained = [i for i in contained
                 if not any(i != j and _contains(norms[j], norms[i]) for j in contained)]
    if len(contained) == 1:
        return Extraction(LETTERS[contained[0]], "choice text")
    if len(contained) > 1:
        return Extraction(None, f"mentions {len(contained)} choices' text")
    return Extraction(None, "no option letter, option number or choice text found")


def _stated(text: str, choices: list[str], norms: list[str]) -> Extraction | None:
    """The pick a reply states after "answer" (its last one), else after "option"/"choice"."""
    answers, options = [], []
    for match in _STATEMENT.finditer(text):
        is_answer = match.group("answer") is not None
        got = _statement(text[match.end():], choices, norms, is_answer)
        if got is not None:
            (answers if is_answer else options).append(got)
    if answers:
        return answers[-1]
    named = list(dict.fromkeys(g.answer for g in options if g.answer is not None))
    if len(named) > 1:
        return Extraction(None, f"names {len(named)} options ({', '.join(named)})")
    return options[0] if options else None


def _statement(rest: str, choices: list[str], norms: list[str],
               is_answer: bool) -> Extraction | None:
    """Read what follows "answer is"/"option": a letter, a choice's text, or a number.

    None when it states no pick ("To answer this...", "option E is wrong"). A bare number
    after "option"/"choice" is a position. After "answer" it may also be a choice's value
    ("Answer: 16" with choices 4, 8, 16, 32); when it is one option's value and another
    option's position ("Answer: 3" with 1 dB, 3 dB, 6 dB) it is unparsed as ambiguous.
    """
    rest = rest.lstrip(_MARKUP)
    if rest[:1] in (",", ";", "."):  # "To answer, ..." states nothing
        return None
    n = len(choices)
    letter = _STATED_LETTER.match(rest)
    if letter:
        char, after = letter.group(1) or letter.group(2), rest[letter.end():]
        is_word = (letter.group(2) is not None and char in "aiI"
                   and re.match(r"\s+[^\W\d_]", after) is not None)
        if not is_word:
            if _NEGATED.match(after):
                return None
            also = _ALSO_LETTER.match(after)
            if also:
                return Extraction(None, f"names options {char.upper()} and {also.group(1)}")
            return _letter(char.upper(), n, "stated letter")
    head = _norm(rest)
    starting = [i for i, c in enumerate(norms)
                if c and not _is_bare_number(c) and _starts_with(head, c)]
    starting = [i for i in starting if len(norms[i]) == max(len(norms[j]) for j in starting)]
    if len(set(norms[i] for i in starting)) == 1:
        return Extraction(LETTERS[starting[0]], "stated choice text")
    number = _STATED_NUMBER.match(rest)
    if number is None:
        return None
    said = number.group(0).strip()
    if number.group("unit") or not number.group("num").isdigit():
        return Extraction(None, f"the stated answer {said!r} is none of the choices")
    if _NEGATED.match(rest[number.end():]):
        return None
    value = int(number.group("num"))
    position = value - 1 if 0 <= value - 1 < n else None
    valued = [i for i, c in enumerate(choices) if is_answer and _value_of(c) == value]
    if len(valued) == 1:
        if position is None or position == valued[0]:
            return Extraction(LETTERS[valued[0]], "stated choice value")
        return Extraction(None, f"{said} is option {LETTERS[position]}'s position and "
                                f"option {LETTERS[valued[0]]}'s value")
    if position is not None:
        return Extraction(LETTERS[position], "option number")
    return Extraction(None, f"option {said} out of range for {n} choices")


def _value_of(choice: str) -> float | None:
    """The number a choice is, with or without its unit ("16", "3 dB"), else None."""
    match = _STATED_NUMBER.fullmatch(choice.strip())
    return parse_number(match.group("num")) if match else None


def _is_bare_number(norm: str) -> bool:
    return re.fullmatch(r"[-+]?\d+", norm) is not None


def _starts_with(text: str, prefix: str) -> bool:
    """``prefix`` opens ``text`` as whole words: "3 db" opens "3 db because", not "3 dbm"."""
    return text.startswith(prefix) and _bounded(text, len(prefix))


def _contains(text: str, part: str) -> bool:
    """``part`` occurs in ``text`` as whole words: "1 db" is not inside "11 db" or "-1 db"."""
    start = text.find(part)
    while start >= 0:
        if (start == 0 or text[start - 1] == " ") and _bounded(text, start + len(part)):
            return True
        start = text.find(part, start + 1)
    return False


def _bounded(text: str, end: int) -> bool:
    return end == len(text) or text[end] == " " or (
        text[end] in ".%" and (end + 1 == len(text) or not text[end + 1].isalnum()))


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


# A quoted key and value, as JSON or a Python dict writes them: {"WORKING GROUP": "RAN1"}.
_JSON_PAIR = re.compile(r"""(["'])[^"'\n]{1,80}\1\s*:\s*(["'])(?P<value>[^"'\n]*)\2""")


def extract_label(response: str, labels: list[str]) -> Extraction:
    r"""Which of a closed label set a generation names (3GPP working group, root cause).

    A ``{"key": "label"}`` pair wins, as 3GPP-TSG's instruction asks for that form (the last
    pair that names a label). Otherwise the final-answer span is searched (last
    ``\\boxed{}``, else the text after the last "answer", else the whole reply). A span that
    names several distinct labels is unparsed, as naming several options is for a choice:
    an echo of the label list ("CT1, CT3, RAN1, ...") picks nothing. Labels match
    case-insensitively and ignore spaces/dashes/underscores (``RAN 1`` = ``RAN1``), on token
    boundaries so that ``RAN1`` is not found inside ``RAN11``.
    """
    text = (response or "").strip()
    if not text:
        return Extraction(None, "empty generation")
    patterns = [(label, _label_pattern(label)) for label in labels]
    for pair in reversed(list(_JSON_PAIR.finditer(text))):
        named = _labels_named(pair.group("value"), patterns)
        if named:
            return _one_label(named, "JSON value")
    span, how = _final_answer_span(text)
    named = _labels_named(span, patterns)
    if not named:
        return Extraction(None, f"no known label in the {how} answer")
    return _one_label(named, how)


def _labels_named(text: str, patterns: list[tuple[str, re.Pattern]]) -> list[str]:
    """The distinct labels ``text`` mentions, in order of first mention."""
    found = [(m.start(), label) for label, pattern in patterns for m in pattern.finditer(text)]
    return list(dict.fromkeys(label for _, label in sorted(found)))


def _one_label(named: list[str], how: str) -> Extraction:
    if len(named) == 1:
        return Extraction(named[0], f"label ({how})")
    shown = ", ".join(named[:6]) + (", ..." if len(named) > 6 else "")
    return Extraction(None, f"names {len(named)} labels in the {how} answer ({shown})")


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
