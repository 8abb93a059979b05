"""The deterministic 60/20/20 train/validation/test split of the reference protocol.

Records are ordered by a seeded hash of their stable id and cut at 60% and 80%. The
split therefore depends only on the set of questions and the seed, never on the order
the rows arrive in, and the proportions are exact (floor for train and validation).
"""

from __future__ import annotations

import hashlib
from typing import Any

SPLITS = ("train", "validation", "test")
DEFAULT_SEED = 42
FRACTIONS = (0.6, 0.2, 0.2)


def _rank_key(record_id: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{record_id}".encode()).hexdigest()


def split_records(
    records: list[dict[str, Any]], seed: int = DEFAULT_SEED
) -> dict[str, list[dict[str, Any]]]:
    """Partition records into train/validation/test; ids must be unique.

    Synthetic records carry a ``scenario``: whole scenarios are then split 60/20/20, so
    paraphrases of one scenario never sit on both sides of the train/test line. Records
    without one are their own group, which is the reference protocol's per-question split.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(str(record.get("scenario") or record["id"]), []).append(record)
    ordered = sorted(groups, key=lambda g: _rank_key(g, seed))
    n = len(ordered)
    n_train = int(n * FRACTIONS[0])
    n_val = int(n * FRACTIONS[1])
    cuts = {"train": ordered[:n_train], "validation": ordered[n_train : n_train + n_val],
            "test": ordered[n_train + n_val :]}
    # Within a split, records are ordered by their own seeded hash (not grouped by scenario),
    # so ``--limit N`` takes a spread of scenarios rather than the first few.
    return {split: sorted((r for g in keys for r in groups[g]),
                          key=lambda r: _rank_key(r["id"], seed))
            for split, keys in cuts.items()}


def held_out_splits(
    splits: dict[str, list[dict[str, Any]]], seed: int = DEFAULT_SEED
) -> dict[str, list[dict[str, Any]]]:
    """Every record in the test split, ordered as a test split is (by its seeded hash).

    The rows of a held-out set were never trained on, so cutting them 60/20/20 would score a
    fifth of them for nothing. Train and validation are left empty: few-shot examples drawn
    from the same file would show the model questions it is then asked.
    """
    everything = [r for split in SPLITS for r in splits.get(split, [])]
    return {"train": [], "validation": [],
            "test": sorted(everything, key=lambda r: _rank_key(r["id"], seed))}
