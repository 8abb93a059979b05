"""Seen questions are the ones the adapter trained on (the study's Table 2), not the whole split."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml
from conftest import shared_data_or_skip

from harness.data.seen import seen_docs, subset_indices, train_subset_record
from harness.errors import SlmbenchError

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "adapters_zoo" / "embedded.yaml"


def test_subset_indices_pick_what_sampling_the_examples_picks():
    rows = [f"example {i}" for i in range(300)]
    for cap, seed in ((40, 42), (299, 7), (1, 0)):
        picked = [rows[i] for i in subset_indices(len(rows), cap, seed)]
        assert picked == random.Random(seed).sample(rows, cap)
    assert subset_indices(10, None, 42) == list(range(10))
    assert subset_indices(10, 10, 42) == list(range(10))  # no draw when the cap covers all


def _manifest(tmp_path: Path, subset: dict | None) -> Path:
    entry = {"name": "a", "task": "teleqna", "path": "a", "base_model": "embedded",
             "base_fingerprint": "x", "sha256": "0" * 64, "rank": 4, "alpha": 8,
             "target_modules": ["q_proj"], "size_mb": 1.0}
    if subset is not None:
        entry["train_subset"] = subset
    path = tmp_path / "zoo.yaml"
    path.write_text(yaml.safe_dump({"adapters": [entry]}))
    return path


def test_seen_docs_follow_the_manifest(tmp_path):
    train = [{"id": i} for i in range(50)]
    manifest = _manifest(tmp_path, train_subset_record(42, 42, {"teleqna": 8}))
    seen = seen_docs("teleqna", train, str(manifest), 42)
    assert seen == [train[i] for i in random.Random(42).sample(range(50), 8)]
    # a benchmark no adapter serves keeps its whole train split
    assert seen_docs("oranbench", train, str(manifest), 42) == train
    # the record itself may be passed (what `slmbench train --evaluate` does)
    assert seen_docs("teleqna", train, train_subset_record(42, 42, {"teleqna": 8}), 42) == seen


def test_seen_docs_refuse_what_they_cannot_know(tmp_path):
    train = [{"id": i} for i in range(50)]
    with pytest.raises(SlmbenchError, match="does not record its train_subset"):
        seen_docs("teleqna", train, str(_manifest(tmp_path, None)), 42)
    with pytest.raises(SlmbenchError, match="split seed 42, this run splits with 7"):
        seen_docs("teleqna", train, train_subset_record(42, 42, {"teleqna": 8}), 7)
    with pytest.raises(SlmbenchError, match="malformed train_subset"):
        seen_docs("teleqna", train, {"examples": {"teleqna": 3}}, 42)


@pytest.mark.parametrize("name", ["teleqna", "oranbench", "ecommerce_intent"])
def test_committed_adapters_seen_tasks_are_their_training_examples(name):
    """Re-deriving the seen questions from the manifest reproduces the recorded training hash."""
    data_dir = shared_data_or_skip()
    from lm_eval.tasks import TaskManager
    from transformers import AutoTokenizer

    from harness.artefacts.embedded import resolve_pretrained
    from harness.artefacts.zoo_manifest import load_manifest
    from harness.hashing import sha256_json
    from harness.paths import tasks_dir
    from harness.prompts import completion_text, render_prompt

    entry = next(e for e in load_manifest(ZOO).adapters if e.name == name)
    manager = TaskManager(include_path=str(tasks_dir()),
                          metadata={"data_dir": str(data_dir), "seen_from": str(ZOO)})
    task = manager.load([f"{name}_seen"])["tasks"][f"{name}_seen"]
    docs = list(task.test_docs())
    assert len(docs) == entry.train_subset["examples"][name]
    tokenizer = AutoTokenizer.from_pretrained(resolve_pretrained("embedded"))
    pairs = [(render_prompt(tokenizer, task.doc_to_text(d), True), completion_text(name, task, d))
             for d in docs]
    assert sha256_json(pairs) == entry.train_data_sha256


@pytest.mark.parametrize("seen_from, message", [
    ('{"seed": 1', "seen_from: not a JSON object"),
    ("/nope/zoo.yaml", "adapter manifest /nope/zoo.yaml does not exist"),
    ({"seed": "x", "split_seed": 42, "examples": {"teleqna": 5}}, "malformed train_subset"),
])
def test_a_bad_seen_from_is_one_line(seen_from, message):
    with pytest.raises(SlmbenchError, match=message):
        seen_docs("teleqna", [{"id": str(i)} for i in range(10)], seen_from, 42)
