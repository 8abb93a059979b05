"""Optional expansion through an OpenAI-compatible endpoint (``POST {base_url}/chat/completions``).

- The call itself (transport, rate limit, retries with backoff or the server's
  ``Retry-After``, the one error type, key redaction) is the shared client's
  (``harness.openai_compat``, also the judge's). Connection errors, timeouts, 429 and 5xx are
  retried up to ``max_retries`` times; other statuses and malformed bodies fail at once, so a
  billed reply is never asked for twice.
- Cache: the shared reply cache (``replies.sqlite`` under ``cache_dir``), keyed by the sha256
  of ``(model, params, messages)``; a re-run with the same inputs makes no calls. Entries from
  the file-per-request cache of earlier versions are taken over, not asked again.
- Log: one JSONL line per HTTP attempt and per cache hit, with the ``usage`` token counts
  and an estimated cost at ``price_per_1k`` (per 1,000 prompt + completion tokens).
- The API key is read from the environment variable ``api_key_env`` at each request and is
  sent only in the ``Authorization`` header: it is never kept on an object, and anything
  written to the cache or the log has it redacted, even if a server echoes it back.
- A failed item is counted under its reason and left out; the batch goes on.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.errors import SlmbenchError
from harness.openai_compat.cache import ReplyCache, reply_key
from harness.openai_compat.client import Attempt, ChatCallError, ChatClient, RetryPolicy
from harness.openai_compat.transport import DEFAULT_KEY_ENV, ChatEndpoint, completion_text
from harness.openai_compat.transport import RateLimiter as RateLimiter  # re-exported

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]


@dataclass
class LLMConfig:
    base_url: str
    model: str
    api_key_env: str = DEFAULT_KEY_ENV
    rps: float = 2.0
    price_per_1k: float = 0.0
    cache_dir: Path | None = None
    log_path: Path | None = None
    max_retries: int = 4
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    retry_after_max: float = 120.0
    timeout: float = 60.0
    temperature: float = 0.7
    max_tokens: int = 800
    transport: str = "auto"  # "auto" (httpx/httpx2 if installed, else urllib), "httpx", "urllib"

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise SlmbenchError(f"--llm-base-url must start with http:// or https://, got "
                                f"{self.base_url!r}")
        if not self.model.strip():
            raise SlmbenchError("--llm-model must name the model to call")
        if not self.rps > 0:
            raise SlmbenchError(f"--llm-rps must be > 0, got {self.rps}")
        if self.price_per_1k < 0:
            raise SlmbenchError(f"--llm-price-per-1k must be >= 0, got {self.price_per_1k}")
        if self.max_retries < 0:
            raise SlmbenchError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.transport not in ("auto", "httpx", "urllib"):
            raise SlmbenchError(f"transport must be auto, httpx or urllib, got {self.transport!r}")
        self.base_url = self.base_url.rstrip("/")
        self.cache_dir = Path(self.cache_dir) if self.cache_dir else None
        self.log_path = Path(self.log_path) if self.log_path else None

    @property
    def params(self) -> dict[str, Any]:
        """Request parameters that shape the completion (part of the cache key)."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens}

    def describe(self) -> dict[str, Any]:
        """For ``synth_report.json``: endpoint, model and settings, never the key."""
        return {"base_url": self.base_url, "model": self.model, "api_key_env": self.api_key_env,
                "rps": self.rps, "price_per_1k": self.price_per_1k, **self.params}


@dataclass
class LLMItem:
    """One request: ``parse`` turns the completion text into records or raises ValueError."""

    key: str
    messages: Messages
    parse: Callable[[str], list[dict[str, Any]]]


@dataclass
class LLMReport:
    items: int = 0
    succeeded: int = 0
    failed: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    records: int = 0
    http_calls: int = 0
    retries: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    def fail(self, reason: str) -> None:
        self.failed += 1
        self.failures[reason] = self.failures.get(reason, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cost"] = round(self.cost, 6)
        out["failures"] = dict(sorted(self.failures.items()))
        return out


CACHE_FILE = "replies.sqlite"


def _tokens(usage: dict[str, Any], name: str) -> int:
    value = usage.get(name, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class ExpanderChat:
    """The expander's calls: the shared client, plus its cache, call log and cost tally."""

    def __init__(self, config: LLMConfig, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.report = LLMReport()
        self.endpoint = ChatEndpoint(config.base_url, config.api_key_env, config.timeout,
                                     config.transport)
        policy = RetryPolicy(max_retries=config.max_retries, backoff_base=config.backoff_base,
                             backoff_max=config.backoff_max,
                             retry_after_max=config.retry_after_max)
        self.client = ChatClient(self.endpoint, config.model, policy, config.rps,
                                 sleep=sleep, clock=clock)
        self.version = json.dumps(config.params, sort_keys=True)
        self.cache = ReplyCache(config.cache_dir / CACHE_FILE) if config.cache_dir else None
        if self.cache is not None:
            self._take_over_file_cache(config.cache_dir)
        if not os.environ.get(config.api_key_env):
            log.warning("environment variable %s is not set: calling %s without an API key",
                        config.api_key_env, config.base_url)

    def redact(self, text: str) -> str:
        return self.endpoint.redact(text)

    def _take_over_file_cache(self, folder: Path) -> None:
        """Replies cached one JSON file each (before the shared cache) are not paid twice."""
        for path in sorted(folder.glob("??/*.json")):
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
                if entry["model"] != self.config.model or entry["params"] != self.config.params:
                    continue
                text, usage = completion_text(entry["response"])
                key = reply_key(self.config.model, self.version, entry["messages"])
            except (OSError, ValueError, KeyError, TypeError):
                log.warning("ignoring unreadable LLM cache entry %s", path)
                continue
            self.cache.put(key, self.config.model, self.version, text, usage, replace=False)

    def _log(self, **entry: Any) -> None:
        if self.config.log_path is None:
            return
        entry = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                 "model": self.config.model, **entry}
        self.config.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.config.log_path.open("a", encoding="utf-8") as fh:
            fh.write(self.redact(json.dumps(entry, ensure_ascii=False)) + "\n")

    def complete(self, messages: Messages, item: str = "") -> str:
        """The completion text for ``messages`` (from the cache when present)."""
        key = reply_key(self.config.model, self.version, messages)
        hit = self.cache.get_with_usage(key) if self.cache is not None else None
        if hit is not None:
            text, usage = hit
            self.report.cache_hits += 1
            self._log(item=item, cache_key=key, outcome="cached", status=None, attempt=0,
                      prompt_tokens=_tokens(usage, "prompt_tokens"),
                      completion_tokens=_tokens(usage, "completion_tokens"), cost=0.0)
            return text

        def log_attempt(attempt: Attempt) -> None:
            entry: dict[str, Any] = {"item": item, "cache_key": key,
                                     "outcome": attempt.outcome, "status": attempt.status,
                                     "attempt": attempt.attempt, "latency_s": attempt.latency_s}
            if attempt.outcome == "ok":
                prompt = _tokens(attempt.usage, "prompt_tokens")
                completion = _tokens(attempt.usage, "completion_tokens")
                cost = (prompt + completion) / 1000 * self.config.price_per_1k
                self.report.prompt_tokens += prompt
                self.report.completion_tokens += completion
                self.report.cost += cost
                entry.update(prompt_tokens=prompt, completion_tokens=completion,
                             cost=round(cost, 6))
            else:
                entry.update(error=attempt.problem, detail=attempt.detail)
                if attempt.wait_s is not None:
                    entry["wait_s"] = attempt.wait_s
            self._log(**entry)

        calls, retries = self.client.calls, self.client.retries
        try:
            reply = self.client.complete(messages, on_attempt=log_attempt, **self.config.params)
        finally:
            self.report.http_calls += self.client.calls - calls
            self.report.retries += self.client.retries - retries
        if self.cache is not None:
            self.cache.put(key, self.config.model, self.version, self.redact(reply.text),
                           reply.usage)
        return reply.text


def run_items(client: ExpanderChat, items: Iterable[LLMItem]) -> list[dict[str, Any]]:
    """Records from every item that succeeds; failures are counted in ``client.report``."""
    out: list[dict[str, Any]] = []
    report = client.report
    for item in items:
        report.items += 1
        try:
            records = item.parse(client.complete(item.messages, item=item.key))
        except ChatCallError as err:
            report.fail(err.reason)
            log.warning("LLM item %s failed: %s", item.key, err.reason)
            continue
        except ValueError as err:
            report.fail("unusable completion")
            client._log(item=item.key, outcome="unusable", error=client.redact(str(err)))
            log.warning("LLM item %s: unusable completion (%s)", item.key, err)
            continue
        report.succeeded += 1
        report.records += len(records)
        out.extend(records)
    return out
