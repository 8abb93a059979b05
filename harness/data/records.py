"""Canonical records (the GSMA ``ot-full`` schema) and the checks every importer shares.

A record is a plain dict so that it goes straight into ``datasets.Dataset``:
``id``, ``question``, ``choices`` (list, empty for free-answer tasks), ``answer``
(0-based int for multiple choice, str for labels and reference texts, float for numbers)
and ``subject``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["mcq", "label", "numeric", "text"]


class RowError(ValueError):
    """One malformed source row; the loader skips it and reports where it was."""


def stable_id(question: str, choices: list[str]) -> str:
    """An id that survives reordering and re-export: a hash of the content, never a row number."""
    norm = [" ".join(question.split()), [" ".join(c.split()) for c in choices]]
    payload = json.dumps(norm, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def parse_number(text: Any) -> float | None:
    """Parse a gold or predicted number, tolerating thousands separators and a trailing %."""
    if isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        return float(text) if math.isfinite(float(text)) else None
    cleaned = str(text).strip().replace(",", "").replace("$", "").rstrip("%").strip()
    if not _NUMBER.match(cleaned):
        return None
    value = float(cleaned)
    return value if math.isfinite(value) else None


def make_record(
    *,
    kind: Kind,
    question: Any,
    choices: Any = None,
    answer: Any,
    subject: Any = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Validate one row and return its canonical record, or raise RowError saying what is wrong."""
    if not isinstance(question, str) or not question.strip():
        raise RowError("missing or empty 'question'")
    choices = [] if choices is None else choices
    if not isinstance(choices, (list, tuple)):
        raise RowError(f"'choices' must be a list, got {type(choices).__name__}")
    for number, choice in enumerate(choices, 1):
        if isinstance(choice, (list, dict)):
            raise RowError(f"choice {number} is a {type(choice).__name__}, not text")
    choices = [str(c).strip() if c is not None else "" for c in choices]
    _check_unicode(question, choices, answer, subject, *(extra or {}).values())
    if kind == "mcq":
        if len(choices) < 2:
            raise RowError(f"needs at least 2 choices, got {len(choices)}")
        if any(not c for c in choices):
            raise RowError("empty choice text")
        if isinstance(answer, str) and answer.strip().lstrip("-").isdigit():
            answer = int(answer.strip())
        if isinstance(answer, bool) or not isinstance(answer, int):
            raise RowError(f"'answer' must be a 0-based index, got {answer!r}")
        if not 0 <= answer < len(choices):
            raise RowError(f"answer index {answer} out of range for {len(choices)} choices")
    elif kind == "label":
        if answer is None or not str(answer).strip():
            raise RowError("missing or empty 'answer' label")
        if isinstance(answer, bool) or not isinstance(answer, (str, int)):
            raise RowError(f"'answer' label must be text, got {type(answer).__name__}")
        answer = str(answer).strip()
    elif kind == "text":  # free-form reference answer (judged, or scored by overlap)
        if not isinstance(answer, str) or not answer.strip():
            raise RowError("missing or empty reference 'answer'")
        answer = answer.strip()
    elif kind == "numeric":
        # A float, not its text: the scorer compares numbers, and a gold "12" that arrives
        # as int would otherwise read as option index 12 wherever an int means a letter.
        number = parse_number(answer)
        if number is None:
            raise RowError(f"'answer' is not a number: {answer!r}")
        answer = number
    record = {
        "id": stable_id(question, choices),
        "question": question.strip(),
        "choices": choices,
        "answer": answer,
        "subject": "" if subject is None else str(subject),
    }
    if extra:
        record.update(extra)
    return record


# The longest real row here is a 3GPP-TSG excerpt of 8,129 characters; a field 10x past that
# is a broken export, and as a prompt it would fit no model this harness targets.
MAX_TEXT_CHARS = 100_000


def _check_unicode(*values: Any) -> None:
    r"""Reject text that UTF-8 cannot encode, NUL characters and runaway fields, per row.

    A JSON ``\ud800`` escape (or an undecodable byte read with ``surrogateescape``) decodes
    to a lone surrogate, which would otherwise crash the id hash or Arrow far from the row at
    fault; a NUL truncates C strings in tokenizers and terminals.
    """
    for value in values:
        texts = value if isinstance(value, (list, tuple)) else [value]
        for text in texts:
            if isinstance(text, str):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError as err:
                    raise RowError(f"text is not valid Unicode (lone surrogate at character "
                                   f"{err.start})") from None
                if "\x00" in text:
                    raise RowError(f"text holds a NUL character at {text.index(chr(0))}")
                if len(text) > MAX_TEXT_CHARS:
                    raise RowError(f"a field of {len(text):,} characters; rows over "
                                   f"{MAX_TEXT_CHARS:,} are refused")


@dataclass
class LoadReport:
    """What a load kept and skipped, so one bad row never aborts a run but is never hidden."""

    benchmark: str
    source: str
    kept: int = 0
    duplicates: int = 0
    skipped: list[str] = field(default_factory=list)
    # Content hash of every kept record (question, choices, answer): the data version that
    # run records carry, so runs on different data are never compared as equals.
    sha256: str | None = None

    def skip(self, where: str, err: Exception) -> None:
        # One line each, of bounded length: a row's text can hold newlines or be huge.
        message = f"{where}: {err}".replace("\r", "\\r").replace("\n", "\\n")
        self.skipped.append(message if len(message) <= 300 else message[:299] + "…")

    def summary(self) -> str:
        line = f"{self.benchmark}: kept {self.kept} rows from {self.source}"
        if self.duplicates:
            line += f", dropped {self.duplicates} exact duplicates"
        if self.skipped:
            line += f", skipped {len(self.skipped)} malformed (first: {self.skipped[0]})"
        return line

    def as_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "source": self.source,
            "kept": self.kept,
            "sha256": self.sha256,
            "duplicates": self.duplicates,
            "skipped": len(self.skipped),
            "skipped_rows": self.skipped[:50],
        }
