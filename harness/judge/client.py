"""Judge backends behind one interface: an OpenAI-compatible HTTP server, or llama.cpp in process.

``HttpJudgeClient`` calls ``{base_url}/chat/completions`` through the shared client
(``harness.openai_compat``, also the synthetic-data expander's): per-request timeout,
requests-per-second limit, bounded retries with jittered exponential backoff on connection
errors, timeouts, 429 (honouring ``Retry-After``), 5xx and garbled bodies. On top it adds
the JSON mode and a breaker: after repeated failures it fails fast. The API key is read from
the environment variable the user names at each request and is sent only as the
``Authorization`` header: it is never stored on the client, logged, put in an exception's
message or written to a record (a server echoing it back is redacted).

``LocalJudgeClient`` runs a GGUF through ``llama_cpp.Llama.create_chat_completion``; the
import and the model load happen at the first call. Both raise ``ChatCallError``.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Protocol

from harness.errors import SlmbenchError
from harness.openai_compat.client import Attempt, ChatCallError, ChatClient, RetryPolicy
from harness.openai_compat.transport import DEFAULT_KEY_ENV, ChatEndpoint

log = logging.getLogger(__name__)

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
        """The assistant's reply text; raises ``ChatCallError``."""

    def redact(self, text: str) -> str:
        """``text`` with any credential of this judge replaced by ``***``."""


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
        self.endpoint = ChatEndpoint(self.base_url, self.api_key_env, timeout, mask="***")
        policy = RetryPolicy(max_retries=max(0, max_retries), backoff_base=backoff,
                             backoff_max=max_backoff, jitter=True, retry_malformed=True)
        self.client = ChatClient(self.endpoint, model, policy, rps, name=f"judge {self.name}",
                                 on_attempt=self._warn_on_retry)
        self.max_workers = max(1, max_workers)
        self._failures = 0
        self._max_failures = max_consecutive_failures
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HttpJudgeClient({self.base_url!r}, {self.model!r})"

    @property
    def calls(self) -> int:
        """HTTP requests sent, retries included."""
        return self.client.calls

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "backend": "http", "base_url": self.base_url,
                "model": self.model, "api_key_env": self.api_key_env,
                "json_mode": self.json_mode}

    def redact(self, text: str) -> str:
        return self.endpoint.redact(text)

    def _warn_on_retry(self, attempt: Attempt) -> None:
        if attempt.outcome == "retry":
            log.warning("judge %s: %s; retry %d/%d in %.1fs", self.name,
                        self.redact(attempt.message), attempt.attempt + 1,
                        self.client.policy.max_retries, attempt.wait_s)

    def chat(self, messages: Messages, max_tokens: int = 512,
             schema: dict[str, Any] | None = None) -> str:
        with self._lock:
            if self._max_failures and self._failures >= self._max_failures:
                raise ChatCallError(f"judge {self.name} skipped: {self._failures} consecutive "
                                    "calls failed (server unreachable?)")
        params: dict[str, Any] = {"temperature": 0, "max_tokens": max_tokens}
        fmt = response_format(self.json_mode, schema)
        if fmt is not None:
            params["response_format"] = fmt
        try:
            text = self.client.complete(messages, **params).text
        except ChatCallError as err:
            with self._lock:  # only an unreachable or failing server trips the breaker
                given_up = err.reason.startswith("retries exhausted")
                self._failures = self._failures + 1 if given_up else 0
            raise
        with self._lock:
            self._failures = 0
        return text


class LocalJudgeClient:
    """A GGUF judged in process with llama-cpp-python (``local:embedded`` or ``local:PATH``)."""

    max_workers = 1

    def __init__(self, gguf: str | Path | None = None, n_ctx: int = 4096, seed: int = 0,
                 n_threads: int | None = None, json_mode: str = "schema") -> None:
        if gguf is None or str(gguf) in ("", "embedded"):
            from harness.artefacts.embedded import gguf_path

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
                raise ChatCallError(f"local judge {self.name}: {type(err).__name__}: "
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
