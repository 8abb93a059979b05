"""Put a trained adapter into the zoo: fp16 safetensors, hashed, recorded in a manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from harness.artefacts.zoo_manifest import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    AdapterEntry,
    base_fingerprint,
    describe_weights,
    upsert_entry,
)
from harness.runs.atomic import replace_dir_atomic

TRAIN_RECORD = "train_record.json"  # harness.train.lora.RECORD, beside the adapter it made
TRAIN_OPTIONS = "train_options.json"  # harness.train.lora.TRAIN_OPTIONS, in the adapter folder


def entry_fields_from_record(record: dict) -> dict:
    """Manifest fields of an adapter trained by ``slmbench train`` (its train_record.json)."""
    config = record["run"]["config"]
    return {
        "base_model": config["base_model"], "rank": config["rank"], "alpha": config["alpha"],
        "target_modules": list(config["target_modules"]),
        "train_data_sha256": record["data"]["train_sha256"],
        "val_loss": record["train"]["best_val_loss"],
        "chat_template": config.get("chat_template") is not False,
        "notes": f"loss={config['loss']} best_step={record['train']['best_step']} "
                 f"train_examples={record['data']['n_train']}",
        "train_subset": record["data"].get("train_subset", {}),
        "permute_options": bool(record["data"].get("option_permutation", {})
                                .get("permute_options", False)),
    }


def publish_adapter(adapter_dir: Path, manifest: Path, name: str, task: str,
                    fields: dict, test_metrics: dict | None = None,
                    routes: list[str] | None = None,
                    eval_runs: list[str] | None = None) -> AdapterEntry:
    """Copy ``adapter_dir`` into ``<manifest stem>/<name>/`` and upsert its manifest entry.

    Weights are stored in fp16: half the bytes, and peft upcasts them on load.
    """
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoConfig

    from harness.artefacts.embedded import resolve_pretrained

    manifest = Path(manifest)
    relative = Path(manifest.stem) / name
    target = manifest.parent / relative
    staged = target.with_name(target.name + ".tmp")
    if staged.exists():
        shutil.rmtree(staged)
    staged.mkdir(parents=True)
    weights = load_file(Path(adapter_dir) / WEIGHTS_FILE)
    save_file({k: v.to(torch.float16) if v.is_floating_point() else v
               for k, v in weights.items()}, staged / WEIGHTS_FILE)
    adapter_config = json.loads((Path(adapter_dir) / CONFIG_FILE).read_text())
    adapter_config["base_model_name_or_path"] = fields["base_model"]  # not a local cache path
    (staged / CONFIG_FILE).write_text(json.dumps(adapter_config, indent=2))
    options = Path(adapter_dir) / TRAIN_OPTIONS
    if options.is_file():  # how it was trained (option shuffling), beside its config
        shutil.copy(options, staged / TRAIN_OPTIONS)
    record = Path(adapter_dir).parent / TRAIN_RECORD
    if record.is_file():  # the full training config and curves: what a retrain starts from
        shutil.copy(record, staged / TRAIN_RECORD)
    replace_dir_atomic(staged, target)
    sha, size = describe_weights(target)
    base_config = AutoConfig.from_pretrained(resolve_pretrained(fields["base_model"]))
    entry = AdapterEntry(name=name, task=task, path=str(relative),
                         base_fingerprint=base_fingerprint(base_config), sha256=sha,
                         size_mb=size, test_metrics=test_metrics or {}, routes=routes or [],
                         eval_runs=list(eval_runs or []), **fields)
    upsert_entry(manifest, entry)
    return entry
