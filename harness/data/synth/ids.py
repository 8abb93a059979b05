"""Stable content ids, in the style of ``harness.data.records.stable_id``."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def _norm(value: Any, fold: bool) -> Any:
    if isinstance(value, str):
        text = " ".join(value.split())
        return text.casefold() if fold else text
    if isinstance(value, (list, tuple)):
        return [_norm(v, fold) for v in value]
    if isinstance(value, dict):
        return {str(k): _norm(v, fold) for k, v in sorted(value.items())}
    return value


def content_id(*parts: Any, fold: bool = False) -> str:
    """A 16-hex-digit hash of ``parts`` (whitespace-normalised; case-folded when ``fold``).

    The id depends on the content only, never on a position in a file or a run.
    """
    payload = json.dumps(_norm(list(parts), fold), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]
