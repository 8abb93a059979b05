"""One model registry: the entry points lm-eval discovers and the lazy map slmbench registers
name the same classes, and every one of them resolves."""

from __future__ import annotations

import importlib
from pathlib import Path

import tomllib

from harness.models import MODELS


def test_entry_points_and_the_lazy_map_agree_and_resolve():
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    entry_points = pyproject["project"]["entry-points"]["lm_eval.models"]
    assert entry_points == MODELS
    for name, target in MODELS.items():
        module, cls = target.split(":")
        assert isinstance(getattr(importlib.import_module(module), cls), type), name


def test_registered_names_build_through_lm_eval():
    from lm_eval.api.registry import get_model

    from harness.models import register_models

    register_models()
    for name, target in MODELS.items():
        got = get_model(name)
        assert f"{got.__module__}:{got.__name__}" == target
