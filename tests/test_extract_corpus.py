"""Answer extraction on a corpus of realistic replies, each with a careful reader's answer.

``tests/golden/extraction_corpus.jsonl``: replies taken from the committed sample files of
``leaderboards/*/runs`` (``source`` names the file; the choices or labels are the ones its
prompt listed) and hand-written ones for forms those runs lack. ``expected`` is what a
person reading the reply would say it picked, or null when it picks nothing: a reply that
names several options or labels, or none, must be unparsed, so that it scores as wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.scoring.extract import extract_choice, extract_label

CORPUS = Path(__file__).parent / "golden" / "extraction_corpus.jsonl"
ROWS = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()
        if line.strip()]


def _id(row: dict) -> str:
    return f"{row['kind']}:{row['reply'][:40]!r}"


def test_the_corpus_is_large_and_mixed():
    assert len(ROWS) >= 50
    kinds = {row["kind"] for row in ROWS}
    assert kinds == {"mcq", "label"}
    real = [row for row in ROWS if row["source"] != "hand-written"]
    assert len(real) >= 25 and all(row["source"].startswith("leaderboards/") for row in real)
    assert any(row["expected"] is None for row in ROWS)
    assert any(row["expected"] is not None for row in ROWS)


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_extraction_matches_a_careful_reader(row):
    if row["kind"] == "mcq":
        got = extract_choice(row["reply"], row["choices"])
    else:
        got = extract_label(row["reply"], row["labels"])
    assert got.answer == row["expected"], f"{got.how} ({row.get('note', row['source'])})"
