"""Chat replies on disk, so a re-run (or a run resumed after a kill) makes no repeat calls.

A reply is keyed by sha256 of (model id, version, prompt): the version is whatever else
shapes the reply (the judge's rubric version, the expander's sampling parameters). It is
kept in SQLite: each insert is one committed transaction, so a killed run loses at most the
call in flight and never leaves a half-written entry. The caller decides what is worth
keeping (the judge stores only replies that parsed into a verdict, and keeps the raw text so
a parser fix applies to cached verdicts too) and hands over text already redacted. Neither
the prompt nor any credential is stored, only the prompt's hash.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from harness.errors import SlmbenchError
from harness.hashing import sha256_json

_SCHEMA = """CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, version TEXT NOT NULL, reply TEXT NOT NULL,
    created REAL NOT NULL, usage TEXT)"""


def reply_key(model_id: str, version: str, messages: Any) -> str:
    return sha256_json({"model": model_id, "version": version, "prompt": messages})


class ReplyCache:
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
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(replies)")}
            if "usage" not in columns:  # a judge cache from before the expander shared it
                self._db.execute("ALTER TABLE replies ADD COLUMN usage TEXT")
            self._db.commit()
        except sqlite3.DatabaseError as err:
            raise SlmbenchError(f"reply cache {self.path}: unusable ({err}); delete it to "
                                "start afresh") from None

    def get_with_usage(self, key: str) -> tuple[str, dict[str, Any]] | None:
        """The reply and the token ``usage`` recorded with it (``{}`` when none was)."""
        with self._lock:
            row = self._db.execute("SELECT reply, usage FROM replies WHERE key = ?",
                                   (key,)).fetchone()
        if row is None:
            return None
        self.hits += 1
        try:
            usage = json.loads(row[1]) if row[1] else {}
        except ValueError:
            usage = {}
        return row[0], usage if isinstance(usage, dict) else {}

    def get(self, key: str) -> str | None:
        hit = self.get_with_usage(key)
        return hit[0] if hit else None

    def put(self, key: str, model_id: str, version: str, reply: str,
            usage: dict[str, Any] | None = None, replace: bool = True) -> None:
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        with self._lock, self._db:
            self._db.execute(f"{verb} INTO replies VALUES (?, ?, ?, ?, ?, ?)",
                             (key, model_id, version, reply, time.time(),
                              json.dumps(usage) if usage else None))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> ReplyCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
