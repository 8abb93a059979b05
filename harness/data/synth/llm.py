"""Optional expansion through an OpenAI-compatible endpoint (``POST {base_url}/chat/completions``).

- Transport: ``httpx`` when it is installed (or ``httpx2``, its API-compatible successor that
  huggingface_hub pulls in), else ``urllib`` from the standard library.
- Cache: one JSON file per request under ``cache_dir``, keyed by the sha256 of
  ``(model, messages, params)``; a re-run with the same inputs makes no calls.
- Retries: connection errors, timeouts, 429 and 5xx are retried up to ``max_retries`` times
  with exponential backoff (``backoff_base * 2**attempt``, capped), or after the server's
  ``Retry-After`` (seconds or an HTTP date) when it sends one. Other statuses and malformed
  bodies fail at once.
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
import http.client
import importlib.util
import json
import logging
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from harness.errors import SlmbenchError
from harness.report.atomic import write_text_atomic

log = logging.getLogger(__name__)

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
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


class _Transient(Exception):
    """Connection error or timeout: worth a retry."""


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


class RateLimiter:
    """Spaces request starts at least ``1 / rps`` seconds apart."""

    def __init__(self, rps: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rps
        self.clock, self.sleep = clock, sleep
        self._next: float | None = None

    def wait(self) -> None:
        now = self.clock()
        if self._next is not None and now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


def cache_key(model: str, messages: Messages, params: dict[str, Any]) -> str:
    payload = json.dumps({"model": model, "messages": messages, "params": params},
                         sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _post_urllib(url: str, body: bytes, headers: dict[str, str],
                 timeout: float) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        hdrs = {k.lower(): v for k, v in err.headers.items()} if err.headers else {}
        try:
            data = err.read()
        except (OSError, http.client.HTTPException):
            data = b""
        return err.code, hdrs, data
    except urllib.error.URLError as err:
        kind = "timeout" if isinstance(err.reason, (TimeoutError, socket.timeout)) else \
            "connection error"
        raise _Transient(kind) from None
    except TimeoutError:
        raise _Transient("timeout") from None
    except (OSError, http.client.HTTPException):
        raise _Transient("connection error") from None


def _httpx_poster(module: str) -> Callable[..., tuple[int, dict[str, str], bytes]]:
    """A poster on ``httpx`` (or ``httpx2``, its API-compatible successor)."""
    httpx = importlib.import_module(module)

    def post(url: str, body: bytes, headers: dict[str, str],
             timeout: float) -> tuple[int, dict[str, str], bytes]:
        try:
            resp = httpx.post(url, content=body, headers=headers, timeout=timeout)
        except httpx.TimeoutException:
            raise _Transient("timeout") from None
        except httpx.TransportError:
            raise _Transient("connection error") from None
        return resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, resp.content

    return post


def _transport(name: str) -> Callable[..., tuple[int, dict[str, str], bytes]]:
    """``auto``: httpx if installed, else httpx2, else urllib."""
    candidates = {"auto": ("httpx", "httpx2"), "httpx": ("httpx", "httpx2")}.get(name, ())
    for module in candidates:
        if importlib.util.find_spec(module) is not None:
            return _httpx_poster(module)
    if name == "httpx":
        raise SlmbenchError("transport 'httpx' asked for, but neither httpx nor httpx2 is "
                            "installed")
    return _post_urllib


def _completion_text(body: Any) -> tuple[str, dict[str, Any]]:
    """The first choice's message content and the usage block, or ValueError."""
    if not isinstance(body, dict):
        raise ValueError("response is not a JSON object")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("response has no 'choices'")
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise ValueError("response has no choices[0].message.content string")
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    return content, usage


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
        self._post = _transport(config.transport)
        if not os.environ.get(config.api_key_env):
            log.warning("environment variable %s is not set: calling %s without an API key",
                        config.api_key_env, config.base_url)

    # -- redaction, cache and log -------------------------------------------------------
    def _redact(self, text: str) -> str:
        key = os.environ.get(self.config.api_key_env, "")
        return text.replace(key, "[REDACTED]") if len(key) >= 4 else text

    def _cache_path(self, key: str) -> Path | None:
        return self.config.cache_dir / key[:2] / f"{key}.json" if self.config.cache_dir else None

    def _cached(self, key: str) -> tuple[str, dict[str, Any]] | None:
        path = self._cache_path(key)
        if path is None or not path.is_file():
            return None
        try:
            return _completion_text(json.loads(path.read_text(encoding="utf-8"))["response"])
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
        body = json.dumps({"model": self.config.model, "messages": messages,
                           **self.config.params}).encode("utf-8")
        url = f"{self.config.base_url}/chat/completions"
        attempt = 0
        while True:
            self.limiter.wait()
            headers = {"Content-Type": "application/json", "Accept": "application/json"}
            api_key = os.environ.get(self.config.api_key_env)
            if api_key:
                headers["Authorization"] = f"Bearer {api_key}"
            started = time.monotonic()
            status, resp_headers, data, problem = None, {}, b"", ""
            try:
                status, resp_headers, data = self._post(url, body, headers, self.config.timeout)
            except _Transient as err:
                problem = str(err)
            self.report.http_calls += 1
            latency = round(time.monotonic() - started, 3)
            if status == 200:
                return self._accept(key, messages, item, attempt, data, latency)
            if status is not None:
                problem = f"http {status}"
            retryable = status is None or status == 429 or 500 <= status < 600
            detail = self._redact(data[:200].decode("utf-8", "replace")) if data else ""
            if not retryable or attempt >= self.config.max_retries:
                reason = problem if not retryable else f"retries exhausted ({problem})"
                self._log(item=item, cache_key=key, outcome="failed", status=status,
                          attempt=attempt, error=problem, detail=detail, latency_s=latency)
                raise CallFailed(reason, detail)
            wait = parse_retry_after(resp_headers.get("retry-after"))
            wait = min(wait, self.config.retry_after_max) if wait is not None else \
                min(self.config.backoff_max, self.config.backoff_base * 2 ** attempt)
            self._log(item=item, cache_key=key, outcome="retry", status=status, attempt=attempt,
                      error=problem, detail=detail, latency_s=latency, wait_s=round(wait, 3))
            self.report.retries += 1
            self.sleep(wait)
            attempt += 1

    def _accept(self, key: str, messages: Messages, item: str, attempt: int, data: bytes,
                latency: float) -> str:
        try:
            body = json.loads(data.decode("utf-8"))
            text, usage = _completion_text(body)
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
