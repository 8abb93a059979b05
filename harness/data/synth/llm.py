"""Optional expansion through an OpenAI-compatible endpoint (``POST {base_url}/chat/completions``).

- Transport, outcome classification, ``Retry-After``, rate limiter, backoff and key redaction
  come from ``harness.openai_http`` (shared with the judge); this module adds the rest.
- Cache: one JSON file per request under ``cache_dir``, keyed by the sha256 of
  ``(model, messages, params)``; a re-run with the same inputs makes no calls.
- Retries: connection errors, timeouts, 429 and 5xx are retried up to ``max_retries`` times
  with exponential backoff (``backoff_base * 2**attempt``, capped), or longer when the server's
  ``Retry-After`` (seconds or an HTTP date) asks for it. Other statuses and malformed bodies
  fail at once.
- Rate limit: at most ``rps`` requests per second (calls are made one at a time).
- Log: one JSONL line per HTTP attempt and per cache hit, with the ``usage`` token counts
  and an estimated cost at ``price_per_1k`` (per 1,000 prompt + completion tokens).
- The API key is read from the environment variable ``api_key_env`` at each request and is
  sent only in the ``Authorization`` header: it is never kept on an object, and anything
  written to the cache or the log has it redacted, even if a server echoes it back.
- A failed item is counted under its reason and left out; the batch goes on.
"""

from __future__ import annotations

import hashlib
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
from harness.openai_http import (
    DEFAULT_KEY_ENV,
    RETRYABLE,
    ChatEndpoint,
    RateLimiter,
    backoff_delay,
    completion_text,
)
from harness.runs.atomic import write_text_atomic

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


class CallFailed(Exception):
    """A request that failed for good; ``reason`` is a short category, ``detail`` key-free."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason if not detail else f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


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


def cache_key(model: str, messages: Messages, params: dict[str, Any]) -> str:
    payload = json.dumps({"model": model, "messages": messages, "params": params},
                         sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _tokens(usage: dict[str, Any], name: str) -> int:
    value = usage.get(name, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class ChatClient:
    """Cached, rate-limited, retrying chat completions; ``report`` tallies what happened."""

    def __init__(self, config: LLMConfig, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.sleep = sleep
        self.limiter = RateLimiter(config.rps, clock=clock, sleep=sleep)
        self.report = LLMReport()
        self.endpoint = ChatEndpoint(config.base_url, config.api_key_env, config.timeout,
                                     config.transport)
        if not os.environ.get(config.api_key_env):
            log.warning("environment variable %s is not set: calling %s without an API key",
                        config.api_key_env, config.base_url)

    # -- redaction, cache and log -------------------------------------------------------
    def _redact(self, text: str) -> str:
        return self.endpoint.redact(text)

    def _cache_path(self, key: str) -> Path | None:
        return self.config.cache_dir / key[:2] / f"{key}.json" if self.config.cache_dir else None

    def _cached(self, key: str) -> tuple[str, dict[str, Any]] | None:
        path = self._cache_path(key)
        if path is None or not path.is_file():
            return None
        try:
            return completion_text(json.loads(path.read_text(encoding="utf-8"))["response"])
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable LLM cache entry %s", path)
            return None

    def _store(self, key: str, messages: Messages, body: dict[str, Any]) -> None:
        path = self._cache_path(key)
        if path is None:
            return
        entry = {"key": key, "model": self.config.model, "params": self.config.params,
                 "messages": messages, "response": body}
        write_text_atomic(path, self._redact(json.dumps(entry, ensure_ascii=False, indent=1)))

    def _log(self, **entry: Any) -> None:
        if self.config.log_path is None:
            return
        entry = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                 "model": self.config.model, **entry}
        self.config.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.config.log_path.open("a", encoding="utf-8") as fh:
            fh.write(self._redact(json.dumps(entry, ensure_ascii=False)) + "\n")

    # -- the call ----------------------------------------------------------------------
    def complete(self, messages: Messages, item: str = "") -> str:
        """The completion text for ``messages`` (from the cache when present)."""
        key = cache_key(self.config.model, messages, self.config.params)
        hit = self._cached(key)
        if hit is not None:
            text, usage = hit
            self.report.cache_hits += 1
            self._log(item=item, cache_key=key, outcome="cached", status=None, attempt=0,
                      prompt_tokens=_tokens(usage, "prompt_tokens"),
                      completion_tokens=_tokens(usage, "completion_tokens"), cost=0.0)
            return text
        payload = {"model": self.config.model, "messages": messages, **self.config.params}
        attempt = 0
        while True:
            self.limiter.wait()
            started = time.monotonic()
            out = self.endpoint.post(payload)
            self.report.http_calls += 1
            latency = round(time.monotonic() - started, 3)
            if out.ok:
                return self._accept(key, messages, item, attempt, out.body, latency)
            retryable = out.kind == RETRYABLE
            if not retryable or attempt >= self.config.max_retries:
                reason = out.problem if not retryable else f"retries exhausted ({out.problem})"
                self._log(item=item, cache_key=key, outcome="failed", status=out.status,
                          attempt=attempt, error=out.problem, detail=out.detail,
                          latency_s=latency)
                raise CallFailed(reason, out.detail)
            wait = backoff_delay(attempt, self.config.backoff_base, self.config.backoff_max,
                                 out.retry_after, self.config.retry_after_max)
            self._log(item=item, cache_key=key, outcome="retry", status=out.status,
                      attempt=attempt, error=out.problem, detail=out.detail, latency_s=latency,
                      wait_s=round(wait, 3))
            self.report.retries += 1
            self.sleep(wait)
            attempt += 1

    def _accept(self, key: str, messages: Messages, item: str, attempt: int, data: bytes,
                latency: float) -> str:
        try:
            body = json.loads(data.decode("utf-8"))
            text, usage = completion_text(body)
        except (UnicodeDecodeError, ValueError) as err:
            detail = self._redact(str(err))
            self._log(item=item, cache_key=key, outcome="failed", status=200, attempt=attempt,
                      error="malformed response", detail=detail, latency_s=latency)
            raise CallFailed("malformed response", detail) from None
        prompt, completion = _tokens(usage, "prompt_tokens"), _tokens(usage, "completion_tokens")
        cost = (prompt + completion) / 1000 * self.config.price_per_1k
        self.report.prompt_tokens += prompt
        self.report.completion_tokens += completion
        self.report.cost += cost
        self._log(item=item, cache_key=key, outcome="ok", status=200, attempt=attempt,
                  latency_s=latency, prompt_tokens=prompt, completion_tokens=completion,
                  cost=round(cost, 6))
        self._store(key, messages, body)
        return text


def run_items(client: ChatClient, items: Iterable[LLMItem]) -> list[dict[str, Any]]:
    """Records from every item that succeeds; failures are counted in ``client.report``."""
    out: list[dict[str, Any]] = []
    report = client.report
    for item in items:
        report.items += 1
        try:
            records = item.parse(client.complete(item.messages, item=item.key))
        except CallFailed as err:
            report.fail(err.reason)
            log.warning("LLM item %s failed: %s", item.key, err.reason)
            continue
        except ValueError as err:
            report.fail("unusable completion")
            client._log(item=item.key, outcome="unusable", error=client._redact(str(err)))
            log.warning("LLM item %s: unusable completion (%s)", item.key, err)
            continue
        report.succeeded += 1
        report.records += len(records)
        out.extend(records)
    return out
