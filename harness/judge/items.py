"""What a judge scores: items from an eval run folder in the store, or from a JSONL file.

A JSONL line is ``{"id", "question", "response", "reference"?, "reference_score"?}``. From
an eval run, each task's per-sample rows give the response (``resps[0][0]``), the reference
(``target``) and, when the row records it, the question (the doc's ``question``, else the
full ``prompt``); an item's key is ``<task>/<id>``; the row's ``score`` (the task's headline
metric) becomes ``reference_score``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import SlmbenchError
from harness.hashing import sha256_file
from harness.runs.store import RUN_FILE, load_run


@dataclass
class Item:
    key: str
    id: str
    question: str | None
    response: str | None
    reference: str | None = None
    task: str | None = None
    reference_score: float | None = None
    """The eval run's own per-sample metric (e.g. token F1): lets a judge be checked against it."""


@dataclass
class Source:
    items: list[Item]
    info: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def first_text(value: Any) -> str | None:
    """The first generation in lm-eval's nested ``resps`` (``[[text, ...], ...]``)."""
    while isinstance(value, (list, tuple)):
        if not value:
            return None
        value = value[0]
    return value if isinstance(value, str) else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return first_text(value)
    return str(value)


def load_jsonl_items(path: Path) -> Source:
    items, seen = [], set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise SlmbenchError(f"{path}: cannot read items ({err})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise SlmbenchError(f"{path}:{number}: not JSON ({err.msg})") from None
        if not isinstance(row, dict) or "id" not in row or "response" not in row:
            raise SlmbenchError(f"{path}:{number}: an item needs 'id' and 'response' "
                                "(and 'question', optional 'reference')")
        key = str(row["id"])
        if key in seen:
            raise SlmbenchError(f"{path}:{number}: duplicate id {key!r}")
        seen.add(key)
        score = row.get("reference_score")
        if score is not None and not isinstance(score, int | float):
            raise SlmbenchError(f"{path}:{number}: reference_score must be a number")
        items.append(Item(key, key, _text(row.get("question")), _text(row.get("response")),
                          _text(row.get("reference")), _text(row.get("task")),
                          None if score is None else float(score)))
    if not items:
        raise SlmbenchError(f"{path}: no items")
    return Source(items, {"type": "items", "path": str(path), "sha256": sha256_file(path)})


def load_run_items(folder: Path, tasks: list[str] | None = None) -> Source:
    run = load_run(folder)
    if run.kind != "eval":
        raise SlmbenchError(f"{folder}: a {run.kind} run; judge scores eval runs")
    available = run.tasks()
    chosen = tasks or sorted(available)
    unknown = [t for t in chosen if t not in available]
    if unknown:
        raise SlmbenchError(f"{folder}: run has no task {', '.join(unknown)} (it has "
                            f"{', '.join(sorted(available)) or 'none'})")
    items, notes, no_prompt = [], list(run.problems), 0
    for task in chosen:
        rows = run.samples(task)
        if rows is None:
            notes.append(f"{folder}: task {task} has no readable samples; skipped")
            continue
        for row in rows:
            question = row.get("question") or row.get("prompt")
            no_prompt += question is None
            score = row.get("score")
            items.append(Item(f"{task}/{row['id']}", str(row["id"]), _text(question),
                              first_text(row.get("resps")), _text(row.get("target")), task,
                              float(score) if isinstance(score, int | float) else None))
    if no_prompt:
        notes.append(f"{no_prompt} of {len(items)} items have no recorded prompt: judged "
                     "against the reference answer only")
    if not items:
        raise SlmbenchError(f"{folder}: no samples to judge")
    info = {"type": "run", "path": str(folder), "run_id": run.run_id, "label": run.label,
            "tasks": chosen}
    return Source(items, info, notes)


def load_items(source: str | Path, tasks: list[str] | None = None,
               limit: int | None = None) -> Source:
    """Items from a run folder or a JSONL file; ``limit`` keeps the first N (by key order)."""
    path = Path(source)
    if path.is_dir():
        if not (path / RUN_FILE).is_file():
            raise SlmbenchError(f"{path}: not a run folder (no {RUN_FILE})")
        loaded = load_run_items(path, tasks)
    elif path.is_file():
        loaded = load_jsonl_items(path)
    else:
        raise SlmbenchError(f"{path}: no such run folder or items file")
    if limit is not None:
        loaded.items = loaded.items[:limit]
        loaded.info["limit"] = limit
    return loaded
