"""Judge replies on disk, so a re-run (or a run resumed after a kill) makes no repeat calls.

A reply is keyed by sha256 of (judge model id, rubric version, prompt messages). It is kept
in SQLite: each insert is one committed transaction, so a killed run loses at most the call
in flight and never leaves a half-written entry. Only replies that parsed into a verdict
are stored; the raw text is kept (and parsed again on a hit) so a parser fix applies to
cached verdicts too. Neither the prompt nor any credential is stored, only its hash.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from harness.errors import SlmbenchError
from harness.hashing import sha256_json

_SCHEMA = """CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, version TEXT NOT NULL, reply TEXT NOT NULL,
    created REAL NOT NULL)"""


def cache_key(model_id: str, version: str, messages: Any) -> str:
    return sha256_json({"model": model_id, "version": version, "prompt": messages})


class VerdictCache:
    """A thread-safe reply cache in one SQLite file (``None`` path: in memory, for no cache)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self.hits = 0
        self._lock = threading.Lock()
        target = ":memory:"
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            target = str(self.path)
        try:
            self._db = sqlite3.connect(target, check_same_thread=False, timeout=30)
            if self.path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
            self._db.commit()
        except sqlite3.DatabaseError as err:
            raise SlmbenchError(f"judge cache {self.path}: unusable ({err}); delete it to "
                                "start afresh") from None

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT reply FROM replies WHERE key = ?", (key,)).fetchone()
        if row is not None:
            self.hits += 1
        return row[0] if row else None

    def put(self, key: str, model_id: str, version: str, reply: str) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?)",
                             (key, model_id, version, reply, time.time()))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> VerdictCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
