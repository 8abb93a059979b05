"""One model registry: the entry points lm-eval discovers and the lazy map slmbench registers
name the same classes, and every one of them resolves (vllm-peft, where vLLM is missing,
to its one-line error)."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import pytest
import tomllib

from harness.errors import SlmbenchError
from harness.models import MODELS

NEEDS = {"vllm-peft": "vllm"}  # models whose class is built only where their engine is


def _resolve(name: str, target: str):
    module, cls = target.split(":")
    engine = NEEDS.get(name)
    if engine and importlib.util.find_spec(engine) is None:
        with pytest.raises(SlmbenchError, match=f"{name} needs"):
            getattr(importlib.import_module(module), cls)
        return None
    return getattr(importlib.import_module(module), cls)


def test_entry_points_and_the_lazy_map_agree_and_resolve():
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    entry_points = pyproject["project"]["entry-points"]["lm_eval.models"]
    assert entry_points == MODELS
    for name, target in MODELS.items():
        found = _resolve(name, target)
        assert found is None or isinstance(found, type), name


def test_registered_names_build_through_lm_eval():
    from lm_eval.api.registry import get_model

    from harness.models import register_models

    register_models()
    for name, target in MODELS.items():
        if _resolve(name, target) is None:
            continue  # its engine is not installed here; the error was checked above
        got = get_model(name)
        assert f"{got.__module__}:{got.__name__}" == target
