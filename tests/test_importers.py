"""Importers for every benchmark in ../shared/data, as stored, and their malformed-row errors.

The real-file tests check the facts of ../shared/data/README.md and skip when it is absent;
the malformed-row tests write their own small files.
"""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from pathlib import Path

import pytest
from conftest import SHARED_DATA, shared_data_or_skip

from harness.data import source
from harness.data.benchmarks import BENCHMARKS
from harness.data.importers import read_canonical_jsonl, read_srsranbench_json
from harness.data.source import (
    build_records,
    load_splits_and_report,
    load_task_dataset,
)
from harness.errors import SlmbenchError
from harness.prompts import label_prompt, target_text

# benchmark -> (file as stored, rows in it, kept after exact duplicates / conflicts, dropped)
REAL = {
    "srsranbench": ("srsRANBench.json", 1502, 1492),
    "sixg_bench": ("sixg_bench.jsonl.gz", 3722, 3722),
    "teletables": ("teletables.jsonl.gz", 500, 500),
    "telemath": ("telemath.jsonl.gz", 500, 500),
    "three_gpp_tsg": ("three_gpp.jsonl.gz", 2000, 1990),
}
TSG_LABELS = {"CT1": 123, "CT3": 106, "CT4": 147, "CT6": 113, "RAN1": 124, "RAN2": 122,
              "RAN3": 111, "RAN4": 135, "RAN5": 140, "RAN_AH1": 129, "SA1": 114, "SA2": 139,
              "SA3": 144, "SA4": 112, "SA5": 122, "SA6": 119}


def _real(name):
    path = SHARED_DATA / name / REAL[name][0]
    shared_data_or_skip(f"{name}/{REAL[name][0]}")
    return path


def _raw_lines(path):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [line for line in fh if line.strip()]


def _load(name, data_dir=SHARED_DATA):
    source._CACHE.clear()
    return load_splits_and_report(name, data_dir=data_dir)


def _ids(parts):
    return {split: [r["id"] for r in rows] for split, rows in parts.items()}


# --- the real files, as stored ------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_file_loads_whole_and_splits_60_20_20(name):
    path = _real(name)
    stored, rows, kept = REAL[name]
    parts, report = _load(name)
    assert Path(report.source).resolve() == path.resolve()  # the data dir may be a link
    assert report.kept == kept and report.kept + report.duplicates + len(report.skipped) == rows
    n = report.kept
    sizes = [len(parts[s]) for s in ("train", "validation", "test")]
    assert sizes == [int(n * 0.6), int(n * 0.2), n - int(n * 0.6) - int(n * 0.2)]
    ids = [set(v) for v in _ids(parts).values()]
    assert len(set().union(*ids)) == n  # disjoint and complete
    again, _ = _load(name)
    assert _ids(again) == _ids(parts)  # deterministic


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_ids_and_splits_survive_reordered_rows(name, tmp_path):
    path = _real(name)
    lines = _raw_lines(path)
    random.Random(3).shuffle(lines)
    copy = tmp_path / name / path.name
    copy.parent.mkdir()
    if path.name.endswith(".gz"):
        with gzip.open(copy, "wt", encoding="utf-8") as fh:
            fh.writelines(lines)
    else:
        copy.write_text("".join(lines), encoding="utf-8")
    original, report = _load(name)
    shuffled, report_shuffled = _load(name, tmp_path)
    assert _ids(shuffled) == _ids(original)
    assert report_shuffled.sha256 == report.sha256  # same data version, answers included


def test_srsranbench_as_stored():
    path = _real("srsranbench")
    rows = list(read_srsranbench_json(path))
    assert len(rows) == 1502
    assert Counter(fields["answer"] for _, fields in rows) == {0: 1139, 1: 160, 2: 122, 3: 81}
    assert all(len(fields["choices"]) == 4 for _, fields in rows)
    first = rows[0][1]
    assert first["choices"][0] == "To provide a base library for the srsRAN codebase."
    assert len({fields["question"] for _, fields in rows}) == 1383
    parts, report = _load("srsranbench")
    assert report.duplicates == 10 and not report.skipped
    records = [r for rows in parts.values() for r in rows]
    assert not any(c[:3] in ("1. ", "2. ", "3. ", "4. ") for r in records for c in r["choices"])


def test_sixg_bench_as_stored():
    _real("sixg_bench")
    parts, report = _load("sixg_bench")
    records = [r for rows in parts.values() for r in rows]
    assert Counter(r["answer"] for r in records) == {0: 835, 1: 1173, 2: 1131, 3: 583}
    assert {len(r["choices"]) for r in records} == {4}
    assert Counter(r["task_id"] for r in records).keys() == {f"T{i}" for i in range(1, 31)}
    assert {r["difficulty"] for r in records} == {"very_hard"}
    assert isinstance(records[0]["task_name"], str) and records[0]["subject"]


def test_teletables_as_stored():
    _real("teletables")
    parts, report = _load("teletables")
    records = [r for rows in parts.values() for r in rows]
    assert Counter(r["answer"] for r in records) == {k: 100 for k in range(5)}
    assert Counter(r["difficult"] for r in records) == {True: 250, False: 250}
    assert len({r["table_id"] for r in records}) == 281
    assert len({r["document_id"] for r in records}) == 12
    assert all("explanation" not in r for r in records)


def test_telemath_answers_are_numbers():
    _real("telemath")
    parts, report = _load("telemath")
    records = [r for rows in parts.values() for r in rows]
    assert all(type(r["answer"]) is float for r in records)
    assert sum(r["answer"].is_integer() for r in records) == 132
    assert Counter(r["difficulty"] for r in records) == {"basic": 250, "advanced": 250}
    assert Counter(r["subject"] for r in records)["Telecommunications Engineering"] == 153
    source._CACHE.clear()
    ds = load_task_dataset(benchmark="telemath", data_dir=str(SHARED_DATA))
    assert ds["test"].features["answer"].dtype == "float64"
    assert isinstance(ds["test"][0]["answer"], float)
    raw = json.loads(_raw_lines(_real("telemath"))[0])
    rec = next(r for r in records if r["question"] == raw["question"].strip())
    assert rec["answer"] == raw["answer"] == 233.333333333333
    assert target_text(rec) == "233.333333333333"


def test_three_gpp_tsg_labels_duplicates_and_conflict():
    path = _real("three_gpp_tsg")
    raw = [json.loads(line) for line in _raw_lines(path)]
    assert Counter(r["answer"] for r in raw) == TSG_LABELS
    parts, report = _load("three_gpp_tsg")
    records = [r for rows in parts.values() for r in rows]
    assert records[0]["labels"] == sorted(TSG_LABELS) and "RAN_AH1" in records[0]["labels"]
    # 9 texts appear twice; one of them under two labels (CT1 and CT3): which one is gold
    # would depend on row order, so both copies go, each named with the other's line.
    assert report.duplicates == 8
    assert report.skipped == [
        "three_gpp.jsonl.gz line 101: same question as three_gpp.jsonl.gz line 1905 with "
        "another answer ('CT1' here, 'CT3' there); every copy dropped",
        "three_gpp.jsonl.gz line 1905: same question as three_gpp.jsonl.gz line 101 with "
        "another answer ('CT3' here, 'CT1' there); every copy dropped",
    ]


def test_three_gpp_tsg_file_name_never_reaches_the_model():
    path = _real("three_gpp_tsg")
    names = {r["file_name"] for r in map(json.loads, _raw_lines(path))}
    parts, _ = _load("three_gpp_tsg")
    for record in (r for rows in parts.values() for r in rows):
        assert "file_name" not in record
        shown = " ".join(str(v) for v in record.values()) + label_prompt(record)
        assert not any(name in shown for name in names)
    # ... nor a prompt as lm-eval renders it, few-shot examples included.
    from harness.task_loader import load_task, task_manager

    manager = task_manager(str(SHARED_DATA))
    for task_name in ("three_gpp_tsg", "three_gpp_tsg_mc"):
        task = load_task(manager, task_name)
        for doc in list(task.test_docs())[:25]:
            assert "file_name" not in doc
            prompt = task.fewshot_context(doc, num_fewshot=3)
            assert not any(name in prompt for name in names)


def test_data_stats_cli_shows_every_real_benchmark():
    import subprocess
    import sys

    _real("srsranbench")
    names = ["teleqna", "oranbench", *REAL]
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "data", "stats", *names,
                           "--data-dir", str(SHARED_DATA)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {cells[0]: cells[1:6] for line in proc.stdout.splitlines()
            if len(cells := [c.strip() for c in line.split("│")[1:-1]]) == 7 and cells[0]}
    assert rows["srsranbench"] == ["895", "298", "299", "10", "0"]
    assert rows["sixg_bench"] == ["2233", "744", "745", "0", "0"]
    assert rows["teletables"] == ["300", "100", "100", "0", "0"]
    assert rows["telemath"] == ["300", "100", "100", "0", "0"]
    assert rows["three_gpp_tsg"] == ["1194", "398", "398", "8", "2"]
    assert {"teleqna", "oranbench"} <= rows.keys()
    assert "three_gpp.jsonl.gz line 101" in proc.stderr  # the first skipped row is named


# --- malformed files and rows, written here -----------------------------------------------


def _write_gz(path, lines: list[bytes]):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as fh:
        fh.write(b"".join(line + b"\n" for line in lines))


def _one_line_each(report, filename):
    for message in report.skipped:
        assert "\n" not in message and message.startswith(f"{filename} line ")


def test_gzipped_jsonl_bad_rows_are_skipped_and_named(tmp_path):
    good = json.dumps({"question": "q?", "choices": ["a", "b"], "answer": 1, "task_id": "T1"})
    _write_gz(tmp_path / "sixg_bench" / "sixg_bench.jsonl.gz", [
        good.encode(),
        b'{"question": "cut off", "choices": ["a", "b"], "ans',
        json.dumps({"question": "q2?", "choices": "a b", "answer": 0}).encode(),
        json.dumps({"question": "q3?", "choices": ["a", "b"], "answer": [1]}).encode(),
        json.dumps({"question": 7, "choices": ["a", "b"], "answer": 0}).encode(),
        b'{"question": "caf\xe9?", "choices": ["a", "b"], "answer": 0}',
        b'{"question": "bad \\ud800 escape", "choices": ["a", "b"], "answer": 0}',
        json.dumps({"question": "q4?", "choices": [["a"], "b"], "answer": 0}).encode(),
        b"",
        json.dumps({"question": "q5?", "choices": ["a", "b"], "answer": 0,
                    "task_id": 5}).encode(),
        json.dumps({"question": "q6?", "choices": ["a", "b", "c"], "answer": 2,
                    "task_id": "T2"}).encode(),
    ])
    parts, report = _load("sixg_bench", tmp_path)
    assert report.kept == 2 and sum(len(v) for v in parts.values()) == 2
    assert report.skipped == [
        "sixg_bench.jsonl.gz line 2: invalid JSON (Unterminated string starting at)",
        "sixg_bench.jsonl.gz line 3: 'choices' must be a list, got str",
        "sixg_bench.jsonl.gz line 4: 'answer' must be a 0-based index, got [1]",
        "sixg_bench.jsonl.gz line 5: missing or empty 'question'",
        "sixg_bench.jsonl.gz line 6: invalid UTF-8 at byte 17 of the line",
        "sixg_bench.jsonl.gz line 7: text is not valid Unicode (lone surrogate at character 4)",
        "sixg_bench.jsonl.gz line 8: choice 1 is a list, not text",
        "sixg_bench.jsonl.gz line 10: field 'task_id' is a number, other rows have a str",
    ]
    _one_line_each(report, "sixg_bench.jsonl.gz")
    # the rows that are kept still make a Dataset (one Arrow type per column)
    source._CACHE.clear()
    ds = load_task_dataset(benchmark="sixg_bench", data_dir=str(tmp_path))
    assert sum(len(ds[s]) for s in ds) == 2


def test_a_file_that_is_not_gzip_is_one_error_naming_it(tmp_path):
    path = tmp_path / "telemath" / "telemath.jsonl.gz"
    path.parent.mkdir()
    path.write_text(json.dumps({"question": "1+1?", "answer": 2.0}) + "\n")
    with pytest.raises(SlmbenchError) as err:
        _load("telemath", tmp_path)
    message = str(err.value)
    assert message.startswith(f"{path}: not a readable gzip file (Not a gzipped file")
    assert "\n" not in message


def test_a_truncated_gzip_is_one_error_naming_it_and_the_last_line(tmp_path):
    path = tmp_path / "telemath" / "telemath.jsonl.gz"
    rows = [json.dumps({"question": f"What is {i} + {i}?", "answer": 2.0 * i}).encode()
            for i in range(2000)]
    _write_gz(path, rows)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SlmbenchError, match=r"not a readable gzip file: stream broken after "
                                            r"line \d+ \(Compressed file ended") as err:
        list(read_canonical_jsonl(path))
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_an_unreadable_file_is_one_error_naming_it(tmp_path):
    (tmp_path / "teletables" / "teletables.jsonl.gz").mkdir(parents=True)
    with pytest.raises(SlmbenchError, match=r"teletables\.jsonl\.gz: not a readable gzip file"):
        _load("teletables", tmp_path)


def test_srsranbench_json_bad_rows_are_skipped_and_named(tmp_path):
    folder = tmp_path / "srsranbench"
    folder.mkdir()
    lines = [
        json.dumps(["What is srsRAN?", ["1. a RAN", "2. a core"], "1"]),
        '["Cut off?", ["1. a", "2. b"',
        json.dumps({"question": "a dict?", "options": ["1. a"], "answer": "1"}),
        json.dumps(["Options not a list?", "1. a 2. b", "1"]),
        json.dumps(["A null option?", ["1. a", None], "1"]),
        json.dumps(["Zero-based key?", ["1. a", "2. b"], "0"]),
        json.dumps(["A letter key?", ["1. a", "2. b"], "B"]),
        json.dumps(["Two items"]),
        json.dumps(["Out of range?", ["1. a", "2. b"], "3"]),
        json.dumps(["Which layer?", ["1. PHY", "2. MAC", "3. RLC"], 2]),
    ]
    (folder / "srsRANBench.json").write_text("\n".join(lines) + "\n")
    parts, report = _load("srsranbench", tmp_path)
    records = sorted((r for rows in parts.values() for r in rows), key=lambda r: r["question"])
    assert [(r["question"], r["choices"][r["answer"]]) for r in records] == [
        ("What is srsRAN?", "a RAN"), ("Which layer?", "MAC")]
    assert report.skipped == [
        "srsRANBench.json line 2: invalid JSON (Expecting ',' delimiter)",
        "srsRANBench.json line 3: not a [question, options, answer] array",
        "srsRANBench.json line 4: options is a str, not a list",
        "srsRANBench.json line 5: option 2 is a NoneType, not text",
        "srsRANBench.json line 6: answer '0' is not a 1-based option number",
        "srsRANBench.json line 7: answer 'B' is not a 1-based option number",
        "srsRANBench.json line 8: not a [question, options, answer] array",
        "srsRANBench.json line 9: answer index 2 out of range for 2 choices",
    ]
    _one_line_each(report, "srsRANBench.json")


def test_conflicting_answers_drop_every_copy_whatever_the_order(tmp_path):
    rows = [{"question": "Which group?", "answer": "SA4", "file_name": "S4-1.txt"},
            {"question": "Which group?", "answer": "RAN1", "file_name": "R1-1.txt"},
            {"question": "Same twice", "answer": "CT1", "file_name": "C1-1.txt"},
            {"question": "Same twice", "answer": "CT1", "file_name": "C1-2.txt"},
            {"question": "Alone", "answer": "SA2"}]
    kept = []
    for order in (rows, rows[::-1]):
        built = [(f"x line {i}", {"question": r["question"], "answer": r["answer"],
                                  "extra": {"file_name": r.get("file_name"), "n": 1}})
                 for i, r in enumerate(order, 1)]
        records, report = build_records(BENCHMARKS["three_gpp_tsg"], built, "x")
        assert report.duplicates == 1 and len(report.skipped) == 2
        assert all("every copy dropped" in s for s in report.skipped)
        assert all("file_name" not in r and r["n"] == 1 for r in records)
        kept.append((sorted(r["question"] for r in records), report.sha256))
    assert kept[0] == kept[1] and kept[0][0] == ["Alone", "Same twice"]


def test_numeric_and_label_answers_are_typed(tmp_path):
    _write_gz(tmp_path / "telemath" / "telemath.jsonl.gz", [json.dumps(r).encode() for r in [
        {"question": "An int gold?", "answer": 12},
        {"question": "A text gold?", "answer": "1,024"},
        {"question": "A boolean gold?", "answer": True},
        {"question": "No gold?", "answer": None},
    ]])
    parts, report = _load("telemath", tmp_path)
    answers = sorted(r["answer"] for rows in parts.values() for r in rows)
    assert answers == [12.0, 1024.0] and all(type(a) is float for a in answers)
    assert report.skipped == ["telemath.jsonl.gz line 3: 'answer' is not a number: True",
                              "telemath.jsonl.gz line 4: 'answer' is not a number: None"]
    _write_gz(tmp_path / "3gpp_tsg" / "three_gpp.jsonl.gz", [json.dumps(r).encode() for r in [
        {"question": "Doc one", "answer": "SA4", "file_name": "S4-1.txt"},
        {"question": "Doc two", "answer": ["SA4"], "file_name": "S4-2.txt"},
    ]])
    parts, report = _load("three_gpp_tsg", tmp_path)
    assert report.kept == 1
    assert report.skipped == ["three_gpp.jsonl.gz line 2: 'answer' label must be text, got list"]
