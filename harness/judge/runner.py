"""Judge a batch and record it in the run store as a ``judge`` run.

Every (item, judge) pair gets one record in ``verdicts.jsonl``: ``judged`` with scores,
reasons and overall (rubric) or the winner (pairwise), or ``unjudged`` with the reason. One
item failing, for whatever cause, never loses the rest of the batch. ``run.json`` holds the
judges (model ids and base urls, never a key), the rubric version, the run judged and the
mode; its ``summary`` holds each judge's ``judge_score`` and counts, and inter-judge
agreement when there are two or more judges. Replies are cached (``cache``), so running the
same command again, or again after a kill, makes no repeat calls.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import SlmbenchError
from harness.hashing import sha256_json
from harness.judge.ask import Unjudged
from harness.judge.client import JudgeClient
from harness.judge.items import Item, Source, load_items
from harness.judge.pairwise import PAIRWISE_VERSION, judge_pair
from harness.judge.rubric import DEFAULT_DOMAIN, RUBRIC_VERSION, judge_rubric
from harness.judge.summary import summarize
from harness.openai_compat.cache import ReplyCache
from harness.runs.store import RUN_FILE, store_root, write_run, write_samples

log = logging.getLogger(__name__)

MODES = ("rubric", "pairwise")
VERDICTS = "verdicts.jsonl"


@dataclass
class JudgeJob:
    source: str | Path
    judges: list[JudgeClient]
    mode: str = "rubric"
    against: str | Path | None = None
    tasks: list[str] | None = None
    limit: int | None = None
    max_retries: int = 3
    domain: str = DEFAULT_DOMAIN
    store: str | Path | None = None
    cache: str | Path | None | bool = True  # True: <store>/judge/.cache; False: none
    label: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Pair:
    item: Item
    other: Item | None = None  # pairwise: the B side


def default_cache_path(store: str | Path | None = None) -> Path:
    return store_root(store) / "judge" / ".cache" / "verdicts.sqlite"


def unique_names(judges: list[JudgeClient]) -> None:
    """Give judges sharing a model name a ``@host`` suffix so records tell them apart."""
    from urllib.parse import urlsplit

    names = [j.name for j in judges]
    for judge in judges:
        if names.count(judge.name) > 1 and getattr(judge, "base_url", None):
            judge.name = f"{judge.name}@{urlsplit(judge.base_url).netloc}"
    names = [j.name for j in judges]
    if len(set(names)) != len(names):
        raise SlmbenchError(f"judges named twice: {', '.join(sorted(set(names)))}")


def _pairs(job: JudgeJob) -> tuple[list[Pair], dict[str, Any], dict[str, Any] | None]:
    source: Source = load_items(job.source, job.tasks, job.limit)
    job.notes += source.notes
    if job.mode == "rubric":
        if job.against is not None:
            raise SlmbenchError("--against is for --mode pairwise")
        return [Pair(item) for item in source.items], source.info, None
    if job.against is None:
        raise SlmbenchError("--mode pairwise needs --against RUN_FOLDER (or items file)")
    other = load_items(job.against, job.tasks)
    job.notes += other.notes
    by_key = {item.key: item for item in other.items}
    pairs = [Pair(item, by_key[item.key]) for item in source.items if item.key in by_key]
    if not pairs:
        raise SlmbenchError(f"{job.source} and {job.against} share no item ids")
    if len(pairs) < len(source.items):
        job.notes.append(f"{len(source.items) - len(pairs)} items of {job.source} are not in "
                         f"{job.against}; left out")
    return pairs, source.info, other.info


def judge_one(judge: JudgeClient, pair: Pair, mode: str, cache: ReplyCache | None,
              max_retries: int, domain: str) -> dict[str, Any]:
    item = pair.item
    record: dict[str, Any] = {"key": item.key, "id": item.id, "task": item.task,
                              "judge": judge.name, "mode": mode}
    if item.reference_score is not None and mode == "rubric":
        record["reference_score"] = item.reference_score
    try:
        responses = [item.response] + ([pair.other.response] if pair.other else [])
        if any(r is None or not r.strip() for r in responses):
            raise Unjudged("no response recorded")
        question = item.question or (pair.other.question if pair.other else None)
        if not question and not item.reference:
            raise Unjudged("neither a question nor a reference answer to judge against")
        if mode == "rubric":
            verdict = judge_rubric(judge, question, item.response, item.reference, cache,
                                   max_retries, domain)
        else:
            verdict = judge_pair(judge, question, item.response, pair.other.response,
                                 item.reference, cache, max_retries, domain)
    except Unjudged as err:
        verdict = {"status": "unjudged", "reason": str(err)}
    except Exception as err:  # noqa: BLE001 - one item's failure never loses the batch
        log.debug("judging %s with %s failed", item.key, judge.name, exc_info=True)
        verdict = {"status": "unjudged", "reason": f"{type(err).__name__}: {err}"}
    record.update(verdict)
    # A server echoing the key back must not get it into a record.
    return json.loads(judge.redact(json.dumps(record, ensure_ascii=False)))


def judge_all(judges: list[JudgeClient], pairs: list[Pair], mode: str,
              cache: ReplyCache | None, max_retries: int = 3, domain: str = DEFAULT_DOMAIN,
              progress: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """All (item, judge) records; each judge runs its own pool of ``max_workers`` calls."""
    pools = [ThreadPoolExecutor(max_workers=j.max_workers, thread_name_prefix="judge")
             for j in judges]
    try:
        futures = [pool.submit(judge_one, judge, pair, mode, cache, max_retries, domain)
                   for judge, pool in zip(judges, pools, strict=True) for pair in pairs]
        records = []
        for future in futures:
            records.append(future.result())
            if progress:
                progress()
    finally:
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
    return sorted(records, key=lambda r: (r["key"], r["judge"]))


def run_judge(job: JudgeJob, progress: Callable[[int], Callable[[], None]] | None = None
              ) -> tuple[Path, dict[str, Any]]:
    """Judge ``job`` and write its run folder; returns (folder, manifest)."""
    if job.mode not in MODES:
        raise SlmbenchError(f"--mode {job.mode!r}: expected one of {', '.join(MODES)}")
    if not job.judges:
        raise SlmbenchError("judge needs at least one --judge")
    unique_names(job.judges)
    started = time.time()
    pairs, target, against = _pairs(job)
    version = RUBRIC_VERSION if job.mode == "rubric" else PAIRWISE_VERSION
    config = {"mode": job.mode, "rubric_version": version,
              "judges": [j.describe() for j in job.judges],
              "target_run_id": target.get("run_id"), "target": target,
              "against_run_id": against.get("run_id") if against else None,
              "against": against, "tasks": job.tasks, "limit": job.limit,
              "domain": job.domain, "max_retries": job.max_retries}
    # Named by what decides the verdicts: where the run or file sits, or the retry budget, not.
    identity = {k: v for k, v in config.items() if k not in ("max_retries", "target", "against")}
    identity["sources"] = [{k: v for k, v in info.items() if k != "path"}
                           for info in (target, against) if info]
    run_id = sha256_json(identity)[:16]
    cache_path = (default_cache_path(job.store) if job.cache is True
                  else (Path(job.cache) if job.cache else None))
    cache = ReplyCache(cache_path) if cache_path else None
    calls_before = sum(getattr(j, "calls", 0) for j in job.judges)
    try:
        tick = progress(len(pairs) * len(job.judges)) if progress else None
        records = judge_all(job.judges, pairs, job.mode, cache, job.max_retries, job.domain,
                            tick)
        hits = cache.hits if cache else 0
    finally:
        if cache:
            cache.close()
    folder = store_root(job.store) / "judge" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RUN_FILE).unlink(missing_ok=True)  # not a finished run until rewritten
    write_samples(folder / VERDICTS, records)
    names = [j.name for j in job.judges]
    label = job.label or f"{'/'.join(names)} on {target.get('label') or target['path']}"
    manifest = write_run(folder, "judge", run_id, config, [VERDICTS], started=started,
                         extra={"label": label, "summary": summarize(records, names, job.mode),
                                "calls": sum(getattr(j, "calls", 0) for j in job.judges)
                                - calls_before, "cache_hits": hits})
    return folder, manifest
