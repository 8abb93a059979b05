"""Merge per-task adapters of a zoo into one generalist adapter (peft's weighted-adapter API).

``linear``, ``ties``, ``dare_linear`` and ``dare_ties`` combine the LoRA factors of adapters of
equal rank; ``cat`` stacks them (rank = sum) and is exact; ``svd`` re-factorises the summed
deltas. The merged adapter is published into a manifest that routes every source task to it,
so it is evaluated exactly like the per-task adapters: ``--model hf-peft
--model_args adapters=<that manifest>``.
"""

from __future__ import annotations

from pathlib import Path

from harness.artefacts.zoo_manifest import AdapterEntry, load_manifest
from harness.errors import SlmbenchError
from harness.hashing import sha256_json
from harness.train.weighted_adapter import load_side_by_side, publish_made_adapter

METHODS = ("linear", "ties", "dare_linear", "dare_ties", "cat", "svd", "magnitude_prune")
_NEEDS_DENSITY = {"ties", "dare_linear", "dare_ties", "magnitude_prune"}
_SAME_RANK = {"linear", "ties", "dare_linear", "dare_ties", "magnitude_prune"}


def merge_adapters(zoo: Path, names: list[str], method: str, out_manifest: Path,
                   merged_name: str, weights: list[float] | None = None,
                   density: float = 0.5) -> AdapterEntry:
    if method not in METHODS:
        raise SlmbenchError(f"merge: unknown --method {method!r} (one of {', '.join(METHODS)})")
    if not 0 < density <= 1:
        raise SlmbenchError(f"merge: --density must be in (0, 1], got {density}")
    manifest = load_manifest(zoo)
    by_name = {a.name: a for a in manifest.adapters}
    missing = [n for n in names if n not in by_name]
    if missing or len(names) < 2:
        raise SlmbenchError(f"merge: need >= 2 adapters of {zoo}; unknown: {missing} "
                            f"(known: {', '.join(by_name)})")
    weights = weights or [1.0] * len(names)
    if len(weights) != len(names):
        raise SlmbenchError(f"merge: {len(weights)} --weights for {len(names)} adapters")
    sources = [by_name[n] for n in names]
    if method in _SAME_RANK and len({a.rank for a in sources}) > 1:
        raise SlmbenchError(f"merge: {method} needs equal ranks, got "
                            f"{ {a.name: a.rank for a in sources} }; use cat or svd")
    model = load_side_by_side(manifest, [(entry, entry.name) for entry in sources])
    kwargs = {"density": density} if method in _NEEDS_DENSITY else {}
    model.add_weighted_adapter(names, weights, merged_name, combination_type=method, **kwargs)
    fields = {
        "train_data_sha256": sha256_json(sorted(a.train_data_sha256 for a in sources)),
        "val_loss": None, "chat_template": all(a.chat_template for a in sources),
        "permute_options": all(a.permute_options for a in sources),
        "notes": f"{method} merge of {', '.join(names)} weights={weights}"
                 + (f" density={density}" if kwargs else ""),
    }
    return publish_made_adapter(model, merged_name, manifest.base_model, out_manifest,
                                merged_name, "+".join(a.task for a in sources), fields,
                                routes=[r for a in sources for r in a.routes])
