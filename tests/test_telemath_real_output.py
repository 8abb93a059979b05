"""TeleMath scoring re-derived from real model output: the committed study runs' replies.

Every stored TeleMath reply of the study (the embedded model and its adapter, on real
TeleMath rows) is extracted and scored again here: the last-``\\boxed{}``-else-"answer"-else-
last-number rule must give the parsed answer that was stored, and GSMA's tolerance
(``math.isclose(pred, gold, rel_tol=0.01, abs_tol=0.01)``) must give the stored score. Skipped
when the study runs are absent.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.data.records import parse_number
from harness.runs.store import find_runs
from harness.scoring.extract import extract_number, last_boxed, numbers_match

STUDY_RUNS = Path(__file__).resolve().parents[1] / "leaderboards" / "study" / "runs"


def _telemath_rows() -> list[dict]:
    if not STUDY_RUNS.is_dir():
        pytest.skip("no committed study runs")
    runs, problems = find_runs(STUDY_RUNS, kind="eval")
    assert not problems, problems
    rows = []
    for run in runs:
        for task in run.tasks():
            if task.startswith("telemath"):
                rows += [dict(r, run=run.run_id, task=task) for r in run.samples(task) or []]
    if not rows:
        pytest.skip("the study runs hold no TeleMath task")
    return rows


def _first(value):
    while isinstance(value, list) and value:
        value = value[0]
    return value


def test_stored_answers_are_what_extraction_gives_on_the_raw_replies():
    rows = _telemath_rows()
    for row in rows:
        raw, parsed = _first(row["resps"]), _first(row["parsed"])
        assert extract_number(raw).as_response == parsed, (row["run"], row["doc_id"], raw)


def test_stored_scores_follow_gsma_tolerance():
    for row in _telemath_rows():
        parsed, gold = _first(row["parsed"]), row["target"]
        p, g = parse_number(parsed), parse_number(str(gold))
        expected = p is not None and g is not None and math.isclose(p, g, rel_tol=0.01,
                                                                   abs_tol=0.01)
        assert numbers_match(parsed, str(gold)) == expected
        assert bool(row["score"]) == expected, (row["run"], row["doc_id"], parsed, gold)


def test_real_replies_exercise_the_box_rule():
    rows = _telemath_rows()
    boxed = [r for r in rows if last_boxed(_first(r["resps"]) or "") is not None]
    assert boxed, "no stored reply has a \\boxed{}: the box rule was never met on real output"
    for row in boxed:
        box = last_boxed(_first(row["resps"]))
        parsed = _first(row["parsed"])
        numbers_in_box = extract_number(f"\\boxed{{{box}}}").as_response
        assert parsed == numbers_in_box
