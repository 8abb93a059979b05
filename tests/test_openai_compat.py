"""The shared OpenAI-compatible client: one retry loop and error, one reply cache, two policies."""

from __future__ import annotations

import json
import sqlite3

import pytest

from harness.data.synth.llm import ExpanderChat, LLMConfig
from harness.judge.client import HttpJudgeClient
from harness.openai_compat.cache import ReplyCache
from harness.openai_compat.client import ChatCallError, ChatClient, RetryPolicy
from harness.openai_compat.transport import ChatEndpoint
from harness.reliability.loopback import LoopbackServer

COMPLETION = {"choices": [{"message": {"content": "fine"}}],
              "usage": {"prompt_tokens": 4, "completion_tokens": 1}}


@pytest.fixture
def garbling_server():
    """The first reply to each prompt is a body with no choices, the next a completion."""
    seen: dict[bytes, int] = {}

    def reply(body, _headers):
        prompt = json.dumps(json.loads(body)["messages"]).encode()
        seen[prompt] = seen.get(prompt, 0) + 1
        return (200, {"oops": True}) if seen[prompt] == 1 else (200, COMPLETION)

    server = LoopbackServer(reply)
    server.seen = seen
    yield server
    server.close()


def test_the_policy_decides_whether_a_garbled_body_is_asked_again(garbling_server):
    """A small local judge may garble once; the expander does not re-buy a billed reply."""
    endpoint = ChatEndpoint(garbling_server.url, api_key_env=None)
    heard = []
    retrying = ChatClient(endpoint, "m", RetryPolicy(max_retries=2, backoff_base=0.0,
                                                     retry_malformed=True),
                          on_attempt=heard.append, sleep=lambda s: None)
    reply = retrying.complete([{"role": "user", "content": "a"}], temperature=0)
    assert (reply.text, reply.attempts, retrying.calls, retrying.retries) == ("fine", 2, 2, 1)
    assert [a.outcome for a in heard] == ["retry", "ok"]
    assert heard[0].problem == "malformed response" and heard[1].usage["prompt_tokens"] == 4

    strict = ChatClient(endpoint, "m", RetryPolicy(max_retries=2), name="expander",
                        sleep=lambda s: None)
    with pytest.raises(ChatCallError) as err:
        strict.complete([{"role": "user", "content": "b"}])
    assert err.value.reason == "malformed response" and strict.calls == 1
    assert str(err.value).startswith("expander: malformed chat completion response (")
    assert "\n" not in str(err.value)


def test_judge_and_expander_fail_the_same_way_on_a_dead_server(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    judge = HttpJudgeClient(url, "j", api_key_env=None, max_retries=1, rps=0, backoff=0.0)
    expander = ExpanderChat(LLMConfig(base_url=url, model="m", api_key_env="UNSET_KEY_ENV",
                                      rps=1000, max_retries=1, backoff_base=0.0),
                            sleep=lambda s: None)
    errors = []
    for call in (lambda: judge.chat([{"role": "user", "content": "x"}]),
                 lambda: expander.complete([{"role": "user", "content": "x"}])):
        with pytest.raises(ChatCallError) as err:
            call()
        errors.append(err.value)
    assert [e.reason for e in errors] == ["retries exhausted (connection error)"] * 2
    assert str(errors[0]).startswith("judge j: connection failed (")
    assert str(errors[1]).startswith("connection failed (")
    assert all(str(e).endswith("(gave up after 2 attempts)") for e in errors)
    assert judge.calls == 2 and expander.report.http_calls == 2


def test_a_judge_cache_from_before_the_usage_column_still_answers(tmp_path):
    path = tmp_path / "verdicts.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE replies (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
                   "version TEXT NOT NULL, reply TEXT NOT NULL, created REAL NOT NULL)")
        db.execute("INSERT INTO replies VALUES ('k1', 'm', 'v', 'old reply', 0)")
    db.close()
    with ReplyCache(path) as cache:
        assert cache.get("k1") == "old reply"
        assert cache.get_with_usage("k1") == ("old reply", {})
        cache.put("k2", "m", "v", "new reply", {"prompt_tokens": 3})
    with ReplyCache(path) as cache:
        assert cache.get_with_usage("k2") == ("new reply", {"prompt_tokens": 3})


def test_the_expander_takes_over_its_old_file_cache_without_a_call(tmp_path):
    """A cache folder from before the shared cache: its replies were paid for already."""
    messages = [{"role": "user", "content": "expand this"}]
    config = LLMConfig(base_url="http://127.0.0.1:9/v1", model="m", api_key_env="UNSET_KEY_ENV",
                       cache_dir=tmp_path / "cache", max_retries=0)
    old = tmp_path / "cache" / "ab" / "ab12.json"
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"key": "ab12", "model": "m", "params": config.params,
                               "messages": messages, "response": COMPLETION}))
    (tmp_path / "cache" / "cd").mkdir()
    (tmp_path / "cache" / "cd" / "cd34.json").write_text("{not json")  # skipped, named in a log
    chat = ExpanderChat(config, sleep=lambda s: None)
    assert chat.complete(messages) == "fine"
    assert chat.report.cache_hits == 1 and chat.report.http_calls == 0
    with pytest.raises(ChatCallError):  # anything else does go to the (dead) server
        chat.complete([{"role": "user", "content": "something new"}])
    assert chat.report.http_calls == 1
