"""Secrets and safety: a canary API key must appear in no byte slmbench writes or prints.

A loopback server plays an OpenAI-compatible endpoint that misbehaves the ways real ones do:
it echoes the ``Authorization`` header back in error bodies (401 and 500), then answers. The
synthetic-data client is driven through all of it with its cache and call log on, under a
canary key set in the environment; afterwards every file under the work folder and every
captured log line is searched for the key. Also checked: plain HTTP to another machine is
refused unless ``SLMBENCH_ALLOW_HTTP=1``, and no code path turns ``trust_remote_code`` on.
"""

from __future__ import annotations

import io
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import SlmbenchError
from harness.reliability.loopback import LoopbackServer

CANARY = "sk-slmbench-canary-7f3e9a1c5b2d"
KEY_ENV = "SLMBENCH_CAMPAIGN_KEY"


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


class _EchoServer(LoopbackServer):
    """Replies 500 then 401 (each echoing the Authorization header), then a completion."""

    def __init__(self) -> None:
        self.calls = 0
        super().__init__(self._reply)

    def _reply(self, _body: bytes, headers) -> tuple[int, dict]:
        self.calls += 1
        auth = headers.get("Authorization", "")
        if self.calls % 3 == 1:
            return 500, {"error": f"upstream failed for {auth}"}
        if self.calls % 3 == 2:
            return 401, {"error": {"message": f"bad key {auth}"}}
        return 200, {"choices": [{"message": {"content": f"ok {auth}"}}],
                     "usage": {"prompt_tokens": 3, "completion_tokens": 2}}


def _files_holding(root: Path, needle: bytes) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes())


def canary_check(work: Path) -> Check:
    """Drive the LLM client through echoed-key errors; search every byte it left."""
    from harness.data.synth.llm import ExpanderChat, LLMConfig
    from harness.openai_compat.client import ChatCallError

    work.mkdir(parents=True, exist_ok=True)
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    logging.getLogger().addHandler(handler)
    server = _EchoServer()
    previous = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = CANARY
    errors: list[str] = []
    try:
        config = LLMConfig(base_url=server.url, model="canary-model", api_key_env=KEY_ENV,
                           rps=1000, cache_dir=work / "cache", log_path=work / "calls.jsonl",
                           max_retries=0, backoff_base=0.0)
        client = ExpanderChat(config, sleep=lambda s: None)
        for n in range(6):
            try:
                client.complete([{"role": "user", "content": f"question {n}"}], item=str(n))
            except (ChatCallError, SlmbenchError) as err:
                errors.append(str(err))
    finally:
        server.close()
        logging.getLogger().removeHandler(handler)
        if previous is None:
            os.environ.pop(KEY_ENV, None)
        else:
            os.environ[KEY_ENV] = previous
    (work / "errors.txt").write_text("\n".join(errors) + "\n" + captured.getvalue())
    leaks = _files_holding(work, CANARY.encode())
    written = sum(1 for p in work.rglob("*") if p.is_file())
    return Check("API key in no file, log or error", not leaks and server.calls >= 6,
                 f"{server.calls} calls ({len(errors)} failed with echoed keys), {written} files "
                 f"searched" + (f"; key found in {', '.join(leaks)}" if leaks else ""))


def http_policy_checks() -> list[Check]:
    from harness.openai_compat.transport import ALLOW_HTTP_ENV, check_endpoint

    cases = [("http://llm.example.com/v1", False, None), ("https://llm.example.com/v1", True, None),
             ("http://127.0.0.1:8000/v1", True, None), ("http://localhost:8000/v1", True, None),
             ("http://10.0.0.5:8000/v1", True, "1"), ("http://10.0.0.5:8000/v1", False, None),
             ("ftp://llm.example.com", False, None)]
    checks = []
    previous = os.environ.get(ALLOW_HTTP_ENV)
    try:
        for url, allowed, env in cases:
            if env is None:
                os.environ.pop(ALLOW_HTTP_ENV, None)
            else:
                os.environ[ALLOW_HTTP_ENV] = env
            try:
                check_endpoint(url)
                got = True
            except SlmbenchError:
                got = False
            told = f" with {ALLOW_HTTP_ENV}={env}" if env else ""
            checks.append(Check(f"endpoint {url}{told}", got == allowed,
                                "allowed" if got else "refused in one line"))
    finally:
        if previous is None:
            os.environ.pop(ALLOW_HTTP_ENV, None)
        else:
            os.environ[ALLOW_HTTP_ENV] = previous
    return checks


def remote_code_check(package_root: Path) -> Check:
    """No source file passes ``trust_remote_code`` as anything but a user's own argument."""
    pattern = re.compile(r"trust_remote_code\s*=\s*True")
    hits = [f"{p.relative_to(package_root.parent)}:{i}"
            for p in sorted(package_root.rglob("*.py"))
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if pattern.search(line)]
    return Check("trust_remote_code never switched on", not hits,
                 "no source line sets it" if not hits else f"set in {', '.join(hits)}")


def run_secrets(work: Path) -> list[Check]:
    import harness

    return [canary_check(work), *http_policy_checks(),
            remote_code_check(Path(harness.__file__).parent)]
