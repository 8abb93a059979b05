"""One verdict from one judge: cache lookup, call, parse, and a bounded re-ask when unreadable."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.judge.client import JudgeClient, Messages
from harness.judge.parsing import VerdictError
from harness.openai_compat.cache import ReplyCache, reply_key
from harness.openai_compat.client import ChatCallError


class Unjudged(Exception):
    """The item gets no verdict from this judge; the message is the reason recorded."""


@dataclass
class Answer:
    verdict: Any
    reply: str
    calls: int  # judge calls made for it (0: from the cache)
    cached: bool


def ask(client: JudgeClient, messages: Messages, parse: Callable[[str], Any],
        version: str, cache: ReplyCache | None = None, max_retries: int = 3,
        max_tokens: int = 512, reminder: str = "Reply with only the JSON object.",
        schema: dict[str, Any] | None = None) -> Answer:
    """Ask ``client`` until ``parse`` accepts the reply, at most ``1 + max_retries`` times.

    A reply that does not parse is shown back to the judge with the reason and ``reminder``.
    A failed call (retries inside the client spent) or a last unreadable reply raises
    ``Unjudged``. Cached replies cost no call.
    """
    # A grammar-enforced schema shapes the reply, so it is part of what the reply depends on.
    enforced = schema if client.json_mode == "schema" else None
    key = reply_key(client.model_id, version,
                    messages if enforced is None else {"messages": messages, "schema": enforced})
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            try:
                return Answer(parse(hit), hit, 0, True)
            except VerdictError:
                pass  # the parser changed since: ask again
    convo, why = list(messages), "no reply"
    for attempt in range(max_retries + 1):
        try:
            reply = client.chat(convo, max_tokens=max_tokens, schema=schema)
        except ChatCallError as err:
            raise Unjudged(str(err)) from None
        try:
            verdict = parse(reply)
        except VerdictError as err:
            why = str(err)
            convo = [*messages, {"role": "assistant", "content": reply},
                     {"role": "user", "content": f"Your reply could not be used ({why}). "
                                                 f"{reminder}"}]
            continue
        if cache is not None:
            cache.put(key, client.model_id, version, client.redact(reply))
        return Answer(verdict, reply, attempt + 1, False)
    raise Unjudged(f"unparseable verdict after {max_retries + 1} attempts: {why}")
