"""Booleans given as text (``key=value`` model arguments and metadata) or as JSON.

lm-eval hands ``--model_args`` and ``--metadata`` values through as strings, where
``bool("false")`` is True; a typo (``flash_attn=ture``) must be refused, not read as off.
"""

from __future__ import annotations

from typing import Any

from harness.errors import SlmbenchError

TRUE, FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def as_bool(value: Any, what: str) -> bool:
    """``what`` names the argument in the error, e.g. ``llama-cpp: flash_attn``."""
    if value is None or isinstance(value, bool | int):
        return bool(value)
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise SlmbenchError(f"{what}={value!r} is not a boolean (use true or false)")
