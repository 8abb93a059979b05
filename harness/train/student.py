"""A smaller student made from a checkpoint's own layers, for distillation offline.

The only pretrained model here is the embedded SmolLM2-135M, so a real student is built from
it: keep a subset of its decoder layers (evenly spaced, first and last always kept, as in
layer-dropping compression), with the embeddings, final norm and head unchanged. The student
then shares the teacher's tokenizer and vocabulary, and starts from weights that already
model language, instead of from noise.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import SlmbenchError

MARKER = "slmbench_student.json"


def kept_layers(total: int, keep: int) -> list[int]:
    """``keep`` evenly spaced layer indices out of ``total``, first and last included."""
    if not 1 <= keep <= total:
        raise SlmbenchError(f"student: --student-layers must be in 1..{total}, got {keep}")
    if keep == 1:
        return [total - 1]
    return sorted({round(i * (total - 1) / (keep - 1)) for i in range(keep)})


def build_pruned_student(source: str | Path, out: str | Path, keep: int) -> Path:
    """Save a copy of ``source`` with only ``kept_layers`` of its decoder layers into ``out``."""
    import json

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(out)
    if (out / MARKER).is_file():
        return out
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None:
        raise SlmbenchError(f"student: {source} has no model.layers to prune (not a decoder "
                            "of the Llama/Qwen family)")
    total = len(layers)
    keep_idx = kept_layers(total, keep)
    model.model.layers = torch.nn.ModuleList([layers[i] for i in keep_idx])
    for new, layer in enumerate(model.model.layers):
        if hasattr(layer, "self_attn") and hasattr(layer.self_attn, "layer_idx"):
            layer.self_attn.layer_idx = new  # the KV cache is indexed by position in the stack
    model.config.num_hidden_layers = len(keep_idx)
    if isinstance(getattr(model.config, "layer_types", None), list):
        model.config.layer_types = [model.config.layer_types[i] for i in keep_idx]
    staged = out.with_name(out.name + ".partial")
    model.save_pretrained(staged)
    AutoTokenizer.from_pretrained(source).save_pretrained(staged)
    (staged / MARKER).write_text(json.dumps({"source": str(source), "layers_of_source": total,
                                             "kept": keep_idx}, indent=2) + "\n")
    if out.exists():
        import shutil

        shutil.rmtree(out)
    staged.rename(out)
    return out


def fold_student_adapter(base: str | Path, adapter: str | Path) -> Path:
    """``base`` with an SFT adapter folded in, built once into the cache (content-named).

    The folder is named by the adapter weights' sha256, so a retrained adapter gets a new
    student and the run identity (which fingerprints the weights) follows it.
    """
    from harness.artefacts.embedded import resolve_pretrained
    from harness.artefacts.lora_fold import fold_adapter_into
    from harness.hashing import file_digest
    from harness.paths import cache_dir

    adapter = Path(adapter)
    weights = adapter / "adapter_model.safetensors"
    if not weights.is_file():
        raise SlmbenchError(f"student: --student-adapter {adapter} has no "
                            "adapter_model.safetensors")
    source = Path(resolve_pretrained(str(base)))
    out = cache_dir() / "students" / f"{source.name}+sft-{file_digest(weights)[:12]}"
    if (out / "config.json").is_file():
        return out
    return fold_adapter_into(source, adapter, out, overwrite=True)
