"""lm-eval model classes that slmbench adds, registered lazily by name."""

from __future__ import annotations

# name -> "module:Class"; lm-eval imports the module only when the model is used.
MODELS = {
    "slm-hf": "harness.models.hf_lm:EmbeddedAwareHFLM",
    "hf-peft": "harness.models.peft_router:RoutedPeftLM",
    "llama-cpp": "harness.models.llama_cpp_lm:LlamaCppLM",
    "llama-cpp-peft": "harness.models.llama_cpp_peft:LlamaCppPeftLM",
    "vllm-peft": "harness.models.vllm_peft:RoutedVLLM",
}


def register_models() -> None:
    """Register slmbench's models with lm-eval (idempotent)."""
    import lm_eval.models  # noqa: F401 - lm-eval fills its registry only while it is empty
    from lm_eval.api.registry import model_registry

    for name, target in MODELS.items():
        if name not in model_registry:
            model_registry.register(name, target=target)
