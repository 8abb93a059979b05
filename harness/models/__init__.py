"""lm-eval model classes that slmbench adds, registered lazily by name, and what each reads.

A model's class says what its ``pretrained=`` names (``PRETRAINED_FORMAT``), so slmbench's
defaults (the embedded model, its chat template, a zoo's base) follow a new model class
without a list of names to keep in step. lm-eval's own classes cannot carry the attribute;
the two whose ``pretrained=`` is a transformers checkpoint are named here, by class, so their
aliases (``hf``, ``hf-auto``, ``huggingface``) and any subclass follow.
"""

from __future__ import annotations

# name -> "module:Class"; lm-eval imports the module only when the model is used.
MODELS = {
    "slm-hf": "harness.models.hf_lm:EmbeddedAwareHFLM",
    "hf-peft": "harness.models.peft_router:RoutedPeftLM",
    "llama-cpp": "harness.models.llama_cpp_lm:LlamaCppLM",
    "llama-cpp-peft": "harness.models.llama_cpp_peft:LlamaCppPeftLM",
    "vllm-peft": "harness.models.vllm_peft:RoutedVLLM",
}

TRANSFORMERS = "transformers"  # pretrained= is a transformers checkpoint (hub id or folder)
GGUF = "gguf"  # pretrained= is a .gguf file
LM_EVAL_FORMATS = {
    "lm_eval.models.huggingface.HFLM": TRANSFORMERS,
    "lm_eval.models.vllm_causallms.VLLM": TRANSFORMERS,
}


def register_models() -> None:
    """Register slmbench's models with lm-eval (idempotent)."""
    import lm_eval.models  # noqa: F401 - lm-eval fills its registry only while it is empty
    from lm_eval.api.registry import model_registry

    for name, target in MODELS.items():
        if name not in model_registry:
            model_registry.register(name, target=target)


def pretrained_format(name: str) -> str | None:
    """What the model registered as ``name`` reads from ``pretrained=``, from its class.

    None for a model that declares nothing, or whose class cannot be imported here (an
    unknown name, an engine not installed): lm-eval says why when it loads it. slmbench's own
    one-line errors (``vllm-peft`` without vLLM) pass through.
    """
    from lm_eval.api.registry import get_model

    from harness.errors import SlmbenchError

    register_models()
    try:
        cls = get_model(name)
    except SlmbenchError:
        raise
    except Exception:  # noqa: BLE001 - lm-eval reports it, in its words, when the model loads
        return None
    for klass in cls.__mro__:
        declared = (vars(klass).get("PRETRAINED_FORMAT")
                    or LM_EVAL_FORMATS.get(f"{klass.__module__}.{klass.__qualname__}"))
        if declared:
            return declared
    return None
