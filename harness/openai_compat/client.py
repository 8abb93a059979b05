"""The one retry loop for chat completions, and the one error a failed call raises.

Why one loop: the expander and the judge each had their own, and each re-decided what is
worth retrying, how long to wait and what the user is told. Here a call is rate-limited,
posted, classified (``transport.Outcome``), retried with backoff (or the server's longer
``Retry-After``) on connection errors, timeouts, 429 and 5xx, and given up on with a
``ChatCallError`` whose message is one key-free line. Callers keep their policy: a
``RetryPolicy`` (the judge jitters and retries a garbled body, the expander does neither) and
an ``on_attempt`` hook (the expander's call log, the judge's warnings).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.openai_compat.transport import RETRYABLE, ChatEndpoint, RateLimiter, backoff_delay
from harness.openai_compat.transport import completion_text as completion_text

Messages = list[dict[str, str]]
MALFORMED = "malformed response"


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    retry_after_max: float = 120.0  # a server asking for longer is waited on this long
    jitter: bool = False  # many threads retrying at once (the judge) should not do so in step
    # A small local server can garble one reply and answer the next; a paid API is not
    # asked twice for what it already billed.
    retry_malformed: bool = False


@dataclass(frozen=True)
class Attempt:
    """One HTTP attempt as the ``on_attempt`` hook sees it; nothing in it holds the key."""

    outcome: str  # "ok", "retry" or "failed"
    attempt: int  # 0-based
    status: int | None
    latency_s: float
    problem: str = ""  # "timeout", "connection error", "http 503", MALFORMED
    detail: str = ""
    message: str = ""  # the one line a user reads
    wait_s: float | None = None
    usage: dict[str, Any] = field(default_factory=dict)


class ChatCallError(Exception):
    """A call that failed for good (retries spent, or not worth retrying).

    ``reason`` is the short category failures are counted under (``http 400``, ``retries
    exhausted (timeout)``); ``str()`` is the one-line, key-free message a user reads.
    """

    def __init__(self, message: str, reason: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message
        self.detail = detail


@dataclass(frozen=True)
class Reply:
    text: str
    usage: dict[str, Any]
    body: dict[str, Any]
    attempts: int


def _describe(problem: str, status: int | None, detail: str, timeout: float) -> str:
    if problem == "timeout":
        return f"timed out after {timeout:g}s"
    if problem == "connection error":
        return f"connection failed ({detail or problem})"
    if status is not None and problem != MALFORMED:
        return f"HTTP {status}" + (f": {detail}" if detail else "")
    return f"malformed chat completion response ({detail})" if detail else problem


class ChatClient:
    """Chat completions from one model on one endpoint, through the shared retry loop."""

    def __init__(self, endpoint: ChatEndpoint, model: str, policy: RetryPolicy | None = None,
                 rps: float | None = None, name: str = "",
                 on_attempt: Callable[[Attempt], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.endpoint, self.model = endpoint, model
        self.policy = policy or RetryPolicy()
        self.limiter = RateLimiter(rps, clock=clock, sleep=sleep)
        self.prefix = f"{name}: " if name else ""
        self.on_attempt = on_attempt
        self.sleep = sleep
        self.calls = 0  # HTTP requests sent, retries included
        self.retries = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ChatClient({self.endpoint.url!r}, {self.model!r})"

    def complete(self, messages: Messages, *,
                 on_attempt: Callable[[Attempt], None] | None = None, **params: Any) -> Reply:
        """The first choice's text for ``messages``; raises ``ChatCallError``.

        ``on_attempt`` (else the client's own) hears of every HTTP attempt.
        """
        payload = {"model": self.model, "messages": messages, **params}
        hook = on_attempt or self.on_attempt

        def report(attempt: Attempt) -> None:
            if hook is not None:
                hook(attempt)

        policy = self.policy
        attempt = 0
        while True:
            self.limiter.wait()
            started = time.monotonic()
            out = self.endpoint.post(payload)
            latency = round(time.monotonic() - started, 3)
            with self._lock:
                self.calls += 1
            problem, detail = out.problem, out.detail
            retryable, retry_after = out.kind == RETRYABLE, out.retry_after
            if out.ok:
                try:
                    body = json.loads(out.body.decode("utf-8"))
                    text, usage = completion_text(body)
                except (UnicodeDecodeError, ValueError) as err:
                    excerpt = self.endpoint.excerpt(out.body)
                    problem, retryable = MALFORMED, policy.retry_malformed
                    detail = self.endpoint.redact(str(err)) + (f": {excerpt}" if excerpt else "")
                else:
                    report(Attempt("ok", attempt, out.status, latency, usage=usage))
                    return Reply(text, usage, body, attempt + 1)
            message = _describe(problem, out.status, detail, self.endpoint.timeout)
            if not retryable or attempt >= policy.max_retries:
                report(Attempt("failed", attempt, out.status, latency, problem, detail,
                                     message))
                tries = f" (gave up after {attempt + 1} attempts)" if retryable else ""
                reason = f"retries exhausted ({problem})" if retryable else problem
                raise ChatCallError(self.endpoint.redact(f"{self.prefix}{message}{tries}"),
                                    reason, detail)
            wait = backoff_delay(attempt, policy.backoff_base, policy.backoff_max, retry_after,
                                 policy.retry_after_max, jitter=policy.jitter)
            report(Attempt("retry", attempt, out.status, latency, problem, detail,
                                 message, round(wait, 3)))
            with self._lock:
                self.retries += 1
            self.sleep(wait)
            attempt += 1
