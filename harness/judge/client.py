"""Judge backends behind one interface: an OpenAI-compatible HTTP server, or llama.cpp in process.

``HttpJudgeClient`` posts to ``{base_url}/chat/completions`` through ``harness.openai_http``
(shared with the synthetic-data expander) with a per-request timeout, a requests-per-second
limit and bounded retries with jittered exponential backoff on connection errors, timeouts,
429 (honouring ``Retry-After``) and 5xx; after repeated failures it fails fast. The API key
is read from the environment variable the user names at each request and is sent only as the
``Authorization`` header: it is never stored on the client, logged, put in an exception's
message or written to a record (a server echoing it back is redacted).

``LocalJudgeClient`` runs a GGUF through ``llama_cpp.Llama.create_chat_completion``; the
import and the model load happen at the first call.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from harness.errors import SlmbenchError
from harness.openai_http import (
    DEFAULT_KEY_ENV,
    RETRYABLE,
    ChatEndpoint,
    RateLimiter,
    backoff_delay,
    completion_text,
)
from harness.openai_http import parse_retry_after as parse_retry_after  # re-exported

log = logging.getLogger(__name__)

MAX_RETRY_AFTER_S = 120.0  # a server asking for longer than this is waited on this long

Messages = list[dict[str, str]]


# OpenAI's JSON mode (also honoured by vLLM and llama-cpp-python, which enforce it with a
# grammar): a small judge then cannot answer in prose, so far fewer verdicts are unreadable.
# ``schema`` adds the verdict's JSON schema in the ``{"type": "json_object", "schema": ...}``
# form that llama-cpp-python (and Anyscale-style servers) turn into a grammar: even a tiny
# local judge then has to fill in every criterion. OpenAI itself rejects that key.
JSON_MODES = ("object", "schema", "off")


def response_format(mode: str, schema: dict[str, Any] | None) -> dict[str, Any] | None:
    if mode == "off":
        return None
    if mode == "schema" and schema is not None:
        return {"type": "json_object", "schema": schema}
    return {"type": "json_object"}


def _check_mode(mode: str) -> str:
    if mode not in JSON_MODES:
        raise SlmbenchError(f"--json-mode {mode!r}: expected one of {', '.join(JSON_MODES)}")
    return mode


def _mode_tag(mode: str) -> str:
    """Part of the cache key: replies under different JSON modes differ."""
    return "" if mode == "off" else f"+json-{mode}"

class JudgeCallError(Exception):
    """A judge call that failed for good (retries spent or not retryable); message is key-free."""


class JudgeClient(Protocol):
    name: str
    """Short label shown in tables and verdict records."""

    model_id: str
    """What identifies the judge's behaviour in the cache key (model, and GGUF for local)."""

    max_workers: int
    """How many calls may run at once (1 for an in-process model)."""

    json_mode: str
    """One of ``JSON_MODES``: what ``response_format`` the judge is sent."""

    def describe(self) -> dict[str, Any]:
        """The judge for ``run.json``: backend, model, base url; never a key."""

    def chat(self, messages: Messages, max_tokens: int = 512,
             schema: dict[str, Any] | None = None) -> str:
        """The assistant's reply text; raises ``JudgeCallError``."""

    def redact(self, text: str) -> str:
        """``text`` with any credential of this judge replaced by ``***``."""


@dataclass
class _Failure:
    message: str
    retryable: bool
    retry_after: float | None = None


class HttpJudgeClient:
    """An OpenAI-compatible ``/chat/completions`` judge (temperature 0)."""

    def __init__(self, base_url: str, model: str, api_key_env: str | None = DEFAULT_KEY_ENV,
                 timeout: float = 60.0, max_retries: int = 3, rps: float | None = 2.0,
                 backoff: float = 1.0, max_backoff: float = 30.0, max_workers: int = 4,
                 name: str | None = None, max_consecutive_failures: int = 5,
                 json_mode: str = "object") -> None:
        if not base_url.startswith(("http://", "https://")):
            raise SlmbenchError(f"judge base url {base_url!r} must start with http:// or https://")
        if not model:
            raise SlmbenchError(f"judge {base_url}: no model named (use BASE_URL=MODEL)")
        self.base_url = base_url.rstrip("/")
        self.model = model
        # Local servers often serve any model under a generic name: the url is part of it.
        self.json_mode = _check_mode(json_mode)
        self.model_id = f"{model}@{self.base_url}" + _mode_tag(json_mode)
        self.name = name or model
        self.api_key_env = api_key_env or None
        self.timeout = timeout
        self.endpoint = ChatEndpoint(self.base_url, self.api_key_env, timeout, mask="***")
        self.max_retries = max(0, max_retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_workers = max(1, max_workers)
        self.limiter = RateLimiter(rps)
        self.calls = 0  # HTTP requests sent, retries included
        self._failures = 0
        self._max_failures = max_consecutive_failures
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HttpJudgeClient({self.base_url!r}, {self.model!r})"

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "backend": "http", "base_url": self.base_url,
                "model": self.model, "api_key_env": self.api_key_env,
                "json_mode": self.json_mode}

    def redact(self, text: str) -> str:
        return self.endpoint.redact(text)

    def _attempt(self, payload: dict[str, Any]) -> str | _Failure:
        self.limiter.wait()
        with self._lock:
            self.calls += 1
        out = self.endpoint.post(payload)
        if out.problem == "timeout":
            return _Failure(f"timed out after {self.timeout:g}s", True)
        if out.status is None:
            return _Failure(f"connection failed ({out.detail or out.problem})", True)
        if not out.ok:
            message = f"HTTP {out.status}" + (f": {out.detail}" if out.detail else "")
            return _Failure(message, out.kind == RETRYABLE, out.retry_after)
        try:
            return completion_text(json.loads(out.body))[0]
        except ValueError as err:  # json's errors are ValueErrors too
            excerpt = self.endpoint.excerpt(out.body)
            return _Failure(f"malformed chat completion response ({err})"
                            + (f": {excerpt}" if excerpt else ""), True)

    def _delay(self, attempt: int, failure: _Failure) -> float:
        return backoff_delay(attempt, self.backoff, self.max_backoff, failure.retry_after,
                             MAX_RETRY_AFTER_S, jitter=True)

    def chat(self, messages: Messages, max_tokens: int = 512,
             schema: dict[str, Any] | None = None) -> str:
        with self._lock:
            if self._max_failures and self._failures >= self._max_failures:
                raise JudgeCallError(f"judge {self.name} skipped: {self._failures} consecutive "
                                     "calls failed (server unreachable?)")
        payload = {"model": self.model, "messages": messages, "temperature": 0,
                   "max_tokens": max_tokens}
        fmt = response_format(self.json_mode, schema)
        if fmt is not None:
            payload["response_format"] = fmt
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


class LocalJudgeClient:
    """A GGUF judged in process with llama-cpp-python (``local:embedded`` or ``local:PATH``)."""

    max_workers = 1

    def __init__(self, gguf: str | Path | None = None, n_ctx: int = 4096, seed: int = 0,
                 n_threads: int | None = None, json_mode: str = "schema") -> None:
        if gguf is None or str(gguf) in ("", "embedded"):
            from harness.models.embedded import gguf_path

            gguf = gguf_path()
        self.gguf = Path(gguf)
        if not self.gguf.is_file():
            raise SlmbenchError(f"local judge: GGUF {self.gguf} not found")
        stat = self.gguf.stat()
        self.name = f"local:{self.gguf.stem}"
        self.json_mode = _check_mode(json_mode)
        self.model_id = f"local:{self.gguf.name}:{stat.st_size}" + _mode_tag(json_mode)
        self.n_ctx, self.seed, self.n_threads = n_ctx, seed, n_threads
        self.calls = 0
        self._llm: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalJudgeClient({str(self.gguf)!r})"

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "backend": "local", "model": self.gguf.name,
                "gguf": str(self.gguf), "json_mode": self.json_mode}

    def redact(self, text: str) -> str:
        return text

    def _load(self) -> Any:
        if self._llm is None:
            try:
                import llama_cpp  # noqa: F401 - a clear message when it is missing
            except ImportError as err:
                raise SlmbenchError("local judge needs llama-cpp-python "
                                    "(pip install 'slmbench[llama-cpp]')") from err
            from harness.models.llama_cpp_load import open_llama

            self._llm = open_llama(self.gguf, n_ctx=self.n_ctx, seed=self.seed,
                                   n_threads=self.n_threads, verbose=False)
        return self._llm

    def chat(self, messages: Messages, max_tokens: int = 512,
             schema: dict[str, Any] | None = None) -> str:
        with self._lock:  # one llama.cpp context is not safe to share across threads
            llm = self._load()
            self.calls += 1
            try:
                out = llm.create_chat_completion(
                    messages=messages, temperature=0.0, max_tokens=max_tokens,
                    response_format=response_format(self.json_mode, schema))
                return out["choices"][0]["message"]["content"] or ""
            except Exception as err:  # noqa: BLE001 - any llama.cpp failure fails this item
                raise JudgeCallError(f"local judge {self.name}: {type(err).__name__}: "
                                     f"{err}") from None


def parse_judge_spec(spec: str, api_key_env: str | None = DEFAULT_KEY_ENV,
                     json_mode: str | None = None, **options: Any) -> JudgeClient:
    """``BASE_URL=MODEL`` (HTTP), ``local:embedded`` or ``local:PATH.gguf``."""
    if spec.startswith("local:"):
        return LocalJudgeClient(spec[len("local:"):] or None, json_mode=json_mode or "schema")
    base_url, sep, model = spec.rpartition("=")
    if not sep or not base_url or not model:
        raise SlmbenchError(f"--judge {spec!r}: expected BASE_URL=MODEL (e.g. "
                            "http://127.0.0.1:8080/v1=qwen2.5-7b-instruct) or local:embedded")
    return HttpJudgeClient(base_url, model, api_key_env=api_key_env,
                           json_mode=json_mode or "object",
                           **options)
