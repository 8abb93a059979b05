"""Cut zoo adapters to a lower rank, for an edge box that pays for the rank at every token.

Each adapted matrix's update is replaced by its best rank-r approximation (truncated SVD).
peft does the factorisation: ``add_weighted_adapter(combination_type="svd", svd_rank=r)``.
peft turns a one-adapter call into a plain linear copy, so the adapter is loaded twice under
two names at weight 0.5 each: their sum is the adapter's own update, which peft then
factorises. The reduced adapter keeps its source's name, task, routes and training records, so
a manifest of reduced adapters routes exactly as its source does and pairs with it question by
question.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.artefacts.zoo_manifest import AdapterEntry, load_manifest
from harness.errors import SlmbenchError
from harness.train.weighted_adapter import load_side_by_side, publish_made_adapter

_TWIN = "__twin"
_REDUCED = "__reduced"


@dataclass(frozen=True)
class ReducedAdapter:
    entry: AdapterEntry
    source_rank: int
    # ||ΔW_r||² / ||ΔW||² summed over every adapted matrix: the share of the update kept
    kept_energy: float


def reduce_zoo(zoo: Path, rank: int, out_manifest: Path,
               names: list[str] | None = None) -> list[ReducedAdapter]:
    manifest = load_manifest(zoo)
    if Path(out_manifest).resolve() == manifest.path.resolve():
        raise SlmbenchError(f"reduce-rank: --out {out_manifest} is the source manifest; "
                            "publish the reduced adapters into another one")
    by_name = {a.name: a for a in manifest.adapters}
    names = names or list(by_name)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SlmbenchError(f"reduce-rank: {zoo} has no adapter {unknown} "
                            f"(known: {', '.join(by_name)})")
    not_lower = {n: by_name[n].rank for n in names if not 0 < rank < by_name[n].rank}
    if not_lower:
        raise SlmbenchError(f"reduce-rank: --rank {rank} is not below the rank of {not_lower}")
    return [_reduce_one(manifest, by_name[n], rank, Path(out_manifest)) for n in names]


def _reduce_one(manifest, entry: AdapterEntry, rank: int, out_manifest: Path) -> ReducedAdapter:
    model = load_side_by_side(manifest, [(entry, entry.name), (entry, entry.name + _TWIN)])
    made = entry.name + _REDUCED
    model.add_weighted_adapter([entry.name, entry.name + _TWIN], [0.5, 0.5], made,
                               combination_type="svd", svd_rank=rank)
    kept = _kept_energy(model, entry.name, made)
    fields = {
        "train_data_sha256": entry.train_data_sha256, "val_loss": None,
        "chat_template": entry.chat_template, "permute_options": entry.permute_options,
        "train_subset": entry.train_subset,
        "notes": f"rank {entry.rank} -> {rank} (truncated SVD, peft svd) of {entry.name} "
                 f"sha256 {entry.sha256[:12]}; kept {kept:.1%} of its update's energy",
    }
    published = publish_made_adapter(model, made, manifest.base_model, out_manifest,
                                     entry.name, entry.task, fields, routes=entry.routes)
    return ReducedAdapter(published, entry.rank, kept)


def _kept_energy(model, source: str, reduced: str) -> float:
    """The share of the update a cut keeps, to be read beside its paired accuracy.

    A cut that keeps most of the update should answer as its source does; one that keeps
    little is another adapter, whatever its accuracy reads.
    """
    import torch
    from peft.tuners.lora import LoraLayer

    kept = total = 0.0
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LoraLayer) and reduced in module.lora_A:
                kept += float(module.get_delta_weight(reduced).float().pow(2).sum())
                total += float(module.get_delta_weight(source).float().pow(2).sum())
    return kept / total if total else 1.0
