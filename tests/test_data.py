"""Importers, canonical records, bad rows and the deterministic split."""

from __future__ import annotations

import json
import random

import pytest
from conftest import shared_data_or_skip, write_fixture_benchmarks

from harness.data.benchmarks import BENCHMARKS
from harness.data.importers import read_oranbench_json, read_teleqna_txt
from harness.data.records import RowError, make_record, stable_id
from harness.data.source import (
    build_records,
    load_splits,
    load_splits_and_report,
    load_task_dataset,
)
from harness.data.splits import split_records
from harness.errors import SlmbenchError

# --- importers on the real upstream files -------------------------------------------------


def test_teleqna_importer_on_the_real_file():
    root = shared_data_or_skip()
    rows = list(read_teleqna_txt(root / "teleqna" / "TeleQnA.txt"))
    assert len(rows) == 10_000
    records, report = build_records(BENCHMARKS["teleqna"], rows, "TeleQnA.txt")
    assert report.kept + report.duplicates + len(report.skipped) == 10_000
    first = json.loads((root / "teleqna" / "TeleQnA.txt").read_text())["question 0"]
    rec = next(r for r in records if r["question"] == first["question"])
    # "option 2: ..." -> 0-based index 1, and the text agrees with the upstream answer
    assert rec["answer"] == 1
    assert first["answer"].endswith(rec["choices"][rec["answer"]])
    assert rec["subject"] == "Standards specifications"
    assert {len(r["choices"]) for r in records} <= {2, 3, 4, 5}


def test_oranbench_importer_strips_prefixes_and_counts_upstream_defects():
    root = shared_data_or_skip()
    rows = list(read_oranbench_json(root / "oranbench" / "fin_E.json"))
    rows += list(read_oranbench_json(root / "oranbench" / "fin_M.json"))
    records, report = build_records(BENCHMARKS["oranbench"], rows, "fin_*.json")
    assert report.kept > 10_000
    assert not any(c[:3] in ("1. ", "2. ") for r in records for c in r["choices"])
    # the upstream file has rows with an empty question; they are skipped, named, counted
    assert report.skipped and all(" line " in s for s in report.skipped)
    first = records[0] if records[0]["question"].startswith("Which O-RAN Working Group") else None
    assert first is None or first["choices"][first["answer"]] == "O-RAN.WG1"


def test_ot_full_schema_round_trip(tmp_path):
    root = write_fixture_benchmarks(tmp_path)
    for name in ("sixg_bench", "srsranbench", "teletables", "three_gpp_tsg", "telemath",
                 "telelogs"):
        parts, report = load_splits_and_report(name, data_dir=root)
        records = [r for s in parts.values() for r in s]
        assert len(records) == report.kept > 0
        for r in records:
            again = make_record(kind=BENCHMARKS[name].kind, question=r["question"],
                                choices=r["choices"], answer=r["answer"], subject=r["subject"])
            assert again["id"] == r["id"]
            assert again["answer"] == r["answer"]
    tsg = load_splits("three_gpp_tsg", data_dir=root)["test"][0]
    assert len(tsg["labels"]) == 16 and tsg["answer"] in tsg["labels"]
    # file_name names the tdoc, whose prefix gives the label away: it is dropped at import
    assert "file_name" not in tsg


def test_hf_dataset_dict_for_lm_eval(tmp_path):
    root = write_fixture_benchmarks(tmp_path)
    ds = load_task_dataset(benchmark="sixg_bench", data_dir=str(root), version=1.0,
                           pretrained="ignored")
    assert set(ds) == {"train", "validation", "test"}
    assert [len(ds[s]) for s in ("train", "validation", "test")] == [12, 4, 4]


def test_a_held_out_data_dir_is_all_test_questions(tmp_path):
    """A user's own check set is scored whole, in the test split's seeded order, with nothing
    in train or validation for few-shot prompts to draw from."""
    root = write_fixture_benchmarks(tmp_path)
    split = load_task_dataset(benchmark="sixg_bench", data_dir=str(root))
    ds = load_task_dataset(benchmark="sixg_bench", data_dir=str(root), held_out="true")
    assert [len(ds[s]) for s in ("train", "validation", "test")] == [0, 0, 20]
    every = {r["id"] for s in ("train", "validation", "test") for r in split[s]}
    assert set(ds["test"]["id"]) == every
    assert ds["train"].features == ds["test"].features  # lm-eval opens it at zero shots
    again = load_task_dataset(benchmark="sixg_bench", data_dir=str(root), held_out=True)
    assert again["test"]["id"] == ds["test"]["id"]
    assert load_task_dataset(benchmark="sixg_bench", data_dir=str(root),
                             held_out="false")["test"]["id"] == split["test"]["id"]
    with pytest.raises(SlmbenchError, match="held_out='maybe' is not a boolean"):
        load_task_dataset(benchmark="sixg_bench", data_dir=str(root), held_out="maybe")
    with pytest.raises(SlmbenchError, match="no seen .training. questions"):
        load_task_dataset(benchmark="sixg_bench", data_dir=str(root), held_out=True,
                          seen_from="adapters_zoo/embedded.yaml")


# --- bad input ------------------------------------------------------------------------------


def _write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def test_malformed_rows_are_skipped_counted_and_named(tmp_path):
    good = {"question": "q?", "choices": ["a", "b"], "answer": 0}
    _write_jsonl(tmp_path / "teleqna" / "mine.jsonl", [
        good,
        {"choices": ["a", "b"], "answer": 0},
        {"question": "q2?", "choices": ["a", "b"], "answer": 2},
        {"question": "q3?", "choices": [], "answer": 0},
        "{not json",
        {"question": "q4?", "choices": ["a", "b", "c"], "answer": 1},
    ])
    parts, report = load_splits_and_report("teleqna", data_dir=tmp_path)
    assert sum(len(v) for v in parts.values()) == report.kept == 2
    assert report.skipped == [
        "mine.jsonl line 2: missing field 'question'",
        "mine.jsonl line 3: answer index 2 out of range for 2 choices",
        "mine.jsonl line 4: needs at least 2 choices, got 0",
        "mine.jsonl line 5: invalid JSON (Expecting property name enclosed in double quotes)",
    ]
    assert "skipped 4 malformed" in report.summary()


def test_record_validation_messages():
    with pytest.raises(RowError, match="out of range"):
        make_record(kind="mcq", question="q", choices=["a", "b"], answer=-1)
    with pytest.raises(RowError, match="empty choice"):
        make_record(kind="mcq", question="q", choices=["a", ""], answer=0)
    with pytest.raises(RowError, match="not a number"):
        make_record(kind="numeric", question="q", answer="twelve")
    with pytest.raises(RowError, match="empty 'answer'"):
        make_record(kind="label", question="q", answer=" ")


def test_missing_data_and_bad_metadata_give_one_line_errors(tmp_path):
    with pytest.raises(SlmbenchError, match=r"data dir .* has no files for telemath") as err:
        load_splits("telemath", data_dir=tmp_path)
    assert "\n" not in str(err.value)
    with pytest.raises(SlmbenchError, match="--metadata data_dir=/nope/x: directory not found"):
        load_splits("teleqna", data_dir="/nope/x")
    with pytest.raises(SlmbenchError, match="split_seed must be an integer"):
        load_splits("teleqna", data_dir=tmp_path, seed="abc")
    with pytest.raises(SlmbenchError, match="unknown benchmark 'telefoo'"):
        load_splits("telefoo", data_dir=tmp_path)
    _write_jsonl(tmp_path / "teleqna" / "x.jsonl", [{"question": "", "answer": 0}])
    with pytest.raises(SlmbenchError, match="no valid rows"):
        load_splits("teleqna", data_dir=tmp_path)


def test_hub_path_fails_with_a_clear_message_when_offline(monkeypatch):
    monkeypatch.delenv("SLMBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(SlmbenchError, match=r"cannot load GSMA/ot-full/telemath from the Hub"):
        load_splits("telemath")


# --- split ----------------------------------------------------------------------------------


def _records(n):
    return [make_record(kind="mcq", question=f"question {i}", choices=["x", "y"], answer=i % 2)
            for i in range(n)]


def test_split_is_60_20_20_disjoint_and_covers_every_row():
    records = _records(1001)
    parts = split_records(records)
    ids = {k: {r["id"] for r in v} for k, v in parts.items()}
    assert [len(ids[k]) for k in ("train", "validation", "test")] == [600, 200, 201]
    assert not ids["train"] & ids["validation"] and not ids["train"] & ids["test"]
    assert not ids["validation"] & ids["test"]
    assert ids["train"] | ids["validation"] | ids["test"] == {r["id"] for r in records}


def test_split_is_independent_of_row_order_and_depends_on_the_seed():
    records = _records(500)
    reference = {k: [r["id"] for r in v] for k, v in split_records(records).items()}
    for seed in range(3):
        shuffled = records[:]
        random.Random(seed).shuffle(shuffled)
        again = {k: [r["id"] for r in v] for k, v in split_records(shuffled).items()}
        assert again == reference
    other = {k: [r["id"] for r in v] for k, v in split_records(records, seed=7).items()}
    assert set(other["test"]) != set(reference["test"])


def test_real_teleqna_split_is_stable_under_shuffled_files(tmp_path):
    root = shared_data_or_skip()
    data = json.loads((root / "teleqna" / "TeleQnA.txt").read_text())
    items = list(data.items())
    random.Random(1).shuffle(items)
    (tmp_path / "teleqna").mkdir()
    (tmp_path / "teleqna" / "TeleQnA.txt").write_text(json.dumps(dict(items)))
    a = load_splits("teleqna", data_dir=root)
    b = load_splits("teleqna", data_dir=tmp_path)
    for split in ("train", "validation", "test"):
        assert [r["id"] for r in a[split]] == [r["id"] for r in b[split]]
    assert len(a["test"]) >= 1999


def test_stable_id_ignores_whitespace_but_not_content():
    assert stable_id("What is  LTE?", ["a", "b"]) == stable_id("What is LTE?", ["a ", "b"])
    assert stable_id("What is LTE?", ["a", "b"]) != stable_id("What is LTE?", ["b", "a"])


def test_a_run_collects_its_own_load_reports_cached_loads_included(tmp_path):
    """run_eval records what the run read; a second run in the process hits the cache and
    must still see its report."""
    from conftest import write_fixture_benchmarks

    from harness.data.source import collect_load_reports

    data = write_fixture_benchmarks(tmp_path / "data")
    with collect_load_reports() as first:
        load_splits("teletables", data_dir=str(data))
    with collect_load_reports() as second:
        load_splits("teletables", data_dir=str(data))  # answered from the process cache
    with collect_load_reports() as third:
        pass
    assert set(first) == set(second) == {"teletables"} and third == {}
    assert first["teletables"] is second["teletables"]
