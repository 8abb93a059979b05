"""Which train-split questions an adapter actually learned from ("seen" in the study's Table 2).

Training on a CPU budget uses a seeded subset of a train split, so "the train split" is not
"what the adapter saw": a seen score over the whole split mostly measures unseen questions.
Training and the ``*_seen`` tasks therefore draw the subset through the same function, and a
zoo entry records the draw (``train_subset``: seed, split seed, cap per benchmark), so that
``--metadata seen_from=<manifest>`` (implied by ``hf-peft``'s ``adapters=``) scores each
``*_seen`` task on exactly its adapter's training questions, in training order: ``--limit N``
takes the first N of them.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from harness.errors import SlmbenchError


def subset_indices(n: int, cap: int | None, seed: int) -> list[int]:
    """Indices of the examples a run with this cap and seed trains on, in training order.

    ``random.sample`` draws positions from the population's length alone, so sampling indices
    and sampling the examples themselves with the same seed pick the same rows.
    """
    if cap is None or n <= cap:
        return list(range(n))
    return random.Random(seed).sample(range(n), cap)


def train_subset_record(seed: int, split_seed: int, caps: dict[str, int | None]) -> dict:
    """The ``train_subset`` field of a zoo entry."""
    return {"seed": int(seed), "split_seed": int(split_seed), "examples": dict(caps)}


def _subset_from(seen_from: Any, benchmark: str) -> dict | None:
    """The training draw recorded for ``benchmark`` by ``seen_from``, or None (no adapter)."""
    if isinstance(seen_from, dict):
        return seen_from
    text = str(seen_from)
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise SlmbenchError(f"--metadata seen_from: not a JSON object ({err})") from err
    from harness.artefacts.zoo_manifest import load_manifest

    manifest = load_manifest(Path(text))
    entry = manifest.route(benchmark)
    if entry is None:
        return None
    if not entry.train_subset:
        raise SlmbenchError(
            f"adapter manifest {manifest.path}: entry {entry.name!r} does not record its "
            "train_subset, so its seen questions are unknown (re-publish it with slmbench train)")
    return entry.train_subset


def seen_docs(benchmark: str, train: list[dict], seen_from: Any,
              split_seed: int) -> list[dict]:
    """The train-split records ``seen_from``'s adapter for ``benchmark`` trained on."""
    subset = _subset_from(seen_from, benchmark)
    if subset is None:
        return train
    try:
        examples = subset["examples"]
        if benchmark not in examples:
            return train
        cap, seed, trained_split_seed = examples[benchmark], int(subset["seed"]), \
            int(subset["split_seed"])
    except (KeyError, TypeError, ValueError) as err:
        raise SlmbenchError(f"--metadata seen_from: malformed train_subset {subset!r}") from err
    if trained_split_seed != int(split_seed):
        raise SlmbenchError(
            f"{benchmark}: the adapter was trained on split seed {trained_split_seed}, this run "
            f"splits with {split_seed}: its seen questions are not in this train split")
    return [train[i] for i in subset_indices(len(train), cap, seed)]
