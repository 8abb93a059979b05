"""Readers that turn upstream files into raw rows for ``make_record``.

Each reader yields ``(where, fields)`` pairs, where ``where`` names the file and row for
error messages, and ``fields`` are the keyword arguments of ``make_record``. A reader
raises ``RowError`` through the loader for one bad row and ``SlmbenchError`` only when the
whole file is unreadable.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness.data.records import RowError
from harness.errors import SlmbenchError

RawRow = tuple[str, "dict[str, Any] | RowError"]
Reader = Callable[[Path], Iterator[RawRow]]

_OPTION_PREFIX = re.compile(r"^\s*\(?\d+[.)]\s*")


def _raw_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Numbered raw lines, streamed (gunzipped for ``.gz``) so a big file never sits in memory.

    Only a file that cannot be read at all, or whose gzip stream is broken, raises: the
    rows before the break would otherwise load as if they were the whole benchmark.
    """
    lineno = 0
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as fh:
            for line in fh:
                # A bare CR (old Mac line ending) ends a line too, as editors count it; a
                # raw CR cannot sit inside a JSON string, so splitting there cuts no row.
                body = line[:-2] if line.endswith(b"\r\n") else line
                for piece in body.split(b"\r") if b"\r" in body else [line]:
                    lineno += 1
                    yield lineno, piece
    except (OSError, EOFError, zlib.error) as err:
        what = "not a readable gzip file" if path.name.endswith(".gz") else "unreadable"
        if lineno:
            what = f"{what}: stream broken after line {lineno}"
        raise SlmbenchError(f"{path}: {what} ({err})") from err


def _json_lines(path: Path) -> Iterator[tuple[str, Any]]:
    """Each non-blank line of a JSON-lines file, parsed, or a RowError naming the line.

    Lines are decoded one by one, so invalid UTF-8 costs only its own row.
    """
    for lineno, raw in _raw_lines(path):
        where = f"{path.name} line {lineno}"
        try:
            # A BOM is legal at the start of a UTF-8 file, and json.loads rejects it.
            line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
        except UnicodeDecodeError as err:
            yield where, RowError(f"invalid UTF-8 at byte {err.start} of the line")
            continue
        if not line.strip():
            continue
        try:
            # Without its newline, a line cut short reads "Unterminated string", not
            # "Invalid control character".
            yield where, json.loads(line.rstrip("\r\n"))
        except ValueError as err:
            yield where, RowError(f"invalid JSON ({getattr(err, 'msg', err)})")


def _whole_json(path: Path) -> Any:
    """A file that is one JSON document, where one row's bad bytes must not sink the rest.

    Undecodable bytes and raw control characters cost their own row (``make_record``
    refuses the lone surrogates and NULs they become), not the thousands of others.
    """
    return json.loads(path.read_bytes().decode("utf-8-sig", errors="surrogateescape"),
                      strict=False)


def read_teleqna_txt(path: Path) -> Iterator[RawRow]:
    """TeleQnA.txt: ``{"question N": {"question", "option 1".., "answer": "option K: ..."}}``."""
    try:
        data = _whole_json(path)
    except (OSError, ValueError) as err:
        raise SlmbenchError(f"{path}: not a TeleQnA JSON object ({err})") from err
    if not isinstance(data, dict):
        raise SlmbenchError(f"{path}: expected a JSON object keyed by 'question N'")
    for key, row in data.items():
        where = f"{path.name} '{key}'"
        if not isinstance(row, dict):
            yield where, RowError("row is not an object")
            continue
        options = []
        for k in range(1, 10):
            text = row.get(f"option {k}")
            if text is None:
                break
            options.append(text)
        match = re.match(r"\s*option\s*(\d+)", str(row.get("answer", "")), re.IGNORECASE)
        if not match:
            yield where, RowError(f"'answer' does not name an option: {row.get('answer')!r}")
            continue
        yield where, {
            "question": row.get("question"),
            "choices": options,
            "answer": int(match.group(1)) - 1,
            "subject": row.get("category"),
            "extra": _optional_fields(row),
        }


def _option_arrays(path: Path, subject: str) -> Iterator[RawRow]:
    """``[question, ["1. opt", ...], "K"]`` per line (ORAN-Bench-13K and srsRANBench)."""
    for where, row in _json_lines(path):
        if isinstance(row, RowError):
            yield where, row
            continue
        if not isinstance(row, list) or len(row) != 3:
            yield where, RowError("not a [question, options, answer] array")
            continue
        question, options, answer = row
        if not isinstance(options, list):
            yield where, RowError(f"options is a {type(options).__name__}, not a list")
            continue
        wrong = next((i for i, o in enumerate(options, 1) if not isinstance(o, str)), None)
        if wrong is not None:
            yield where, RowError(f"option {wrong} is a {type(options[wrong - 1]).__name__}, "
                                  "not text")
            continue
        try:
            if isinstance(answer, bool) or not isinstance(answer, (str, int)):
                raise ValueError
            index = int(str(answer).strip()) - 1
            if index < 0:
                raise ValueError
        except ValueError:
            yield where, RowError(f"answer {answer!r} is not a 1-based option number")
            continue
        yield where, {
            "question": question,
            "choices": [_OPTION_PREFIX.sub("", o) for o in options],
            "answer": index,
            "subject": subject,
        }


def read_oranbench_json(path: Path) -> Iterator[RawRow]:
    """ORAN-Bench-13K ``fin_*.json``; the file's E/M/H suffix becomes the ``subject``."""
    difficulty = {"E": "easy", "M": "medium", "H": "hard"}.get(path.stem.split("_")[-1], "")
    return _option_arrays(path, difficulty)


def read_srsranbench_json(path: Path) -> Iterator[RawRow]:
    """The upstream ``srsRANBench.json``: ORAN-Bench's array per line, despite the name."""
    return _option_arrays(path, "")


def _canonical_fields(row: Any) -> dict[str, Any] | RowError:
    if not isinstance(row, dict):
        return RowError("row is not an object")
    missing = [k for k in ("question", "answer") if k not in row]
    if missing:
        return RowError(f"missing field {missing[0]!r}")
    known = {"id", "question", "choices", "answer", "subject", "explanation", "explaination"}
    return {
        "question": row["question"],
        "choices": row.get("choices"),
        "answer": row["answer"],
        "subject": row.get("subject", row.get("category")),
        "extra": {**{k: v for k, v in row.items() if k not in known and _scalar(v)},
                  **_optional_fields(row)},
    }


def _optional_fields(row: dict[str, Any]) -> dict[str, str]:
    """Fields only some tasks ask for (``OPTIONAL_FIELDS``), e.g. TeleQnA's explanation.

    The ot-full schema misspells it ``explaination`` in places; both spellings are read.
    """
    text = row.get("explanation", row.get("explaination"))
    return {"explanation": text.strip()} if isinstance(text, str) and text.strip() else {}


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def read_canonical_jsonl(path: Path) -> Iterator[RawRow]:
    """Canonical JSONL in the ``ot-full`` schema, one record per line, plain or gzipped."""
    for where, row in _json_lines(path):
        yield where, row if isinstance(row, RowError) else _canonical_fields(row)


def read_canonical_json(path: Path) -> Iterator[RawRow]:
    """A JSON array of ``ot-full`` records (the layout of ``ot-lite``'s ``test_*.json``)."""
    try:
        rows = _whole_json(path)
    except (OSError, ValueError) as err:
        raise SlmbenchError(f"{path}: invalid JSON ({err})") from err
    if not isinstance(rows, list):
        raise SlmbenchError(f"{path}: expected a JSON array of records")
    for index, row in enumerate(rows):
        yield f"{path.name} row {index}", _canonical_fields(row)


def read_parquet(path: Path) -> Iterator[RawRow]:
    """A parquet shard of a local ``GSMA/ot-full`` snapshot (``<config>/test-*.parquet``)."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises many unrelated types
        raise SlmbenchError(f"{path}: unreadable parquet ({err})") from err
    for index, row in enumerate(table.to_pylist()):
        yield f"{path.name} row {index}", _canonical_fields(row)


def hub_rows(name: str, dataset: Any) -> Iterator[RawRow]:
    """Rows of a ``datasets.Dataset`` loaded from the Hub."""
    for index, row in enumerate(dataset):
        yield f"{name} row {index}", _canonical_fields(dict(row))


# Filename patterns tried in a benchmark's local folder, most specific first.
LOCAL_READERS: list[tuple[str, Reader]] = [
    ("TeleQnA.txt", read_teleqna_txt),
    ("fin_*.json", read_oranbench_json),
    ("srsRANBench.json", read_srsranbench_json),
    ("*.jsonl", read_canonical_jsonl),
    ("*.jsonl.gz", read_canonical_jsonl),
    ("*.parquet", read_parquet),
    ("*.json", read_canonical_json),
]
