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


def test_each_model_class_says_what_its_pretrained_names():
    """slmbench's defaults (the embedded model, a zoo's base) follow the class, not a name list:
    lm-eval's aliases and slmbench's subclasses resolve through the class hierarchy, a model
    that declares nothing gets no defaults, and a name lm-eval does not know is left to it."""
    from harness.models import GGUF, TRANSFORMERS, pretrained_format

    for name in ("hf", "hf-auto", "huggingface", "slm-hf", "hf-peft"):
        assert pretrained_format(name) == TRANSFORMERS, name
    for name in ("llama-cpp", "llama-cpp-peft"):
        assert pretrained_format(name) == GGUF, name
    assert pretrained_format("dummy") is None
    assert pretrained_format("no-such-model") is None
    if importlib.util.find_spec("vllm") is not None:
        assert pretrained_format("vllm") == pretrained_format("vllm-peft") == TRANSFORMERS
    else:
        assert pretrained_format("vllm") is None  # lm-eval's own error comes when it loads
        with pytest.raises(SlmbenchError, match="vllm-peft needs"):
            pretrained_format("vllm-peft")


def test_a_routed_engine_must_say_how_it_switches_adapters():
    """TaskRouting.using is abstract: a routed engine without it cannot be built (it would
    otherwise answer every task on the plain backbone)."""
    import contextlib

    from harness.models.task_routing import TaskRouting

    class Forgot(TaskRouting):
        pass

    class Switches(TaskRouting):
        def __init__(self):
            self.seen = []

        @contextlib.contextmanager
        def using(self, name):
            self.seen.append(name)
            yield

    with pytest.raises(TypeError, match="using"):
        Forgot()
    engine = Switches()
    with engine.using("teleqna"):
        pass
    assert engine.seen == ["teleqna"]


def test_a_failing_results_logger_never_fails_the_run():
    """As lm-eval's run command: W&B or Trackio failing is logged, the scores are kept."""
    from harness.evaluation.run import _log_to

    calls = []

    class Broken:
        def post_init(self, results):
            raise RuntimeError("no network")

    class Fine:
        def post_init(self, results):
            calls.append(("post_init", results["n"]))

        def log_eval_result(self):
            calls.append(("result",))

        def log_eval_samples(self, samples):
            calls.append(("samples", len(samples)))

    _log_to([Broken(), Fine()], {"n": 3}, {"teleqna": []})
    assert calls == [("post_init", 3), ("result",), ("samples", 1)]
