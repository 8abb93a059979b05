"""Judge backends behind one interface: an OpenAI-compatible HTTP server, or llama.cpp in process.

``HttpJudgeClient`` posts to ``{base_url}/chat/completions`` (httpx when installed, else
urllib) with a per-request timeout, a requests-per-second limit and bounded retries with
exponential backoff on connection errors, timeouts, 429 (honouring ``Retry-After``) and 5xx.
The API key is read from the environment variable the user names at each request and is
sent only as the ``Authorization`` header: it is never stored on the client, logged, put in
an exception's message or written to a record (a server echoing it back is redacted).

``LocalJudgeClient`` runs a GGUF through ``llama_cpp.Llama.create_chat_completion``; the
import and the model load happen at the first call.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from harness.errors import SlmbenchError

log = logging.getLogger(__name__)

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
MAX_RETRY_AFTER_S = 120.0  # a server asking for longer than this is waited on this long
LOOPBACK = {"localhost", "127.0.0.1", "::1"}

Messages = list[dict[str, str]]


class JudgeCallError(Exception):
    """A judge call that failed for good (retries spent or not retryable); message is key-free."""


class JudgeClient(Protocol):
    name: str
    """Short label shown in tables and verdict records."""

    model_id: str
    """What identifies the judge's behaviour in the cache key (model, and GGUF for local)."""

    max_workers: int
    """How many calls may run at once (1 for an in-process model)."""

    def describe(self) -> dict[str, Any]:
        """The judge for ``run.json``: backend, model, base url; never a key."""

    def chat(self, messages: Messages, max_tokens: int = 512) -> str:
        """The assistant's reply text; raises ``JudgeCallError``."""

    def redact(self, text: str) -> str:
        """``text`` with any credential of this judge replaced by ``***``."""


class RateLimiter:
    """Spaces request starts at least ``1 / rps`` seconds apart, across threads."""

    def __init__(self, rps: float | None) -> None:
        self.interval = 1.0 / rps if rps and rps > 0 else 0.0
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


@dataclass
class _Failure:
    message: str
    retryable: bool
    retry_after: float | None = None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


class HttpJudgeClient:
    """An OpenAI-compatible ``/chat/completions`` judge (temperature 0)."""

    def __init__(self, base_url: str, model: str, api_key_env: str | None = DEFAULT_KEY_ENV,
                 timeout: float = 60.0, max_retries: int = 3, rps: float | None = 2.0,
                 backoff: float = 1.0, max_backoff: float = 30.0, max_workers: int = 4,
                 name: str | None = None, max_consecutive_failures: int = 5) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise SlmbenchError(f"judge base url {base_url!r} must start with http:// or https://")
        if not model:
            raise SlmbenchError(f"judge {base_url}: no model named (use BASE_URL=MODEL)")
        self.base_url = base_url.rstrip("/")
        self.model = model
        # Local servers often serve any model under a generic name: the url is part of it.
        self.model_id = f"{model}@{self.base_url}"
        self.name = name or model
        self.api_key_env = api_key_env or None
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_workers = max(1, max_workers)
        self.limiter = RateLimiter(rps)
        self.calls = 0  # HTTP requests sent, retries included
        self._failures = 0
        self._max_failures = max_consecutive_failures
        self._lock = threading.Lock()
        self._opener = self._build_opener()

    def __repr__(self) -> str:
        return f"HttpJudgeClient({self.base_url!r}, {self.model!r})"

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "backend": "http", "base_url": self.base_url,
                "model": self.model, "api_key_env": self.api_key_env}

    # --- transport ---------------------------------------------------------------------

    def _build_opener(self) -> urllib.request.OpenerDirector:
        host = urlsplit(self.base_url).hostname or ""
        # A local server is reached directly even when an HTTP proxy is configured.
        handlers = [urllib.request.ProxyHandler({})] if host in LOOPBACK else []
        return urllib.request.build_opener(*handlers)

    def _key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def redact(self, text: str) -> str:
        key = self._key()
        return text.replace(key, "***") if key else text

    def _post(self, payload: bytes) -> tuple[int, dict[str, str], bytes]:
        """One POST: (status, headers, body); raises on transport failure."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = self._key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        url = f"{self.base_url}/chat/completions"
        try:
            import httpx
        except ImportError:
            httpx = None
        if httpx is not None:
            try:
                resp = httpx.post(url, content=payload, headers=headers, timeout=self.timeout,
                                  trust_env=urlsplit(url).hostname not in LOOPBACK)
            except httpx.TimeoutException:
                raise TimeoutError("timed out") from None
            except httpx.HTTPError as err:
                raise ConnectionError(type(err).__name__) from None
            return resp.status_code, dict(resp.headers), resp.content
        request = urllib.request.Request(url, data=payload, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            body = err.read() if err.fp is not None else b""
            return err.code, dict(err.headers or {}), body

    def _attempt(self, payload: bytes) -> str | _Failure:
        self.limiter.wait()
        with self._lock:
            self.calls += 1
        try:
            status, headers, body = self._post(payload)
        except (TimeoutError, urllib.error.URLError, OSError, http.client.HTTPException) as err:
            reason = getattr(err, "reason", err)
            if isinstance(reason, TimeoutError) or isinstance(err, TimeoutError):
                return _Failure(f"timed out after {self.timeout:g}s", True)
            return _Failure(f"connection failed ({type(reason).__name__}: {reason})", True)
        if status == 429 or status >= 500:
            retry_after = parse_retry_after({k.lower(): v for k, v in headers.items()}
                                            .get("retry-after"))
            return _Failure(f"HTTP {status}{_snippet(body)}", True, retry_after)
        if status >= 400:
            return _Failure(f"HTTP {status}{_snippet(body)}", False)
        try:
            data = json.loads(body)
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return _Failure(f"malformed chat completion response{_snippet(body)}", True)
        if not isinstance(content, str):
            return _Failure("chat completion without text content", True)
        return content

    def _delay(self, attempt: int, failure: _Failure) -> float:
        delay = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + random.random() / 2)
        if failure.retry_after is not None:
            delay = max(delay, min(failure.retry_after, MAX_RETRY_AFTER_S))
        return delay

    def chat(self, messages: Messages, max_tokens: int = 512) -> str:
        with self._lock:
            if self._max_failures and self._failures >= self._max_failures:
                raise JudgeCallError(f"judge {self.name} skipped: {self._failures} consecutive "
                                     "calls failed (server unreachable?)")
        payload = json.dumps({"model": self.model, "messages": messages, "temperature": 0,
                              "max_tokens": max_tokens}).encode("utf-8")
        for attempt in range(self.max_retries + 1):
            result = self._attempt(payload)
            if isinstance(result, str):
                with self._lock:
                    self._failures = 0
                return result
            if not result.retryable or attempt == self.max_retries:
                break
            delay = self._delay(attempt, result)
            log.warning("judge %s: %s; retry %d/%d in %.1fs", self.name,
                        self.redact(result.message), attempt + 1, self.max_retries, delay)
            time.sleep(delay)
        with self._lock:  # only an unreachable or failing server trips the breaker
            self._failures = self._failures + 1 if result.retryable else 0
        tries = f" (gave up after {attempt + 1} attempts)" if result.retryable else ""
        raise JudgeCallError(self.redact(f"judge {self.name}: {result.message}{tries}"))


def _snippet(body: bytes, limit: int = 200) -> str:
    text = body.decode("utf-8", "replace").strip().replace("\n", " ")
    if not text:
        return ""
    return f": {text[:limit]}{'...' if len(text) > limit else ''}"


class LocalJudgeClient:
    """A GGUF judged in process with llama-cpp-python (``local:embedded`` or ``local:PATH``)."""

    max_workers = 1

    def __init__(self, gguf: str | Path | None = None, n_ctx: int = 4096, seed: int = 0,
                 n_threads: int | None = None) -> None:
        if gguf is None or str(gguf) in ("", "embedded"):
            from harness.models.embedded import gguf_path

            gguf = gguf_path()
        self.gguf = Path(gguf)
        if not self.gguf.is_file():
            raise SlmbenchError(f"local judge: GGUF {self.gguf} not found")
        stat = self.gguf.stat()
        self.name = f"local:{self.gguf.stem}"
        self.model_id = f"local:{self.gguf.name}:{stat.st_size}"
        self.n_ctx, self.seed, self.n_threads = n_ctx, seed, n_threads
        self.calls = 0
        self._llm: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalJudgeClient({str(self.gguf)!r})"

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "backend": "local", "model": self.gguf.name,
                "gguf": str(self.gguf)}

    def redact(self, text: str) -> str:
        return text

    def _load(self) -> Any:
        if self._llm is None:
            try:
                from llama_cpp import Llama
            except ImportError as err:
                raise SlmbenchError("local judge needs llama-cpp-python "
                                    "(pip install 'slmbench[llama-cpp]')") from err
            self._llm = Llama(model_path=str(self.gguf), n_ctx=self.n_ctx, seed=self.seed,
                              n_threads=self.n_threads, verbose=False)
        return self._llm

    def chat(self, messages: Messages, max_tokens: int = 512) -> str:
        with self._lock:  # one llama.cpp context is not safe to share across threads
            llm = self._load()
            self.calls += 1
            try:
                out = llm.create_chat_completion(messages=messages, temperature=0.0,
                                                 max_tokens=max_tokens)
                return out["choices"][0]["message"]["content"] or ""
            except Exception as err:  # noqa: BLE001 - any llama.cpp failure fails this item
                raise JudgeCallError(f"local judge {self.name}: {type(err).__name__}: "
                                     f"{err}") from None


def parse_judge_spec(spec: str, api_key_env: str | None = DEFAULT_KEY_ENV,
                     **options: Any) -> JudgeClient:
    """``BASE_URL=MODEL`` (HTTP), ``local:embedded`` or ``local:PATH.gguf``."""
    if spec.startswith("local:"):
        return LocalJudgeClient(spec[len("local:"):] or None)
    base_url, sep, model = spec.rpartition("=")
    if not sep or not base_url or not model:
        raise SlmbenchError(f"--judge {spec!r}: expected BASE_URL=MODEL (e.g. "
                            "http://127.0.0.1:8080/v1=qwen2.5-7b-instruct) or local:embedded")
    return HttpJudgeClient(base_url, model, api_key_env=api_key_env, **options)
