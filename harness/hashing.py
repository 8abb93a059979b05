"""Content hashes shared by the model cache, the adapter zoo and the training records."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(payload: Any) -> str:
    """Hash of a JSON-able value with sorted keys, so equal content always hashes equal."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_digest(path: Path) -> str:
    """The sha256 of a file, remembered by (path, size, mtime, inode) across processes.

    Run identities and response caches name files by content, so a data folder or a model
    copied again (new mtimes, same bytes) still finds its finished runs; the memo keeps a
    538 MB checkpoint from being re-read on every run.
    """
    import os

    from harness.paths import cache_dir

    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ino}"
    memo_file = cache_dir() / "file_sha256.json"
    try:
        memo = json.loads(memo_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        memo = {}
    if not isinstance(memo, dict):
        memo = {}
    digest = memo.get(key)
    if isinstance(digest, str) and len(digest) == 64:
        return digest
    digest = sha256_file(path)
    if stat.st_size >= 1 << 20:  # small files hash faster than the memo round trip
        memo[key] = digest
        try:
            memo_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo_file.with_name(f".{memo_file.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(memo, sort_keys=True), encoding="utf-8")
            os.replace(tmp, memo_file)
        except OSError:
            pass  # a read-only cache only costs the re-hash
    return digest


# A folder's completion marker says how and where it was made (source path, file mtimes), not
# what it holds: two builds of the same weights on two machines differ in it, so a content
# digest leaves it out (else no run of the embedded model is ever found again on a new machine).
COMPLETION_MARKER = "slmbench_complete.json"


def files_digest(root: Path) -> list[tuple[str, str]]:
    """(name relative to ``root``, sha256) of a file or of every file under a folder."""
    root = Path(root)
    if root.is_file():
        return [(root.name, file_digest(root))]
    return [(p.relative_to(root).as_posix(), file_digest(p))
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != COMPLETION_MARKER]
