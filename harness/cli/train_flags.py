"""Command-line flags generated from the ``TrainConfig`` dataclass, so they never drift."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from harness.train.config import TrainConfig

# Fields given by their own flags (positional task list, derived output dir).
_SKIP = {"benchmarks", "output_dir"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_train_args(parser: argparse.ArgumentParser, config_cls: type = TrainConfig) -> None:
    for f in dataclasses.fields(config_cls):
        if f.name in _SKIP:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        helptext = f.metadata.get("help", "")
        if isinstance(default, bool) or f.name == "chat_template":
            parser.add_argument(_flag(f.name), action=argparse.BooleanOptionalAction,
                                default=default, help=helptext)
        elif isinstance(default, list):
            parser.add_argument(_flag(f.name), default=",".join(default),
                                help=f"{helptext} (comma-separated; default %(default)s)")
        else:
            kind = {"max_steps": int, "max_train_examples": _int_or_list,
                    "data_dir": str, "teacher_adapter": str}.get(
                f.name, type(default) if default is not None else str)
            parser.add_argument(_flag(f.name), type=kind, default=default,
                                help=f"{helptext} (default %(default)s)")


def _int_or_list(text: str) -> int | list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    return values[0] if len(values) == 1 else values


def config_from_args(args: argparse.Namespace, benchmarks: list[str],
                     output_dir: str, config_cls: type = TrainConfig) -> TrainConfig:
    values: dict[str, Any] = {"benchmarks": benchmarks, "output_dir": output_dir}
    for f in dataclasses.fields(config_cls):
        if f.name in _SKIP:
            continue
        value = getattr(args, f.name)
        if f.name == "target_modules":
            value = [m.strip() for m in str(value).split(",") if m.strip()]
        values[f.name] = value
    return config_cls(**values)
