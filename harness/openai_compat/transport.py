"""The one HTTP client for OpenAI-compatible ``POST {base_url}/chat/completions`` servers.

Why it exists: the synthetic-data expander (``harness.data.synth.llm``) and the judge
(``harness.judge.client``) both call such servers and had grown two copies of the same
transport. This module holds what they share; each caller keeps its own policy (cache, call
log and cost for the expander; fail-fast and verdict retries for the judge).

- Transport: ``httpx`` when installed (or ``httpx2``, its API-compatible successor), else
  ``urllib``. A loopback server is reached directly, even when an HTTP proxy is configured.
- Outcome: ``ok`` (2xx), ``retryable`` (connection error, timeout, 429, 5xx; with the
  server's ``Retry-After``) or ``permanent`` (any other status).
- ``RateLimiter`` (thread-safe) and ``backoff_delay`` (exponential, capped, optional jitter).
- The API key is read from the environment variable named by the caller at each request and
  only put in the ``Authorization`` header; ``redact`` masks it in any text (error bodies).
"""

from __future__ import annotations

import http.client
import importlib
import importlib.util
import json
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from harness.errors import SlmbenchError

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
# Plain HTTP to another machine sends the key and every prompt in clear text: refused
# unless this variable is 1 (a lab network the user vouches for).
ALLOW_HTTP_ENV = "SLMBENCH_ALLOW_HTTP"
OK, RETRYABLE, PERMANENT = "ok", "retryable", "permanent"

Poster = Callable[[str, bytes, dict[str, str], float], tuple[int, dict[str, str], bytes]]


class TransportError(Exception):
    """No HTTP response: ``kind`` is ``timeout`` or ``connection error``; ``detail`` why."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(kind)
        self.kind, self.detail = kind, detail


def _direct(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK


@cache
def _direct_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()} if headers else {}


def post_urllib(url: str, body: bytes, headers: dict[str, str],
                timeout: float) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    opener = _direct_opener().open if _direct(url) else urllib.request.urlopen
    try:
        with opener(request, timeout=timeout) as resp:
            return resp.status, _lower(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        try:
            data = err.read() if err.fp is not None else b""
        except (OSError, http.client.HTTPException):
            data = b""
        return err.code, _lower(err.headers), data
    except urllib.error.URLError as err:
        timed_out = isinstance(err.reason, (TimeoutError, socket.timeout))
        raise TransportError("timeout" if timed_out else "connection error",
                             f"{type(err.reason).__name__}: {err.reason}") from None
    except TimeoutError:
        raise TransportError("timeout") from None
    except (OSError, http.client.HTTPException) as err:
        raise TransportError("connection error", f"{type(err).__name__}: {err}") from None


def _httpx_poster(module: str) -> Poster:
    httpx = importlib.import_module(module)

    def post(url: str, body: bytes, headers: dict[str, str],
             timeout: float) -> tuple[int, dict[str, str], bytes]:
        try:
            resp = httpx.post(url, content=body, headers=headers, timeout=timeout,
                              trust_env=not _direct(url))
        except httpx.TimeoutException:
            raise TransportError("timeout") from None
        except httpx.TransportError as err:
            raise TransportError("connection error", f"{type(err).__name__}: {err}") from None
        return resp.status_code, _lower(resp.headers), resp.content

    return post


def select_transport(name: str = "auto") -> Poster:
    """``auto``: httpx if installed, else httpx2, else urllib; ``httpx`` insists on one."""
    for module in {"auto": ("httpx", "httpx2"), "httpx": ("httpx", "httpx2")}.get(name, ()):
        if importlib.util.find_spec(module) is not None:
            return _httpx_poster(module)
    if name == "httpx":
        raise SlmbenchError("transport 'httpx' asked for, but neither httpx nor httpx2 is "
                            "installed")
    return post_urllib


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def redact(text: str, api_key_env: str | None, mask: str = "[REDACTED]") -> str:
    """``text`` with the key now in ``$api_key_env`` replaced by ``mask``."""
    key = os.environ.get(api_key_env, "") if api_key_env else ""
    return text.replace(key, mask) if len(key) >= 4 else text


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None = None,
                  retry_after_max: float = 120.0, jitter: bool = False) -> float:
    """Seconds before retry ``attempt`` (0-based): the backoff, or the server's wait if longer.

    The backoff is ``base * 2**attempt`` capped at ``cap`` (times 0.5-1 with ``jitter``); a
    ``Retry-After`` is itself capped at ``retry_after_max``.
    """
    delay = min(cap, base * 2**attempt) * ((0.5 + random.random() / 2) if jitter else 1.0)
    return delay if retry_after is None else max(delay, min(retry_after, retry_after_max))


class RateLimiter:
    """Spaces request starts at least ``1 / rps`` seconds apart, across threads."""

    def __init__(self, rps: float | None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rps if rps and rps > 0 else 0.0
        self.clock, self.sleep = clock, sleep
        self._lock = threading.Lock()
        self._next: float | None = None

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self.clock()
            start = now if self._next is None else max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self.sleep(start - now)


@dataclass(frozen=True)
class Outcome:
    """One POST: ``kind`` is ``ok``, ``retryable`` or ``permanent``.

    ``problem`` names a failure (``timeout``, ``connection error``, ``http 503``); ``detail``
    (the transport's reason or the start of the error body) is key-free.
    """

    kind: str
    status: int | None = None
    body: bytes = b""
    problem: str = ""
    detail: str = ""
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.kind == OK


def check_endpoint(base_url: str) -> None:
    """Refuse plain HTTP to a host that is not this machine, unless told otherwise."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SlmbenchError(f"endpoint {base_url!r}: not an http(s) URL with a host")
    if (parts.scheme == "http" and parts.hostname not in LOOPBACK
            and os.environ.get(ALLOW_HTTP_ENV) != "1"):
        raise SlmbenchError(
            f"endpoint {parts.scheme}://{parts.hostname}: plain HTTP to another machine would "
            f"send the API key and the prompts unencrypted; use https, or set "
            f"{ALLOW_HTTP_ENV}=1 for a network you trust")


class ChatEndpoint:
    """``POST {base_url}/chat/completions``; holds the key's variable name, never the key."""

    def __init__(self, base_url: str, api_key_env: str | None = DEFAULT_KEY_ENV,
                 timeout: float = 60.0, transport: str = "auto",
                 mask: str = "[REDACTED]") -> None:
        check_endpoint(base_url)
        self.url = f"{base_url.rstrip('/')}/chat/completions"
        self.api_key_env, self.timeout, self.mask = api_key_env or None, timeout, mask
        self._post = select_transport(transport)

    def __repr__(self) -> str:
        return f"ChatEndpoint({self.url!r}, api_key_env={self.api_key_env!r})"

    def redact(self, text: str) -> str:
        return redact(text, self.api_key_env, self.mask)

    def excerpt(self, body: bytes, limit: int = 200) -> str:
        """The start of a response body on one line, redacted before it is cut."""
        text = self.redact(body.decode("utf-8", "replace")).strip().replace("\n", " ")
        return text[:limit] + ("..." if len(text) > limit else "")

    def post(self, payload: dict[str, Any]) -> Outcome:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        body = json.dumps(payload).encode("utf-8")
        try:
            status, resp_headers, data = self._post(self.url, body, headers, self.timeout)
        except TransportError as err:
            return Outcome(RETRYABLE, problem=err.kind, detail=self.redact(err.detail))
        if 200 <= status < 300:
            return Outcome(OK, status, data)
        retryable = status == 429 or 500 <= status < 600
        return Outcome(RETRYABLE if retryable else PERMANENT, status, data, f"http {status}",
                       self.excerpt(data),
                       parse_retry_after(resp_headers.get("retry-after")) if retryable else None)


def completion_text(body: Any) -> tuple[str, dict[str, Any]]:
    """The first choice's message content and the ``usage`` block, or ValueError."""
    if not isinstance(body, dict):
        raise ValueError("response is not a JSON object")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("response has no 'choices'")
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise ValueError("response has no choices[0].message.content string")
    return content, body.get("usage") if isinstance(body.get("usage"), dict) else {}
