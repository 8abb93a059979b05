"""Drop exact and near-identical examples (word shingles, Jaccard, MinHash-LSH blocking).

Text is normalised (Unicode NFKC, case-folded, punctuation removed, whitespace collapsed)
and cut into word ``shingle``-grams. Two examples are near-duplicates when the Jaccard
similarity of their shingle sets is at least ``threshold``. Comparing every pair would be
quadratic, so a MinHash signature blocks first: each shingle is hashed once (blake2b,
64 bits), spread over ``bands x rows`` bins (one-permutation MinHash, empty bins filled by
rotation), and only examples that agree on all rows of some band are compared exactly.

Examples are visited in id order and the first of a group is kept, so the result does not
depend on the order they arrive in. 30,000 examples take a few seconds on one core.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

DEFAULT_THRESHOLD = 0.8
DEFAULT_SHINGLE = 3
DEFAULT_BANDS = 8
DEFAULT_ROWS = 4
_EMPTY = 1 << 64
_ROTATE = 1 << 58  # offset for a bin filled from its neighbour, so it never equals a real one
_NON_WORD = re.compile(r"[\W_]+")
_MEMO_LIMIT = 1 << 20


def normalise(text: str) -> str:
    """NFKC, case-folded, punctuation to spaces, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_NON_WORD.sub(" ", text).split())


def _gram_hash(gram: str) -> int:
    return int.from_bytes(hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest(), "little")


def _grams(normalised: str, k: int) -> Iterable[str]:
    words = normalised.split()
    if len(words) <= k:
        return [" ".join(words)] if words else []
    return {" ".join(words[i:i + k]) for i in range(len(words) - k + 1)}


def shingles(text: str, k: int = DEFAULT_SHINGLE,
             memo: dict[str, int] | None = None) -> frozenset[int]:
    """64-bit hashes of the word ``k``-grams of normalised ``text`` (one gram if shorter).

    ``memo`` caches gram hashes across calls: templated text repeats the same grams (30,000
    telecom examples hold ~35,000 distinct 3-grams among 3.4 million), so most are hashed once.
    """
    return _hashed(normalise(text), k, memo)


def _hashed(normalised: str, k: int, memo: dict[str, int] | None) -> frozenset[int]:
    out = set()
    for gram in _grams(normalised, k):
        h = memo.get(gram) if memo is not None else None
        if h is None:
            h = _gram_hash(gram)
            if memo is not None:
                if len(memo) >= _MEMO_LIMIT:
                    memo.clear()
                memo[gram] = h
        out.add(h)
    return frozenset(out)


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    if not a and not b:
        return 1.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def signature(hashes: frozenset[int], bins: int) -> list[int]:
    """One-permutation MinHash: the least hash per bin, empty bins filled by rotation."""
    sig = [_EMPTY] * bins
    for h in hashes:
        b, v = h % bins, h // bins
        if v < sig[b]:
            sig[b] = v
    if _EMPTY in sig and len(set(sig)) > 1:
        filled = list(sig)
        for j in range(bins):
            d = 1
            while sig[j] == _EMPTY:
                if sig[(j + d) % bins] != _EMPTY:
                    filled[j] = sig[(j + d) % bins] + d * _ROTATE
                    break
                d += 1
        sig = filled
    return sig


def example_text(record: dict[str, Any]) -> str:
    """What dedup compares: all turns of a conversation, else question and answer."""
    messages = record.get("messages")
    if messages:
        return "\n".join(str(m.get("content", "")) for m in messages)
    return f"{record.get('question', '')}\n{record.get('answer', '')}"


@dataclass
class DedupReport:
    total: int = 0
    exact: int = 0
    near: int = 0
    kept: int = 0
    compared: int = 0
    threshold: float = DEFAULT_THRESHOLD
    shingle: int = DEFAULT_SHINGLE

    @property
    def dropped(self) -> int:
        return self.exact + self.near

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "dropped": self.dropped}


def dedup(
    records: list[dict[str, Any]],
    *,
    text: Callable[[dict[str, Any]], str] = example_text,
    threshold: float = DEFAULT_THRESHOLD,
    shingle: int = DEFAULT_SHINGLE,
    bands: int = DEFAULT_BANDS,
    rows: int = DEFAULT_ROWS,
) -> tuple[list[dict[str, Any]], DedupReport]:
    """The records that survive, in their input order, and what was dropped."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"dedup threshold must be in (0, 1], got {threshold}")
    report = DedupReport(total=len(records), threshold=threshold, shingle=shingle)
    texts = [normalise(text(r)) for r in records]
    memo: dict[str, int] = {}
    order = sorted(range(len(records)), key=lambda i: (str(records[i].get("id", "")), texts[i]))
    seen_text: set[str] = set()
    kept_sets: dict[int, frozenset[int]] = {}
    buckets: dict[tuple[int, ...], list[int]] = {}
    for i in order:
        if texts[i] in seen_text:
            report.exact += 1
            continue
        seen_text.add(texts[i])
        grams = _hashed(texts[i], shingle, memo)
        sig = signature(grams, bands * rows)
        keys = [(band, *sig[band * rows:(band + 1) * rows]) for band in range(bands)]
        candidates = {j for key in keys for j in buckets.get(key, ())}
        report.compared += len(candidates)
        if any(jaccard(grams, kept_sets[j]) >= threshold for j in sorted(candidates)):
            report.near += 1
            continue
        kept_sets[i] = grams
        for key in keys:
            buckets.setdefault(key, []).append(i)
    survivors = [r for i, r in enumerate(records) if i in kept_sets]
    report.kept = len(survivors)
    return survivors, report
