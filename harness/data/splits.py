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
    """Partition records into train/validation/test; ids must be unique."""
    ordered = sorted(records, key=lambda r: _rank_key(r["id"], seed))
    n = len(ordered)
    n_train = int(n * FRACTIONS[0])
    n_val = int(n * FRACTIONS[1])
    return {
        "train": ordered[:n_train],
        "validation": ordered[n_train : n_train + n_val],
        "test": ordered[n_train + n_val :],
    }
