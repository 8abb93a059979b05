"""``EvalSpec``: one evaluation, typed, as every caller asks for it.

``slmbench lm-eval`` turns lm-eval's parsed arguments into one (so every lm-eval flag still
works); training, sweeps and bench build one directly instead of writing argv strings. A
field left ``None`` means "not given": lm-eval's own default applies when the run starts
(``EvaluatorConfig``), and the run's identity records it as not given, exactly as it
recorded an absent flag, so runs recorded before this type existed are still found.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

# lm-eval `run` flags that argparse leaves out of the namespace when they are not given.
_ONLY_WHEN_GIVEN = ("batch_size", "apply_chat_template", "fewshot_as_multiturn", "log_samples",
                    "predict_only", "check_integrity", "write_out", "show_config",
                    "trust_remote_code", "confirm_run_unsafe_code")
# slmbench's own fields: how the run is recorded, not what lm-eval runs.
_OURS = ("label", "store", "force", "fresh", "no_chat_template")


def _frozen(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class EvalSpec:
    model: str | None = None
    model_args: Mapping[str, Any] = field(default_factory=dict)
    tasks: tuple[str, ...] = ()
    limit: float | None = None
    samples: Any = None
    num_fewshot: int | None = None
    batch_size: int | str | None = None
    device: str | None = None
    apply_chat_template: bool | str | None = None
    fewshot_as_multiturn: bool | None = None
    system_instruction: str | None = None
    gen_kwargs: Mapping[str, Any] | None = None
    seed: tuple | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    include_path: tuple[str, ...] = ()
    output_path: str | None = None
    use_cache: str | None = None
    # Every other lm-eval `run` flag, as given (wandb_args, write_out, predict_only, ...).
    options: Mapping[str, Any] = field(default_factory=dict)
    label: str | None = None
    store: str | None = None
    force: bool = False
    fresh: bool = False
    no_chat_template: bool = False

    def __post_init__(self) -> None:
        tasks = self.tasks if not isinstance(self.tasks, str) else (self.tasks,)
        object.__setattr__(self, "tasks",
                           tuple(t for entry in tasks for t in str(entry).split(",") if t))
        if self.limit is not None:  # lm-eval parses --limit as a float; ids hash it so
            object.__setattr__(self, "limit", float(self.limit))
        if isinstance(self.include_path, str):
            object.__setattr__(self, "include_path", tuple(
                p for p in self.include_path.split(":") if p))
        for name in ("model_args", "metadata", "options"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        if self.seed is not None and not isinstance(self.seed, tuple):
            object.__setattr__(self, "seed", tuple(self.seed) if isinstance(
                self.seed, list) else (self.seed,))

    def with_(self, **changes: Any) -> EvalSpec:
        return replace(self, **changes)

    @classmethod
    def from_namespace(cls, args: argparse.Namespace, **ours: Any) -> EvalSpec:
        """The spec of a parsed ``lm-eval run`` command line (slmbench's flags in ``ours``)."""
        known = {f.name for f in fields(cls)} - {"options", *_OURS}
        values = vars(args)
        given = {k: v for k, v in values.items() if k in known and v is not None}
        options = {k: v for k, v in values.items()
                   if k not in known and k not in ("command", "func") and v is not None}
        if not isinstance(given.get("metadata", {}), dict):
            from harness.errors import SlmbenchError

            raise SlmbenchError(f"--metadata must be key=value pairs or a JSON object, got "
                                f"{given['metadata']!r}")
        if given.get("seed") is not None and isinstance(given["seed"], list):
            given["seed"] = tuple(given["seed"])
        return cls(**given, options=options, **ours)

    def lm_eval_namespace(self) -> argparse.Namespace:
        """The namespace lm-eval's ``EvaluatorConfig.from_cli`` reads (its defaults apply)."""
        values: dict[str, Any] = {
            "config": None, "model": self.model, "model_args": dict(self.model_args),
            "tasks": list(self.tasks), "limit": self.limit, "samples": self.samples,
            "num_fewshot": self.num_fewshot, "device": self.device,
            "system_instruction": self.system_instruction,
            "gen_kwargs": dict(self.gen_kwargs) if self.gen_kwargs is not None else None,
            "seed": list(self.seed) if self.seed is not None else None,
            "metadata": dict(self.metadata), "include_path": list(self.include_path) or None,
            "output_path": self.output_path, "use_cache": self.use_cache,
        }
        values.update(self.options)
        for name in _ONLY_WHEN_GIVEN:
            value = getattr(self, name, None)
            if value is None:
                value = self.options.get(name)
            if value is not None:
                values[name] = value
            else:
                values.pop(name, None)
        return argparse.Namespace(**values)
