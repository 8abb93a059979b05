"""Zoo adapters in, one adapter made by peft's ``add_weighted_adapter`` out (merge, reduce).

Adapters are loaded side by side into one PeftModel; the adapter made from them is published
into a manifest. Merging and rank reduction both go through peft's weighted-adapter API rather
than LoRA arithmetic of their own, so they combine as peft's merges do (scaling, fan-in/fan-out,
rank patterns).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness.artefacts.zoo_manifest import AdapterEntry, Manifest, verify_entry
from harness.zoo.publish import publish_adapter


def load_side_by_side(manifest: Manifest, loads: list[tuple[AdapterEntry, str]]):
    """The manifest's backbone with each (entry, adapter name) loaded.

    Each is checked against its sha256 and base model first, as every loader of the zoo does.
    """
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from harness.artefacts.embedded import resolve_pretrained

    pretrained = resolve_pretrained(manifest.base_model)
    base = AutoModelForCausalLM.from_pretrained(pretrained)
    model = None
    for entry, adapter_name in loads:
        folder = str(verify_entry(manifest, entry, pretrained, base.config))
        if model is None:
            model = PeftModel.from_pretrained(base, folder, adapter_name=adapter_name)
        else:
            model.load_adapter(folder, adapter_name=adapter_name)
    return model


def publish_made_adapter(model, made: str, base_model: str, out_manifest: Path, name: str,
                         task: str, fields: dict, routes: list[str]) -> AdapterEntry:
    """Publish the adapter ``made`` of ``model`` alone as ``name``.

    Its rank, alpha and modules come from the config peft gave it, not from its sources.
    """
    from harness.train.lora import sort_set_fields

    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, selected_adapters=[made])
        saved = Path(tmp) / made
        folder = saved if saved.is_dir() else Path(tmp)
        sort_set_fields(folder)
        config = model.peft_config[made]
        fields = {"base_model": base_model, "rank": int(config.r),
                  "alpha": int(config.lora_alpha),
                  "target_modules": sorted(config.target_modules), **fields}
        return publish_adapter(folder, out_manifest, name, task, fields, routes=routes)
