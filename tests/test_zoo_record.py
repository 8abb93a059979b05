"""``slmbench zoo record``: a manifest's test metrics come from, and name, a stored eval run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.artefacts.zoo_manifest import load_manifest
from harness.cli import main
from harness.errors import SlmbenchError
from harness.runs import store
from harness.runs.store import write_run, write_samples
from harness.zoo.record import record_eval_runs


def _entry(name: str) -> dict:
    return {"name": name, "task": name, "path": name, "base_model": "embedded",
            "base_fingerprint": "x", "sha256": "0" * 64, "rank": 16, "alpha": 32,
            "target_modules": ["q_proj"], "size_mb": 9.8,
            "test_metrics": {name: {"value": 0.1}, "_wall_s": 3.0}}


def _eval_run(root: Path, run_id: str, adapters: str, tasks: dict,
              scored: dict | None = None) -> Path:
    folder = root / "eval" / run_id
    folder.mkdir(parents=True)
    write_samples(folder / "samples" / "x.jsonl", [{"id": "q0", "score": 1.0}])
    info = {task: {"metric": "exact_match,pass@1", "filter": "pass@1", "value": v,
                   "stderr": 0.05, "n": 100, "benchmark": task.removesuffix("_seen"),
                   "split": "train" if task.endswith("_seen") else "test"}
            for task, v in tasks.items()}
    write_run(folder, "eval", run_id, {"model": "hf-peft", "model_args": {"adapters": adapters}},
              ["samples/x.jsonl"], extra={"label": "embedded+zoo", "tasks": info, "model": {
                  "adapters": [{"name": n, "sha256": sha} for n, sha in (scored or {}).items()]}})
    return folder


def test_a_run_of_an_earlier_version_of_an_adapter_is_not_recorded_on_the_new_one(tmp_path):
    """A retrained adapter keeps its name: only runs that scored its weights count."""
    manifest = tmp_path / "zoo.yaml"
    manifest.write_text(yaml.safe_dump({"adapters": [_entry("teleqna")]}))
    old = _eval_run(tmp_path, "old", str(manifest), {"teleqna": 0.9}, {"teleqna": "1" * 64})
    new = _eval_run(tmp_path, "new", str(manifest), {"teleqna": 0.4}, {"teleqna": "0" * 64})
    record_eval_runs(manifest, [old, new])
    entry = load_manifest(manifest).adapters[0]
    assert entry.eval_runs == ["new"] and entry.test_metrics["teleqna"]["value"] == 0.4


@pytest.fixture(autouse=True)
def _quiet_store(monkeypatch):
    monkeypatch.setattr(store, "hardware", lambda: {"machine": "fixture"})
    monkeypatch.setattr(store, "package_versions", lambda: {})
    monkeypatch.setattr(store, "git_state", lambda: {"sha": None, "dirty": None})


def test_scores_go_to_the_entry_that_served_each_task(tmp_path, capsys):
    manifest = tmp_path / "zoo.yaml"
    manifest.write_text(yaml.safe_dump({"adapters": [_entry("teleqna"), _entry("oranbench")]}))
    unseen = _eval_run(tmp_path, "run1", str(manifest),
                       {"teleqna": 0.36, "oranbench": 0.41, "sixg_bench": 0.3})
    seen = _eval_run(tmp_path, "run2", str(manifest), {"teleqna_seen": 0.5})
    assert main(["zoo", "record", str(manifest), str(unseen), str(seen)]) == 0
    assert "recorded teleqna: teleqna 0.360, teleqna_seen 0.500" in capsys.readouterr().out
    entries = {e.name: e for e in load_manifest(manifest).adapters}
    assert entries["teleqna"].eval_runs == ["run1", "run2"]
    assert entries["teleqna"].test_metrics == {
        "teleqna": {"metric": "exact_match,pass@1", "value": 0.36, "stderr": 0.05, "n": 100,
                    "split": "test"},
        "teleqna_seen": {"metric": "exact_match,pass@1", "value": 0.5, "stderr": 0.05,
                         "n": 100, "split": "train"}}
    assert entries["oranbench"].eval_runs == ["run1"]  # sixg_bench had no adapter: ignored


def test_refuses_runs_it_cannot_vouch_for(tmp_path):
    manifest = tmp_path / "zoo.yaml"
    manifest.write_text(yaml.safe_dump({"adapters": [_entry("teleqna")]}))
    before = manifest.read_bytes()
    other = _eval_run(tmp_path, "other", str(tmp_path / "other.yaml"), {"teleqna": 0.9})
    with pytest.raises(SlmbenchError, match="evaluated adapters=.*other.yaml.*not"):
        record_eval_runs(manifest, [other])
    tampered = _eval_run(tmp_path, "tampered", str(manifest), {"teleqna": 0.9})
    (tampered / "samples" / "x.jsonl").write_text("{}\n")
    with pytest.raises(SlmbenchError, match="sha256 mismatch"):
        record_eval_runs(manifest, [tampered])
    with pytest.raises(SlmbenchError, match="not a run folder"):
        record_eval_runs(manifest, [tmp_path])
    assert manifest.read_bytes() == before  # nothing half-written


def test_entries_from_before_option_shuffling_read_as_not_shuffled(tmp_path):
    from harness.artefacts.zoo_manifest import write_manifest
    from harness.zoo.publish import entry_fields_from_record

    committed = load_manifest(Path(__file__).parents[1] / "adapters_zoo" / "embedded.yaml")
    assert committed.adapters and not any(e.permute_options for e in committed.adapters)
    manifest = tmp_path / "zoo.yaml"
    manifest.write_text(yaml.safe_dump({"adapters": [
        _entry("teleqna"), {**_entry("oranbench"), "permute_options": True}]}))
    entries = load_manifest(manifest).adapters
    assert [e.permute_options for e in entries] == [False, True]
    write_manifest(manifest, entries)
    assert [e.permute_options for e in load_manifest(manifest).adapters] == [False, True]
    manifest.write_text(yaml.safe_dump({"adapters": [{**_entry("x"), "permute_option": True}]}))
    with pytest.raises(SlmbenchError, match="entry 0: .*permute_option"):
        load_manifest(manifest)

    record = {"run": {"config": {"base_model": "embedded", "rank": 4, "alpha": 8, "loss": "full",
                                 "target_modules": ["q_proj"]}},
              "data": {"train_sha256": "0" * 64, "n_train": 8},
              "train": {"best_val_loss": 1.0, "best_step": 2}}
    assert entry_fields_from_record(record)["permute_options"] is False  # an older record
    record["data"]["option_permutation"] = {"permute_options": True}
    assert entry_fields_from_record(record)["permute_options"] is True
