"""Flags generated from config dataclasses, so a default is written once, in the config.

A field's ``metadata["help"]`` is its help text; a list default becomes a comma-separated
flag, a bool an ``--x/--no-x`` pair. The commands give the few fields whose text form needs
parsing (``kinds``) and leave out the ones they set themselves (``skip``).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable
from typing import Any


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def default_of(f: dataclasses.Field) -> Any:
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def add_config_args(parser: argparse.ArgumentParser, config_cls: type,
                    skip: Iterable[str] = (), kinds: dict[str, Callable] | None = None,
                    booleans: Iterable[str] = ()) -> None:
    kinds, skip, booleans = kinds or {}, set(skip), set(booleans)
    for f in dataclasses.fields(config_cls):
        if f.name in skip or f.metadata.get("flag") is False:
            continue
        default = default_of(f)
        helptext = f.metadata.get("help", "")
        if isinstance(default, bool) or f.name in booleans:
            parser.add_argument(flag(f.name), action=argparse.BooleanOptionalAction,
                                default=default, help=helptext)
        elif isinstance(default, list):
            parser.add_argument(flag(f.name), default=",".join(default),
                                help=f"{helptext} (comma-separated; default %(default)s)")
        else:
            kind = kinds.get(f.name, type(default) if default is not None else str)
            shown = default if not isinstance(default, tuple) else ",".join(map(str, default))
            suffix = "" if default is None else f" (default {shown})"
            parser.add_argument(flag(f.name), type=kind, default=default,
                                help=f"{helptext}{suffix}".replace("%", "%%"))


def config_values(args: argparse.Namespace, config_cls: type,
                  skip: Iterable[str] = ()) -> dict[str, Any]:
    """The dataclass's fields read back from parsed flags (list fields split on commas)."""
    skip = set(skip)
    values = {}
    for f in dataclasses.fields(config_cls):
        if f.name in skip or f.metadata.get("flag") is False:
            continue
        value = getattr(args, f.name)
        if isinstance(default_of(f), list) and isinstance(value, str):
            value = comma_list(value)
        values[f.name] = value
    return values


def comma_list(text: str) -> list[str]:
    return [item.strip() for item in str(text).split(",") if item.strip()]


def benchmark_list(entries: Iterable[str]) -> list[str]:
    """``teleqna oranbench`` and ``teleqna,oranbench`` alike: the positional benchmark list."""
    return [name for entry in entries for name in comma_list(entry)]
