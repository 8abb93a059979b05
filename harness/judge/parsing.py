"""Tolerant reading of a judge's reply: the JSON object in it, wherever the judge put it.

Judges wrap JSON in code fences, put prose around it, use single quotes or leave trailing
commas. ``extract_json`` finds the first object that reads under any of those; a reply
with none raises ``VerdictError`` with a one-line reason, which the caller feeds back to
the judge when it asks again.
"""

from __future__ import annotations

import ast
import json
import math
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:/\s*10)?\s*$")


class VerdictError(ValueError):
    """A judge reply that cannot be read as a verdict; the message says why, on one line."""


def _balanced(text: str, start: int) -> str | None:
    """The ``{...}`` starting at ``start``, matching braces outside string literals."""
    depth, quote, escaped = 0, None, False
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start:i + 1]
    return None


def _load(candidate: str) -> dict[str, Any] | None:
    for attempt in (candidate, _TRAILING_COMMA.sub(r"\1", candidate)):
        try:
            value = json.loads(attempt)
        except ValueError:
            try:  # single-quoted, Python-literal style
                value = ast.literal_eval(attempt)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                continue
        if isinstance(value, dict):
            return value
    return None


def extract_json(text: str) -> dict[str, Any]:
    """The first JSON object in ``text``: inside code fences first, else anywhere in prose."""
    if not isinstance(text, str) or not text.strip():
        raise VerdictError("empty reply")
    regions = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for region in regions:
        for match in re.finditer(r"\{", region):
            candidate = _balanced(region, match.start())
            if candidate is None:
                continue
            value = _load(candidate)
            if value is not None:
                return value
    raise VerdictError("no JSON object in the reply")


def parse_score(value: Any, what: str, low: float = 1.0, high: float = 10.0) -> float:
    """A score on the ``low``-``high`` scale.

    0 is clamped up to ``low``; anything else out of range (a 0-100 or 0-5 scale, a
    negative) is refused.
    """
    if isinstance(value, dict):
        value = next((value[k] for k in ("score", "rating", "value") if k in value), None)
    if isinstance(value, bool) or value is None:
        raise VerdictError(f"{what}: no numeric score")
    if isinstance(value, str):
        match = _NUMBER.match(value)
        if not match:
            raise VerdictError(f"{what}: score {value[:30]!r} is not a number")
        value = match.group(1)
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise VerdictError(f"{what}: score {value!r} is not a number") from None
    if not math.isfinite(score):
        raise VerdictError(f"{what}: score {score} is not finite")
    if 0 <= score < low:
        return low
    if not low <= score <= high:
        raise VerdictError(f"{what}: score {score:g} is outside {low:g}-{high:g}")
    return score


def norm_key(key: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(key).lower()).strip("_")
