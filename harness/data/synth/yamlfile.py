"""Read a resource YAML once: its parsed content and the sha256 of its bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from harness.errors import SlmbenchError

RESOURCES = Path(__file__).resolve().parent / "resources"


def read_yaml(path: Path) -> tuple[Any, str]:
    """Parse ``path``; a missing or invalid file is a one-line ``SlmbenchError`` naming it."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise SlmbenchError(f"{path}: cannot read ({err.strerror or err})") from None
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SlmbenchError(f"{path}:{where} invalid YAML ({problem})") from None
    return data, hashlib.sha256(raw).hexdigest()


def text_field(entry: dict[str, Any], name: str, *, required: bool = True) -> str:
    """``entry[name]`` stripped; '' when absent and optional. Non-strings raise ValueError."""
    value = entry.get(name)
    if value is None:
        if required:
            raise ValueError(f"missing {name!r}")
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ValueError(f"{name!r} must be text, got {type(value).__name__}")
    text = " ".join(str(value).split())
    if required and not text:
        raise ValueError(f"empty {name!r}")
    return text
