"""Pairwise A-vs-B judging with position-bias control.

Each pair is asked in both orders: (A first, B second) and (B first, A second). A verdict
counts only when it names the same answer (or a tie) in both orders; otherwise the pair is
a tie marked inconsistent. A judge that picks the same *position* both times, whatever
sits there, is position-biased on that pair; the position-bias rate is the share of pairs
where that happened.
"""

from __future__ import annotations

import re
from typing import Any

from harness.judge.ask import ask
from harness.judge.client import JudgeClient, Messages
from harness.judge.parsing import VerdictError, extract_json, norm_key
from harness.judge.rubric import DEFAULT_DOMAIN, REASON_MAX_CHARS, clip
from harness.openai_compat.cache import ReplyCache

PAIRWISE_VERSION = "pairwise-v1"
_PLAIN = re.compile(r"\b(?:winner|better|verdict)\b\W*(?:is\W*)?(?:response\W*)?(1|2|tie)\b",
                    re.IGNORECASE)
_BRACKETS = re.compile(r"\[\[(1|2|tie)\]\]", re.IGNORECASE)


PAIRWISE_SCHEMA = {
    "type": "object",
    "properties": {"winner": {"type": "string", "enum": ["1", "2", "tie"]},
                   "reason": {"type": "string", "maxLength": REASON_MAX_CHARS}},
    "required": ["winner", "reason"],
}


def pairwise_messages(question: str | None, first: str, second: str,
                      reference: str | None = None, domain: str = DEFAULT_DOMAIN) -> Messages:
    system = (f"You are an impartial expert judge of answers in {domain}. Compare two "
              "responses to the same question for correctness, helpfulness, domain accuracy "
              "and clarity, and decide which is better overall. The order of the responses "
              "is random and says nothing about their quality; length is no merit. Reply "
              'with only this JSON object: {"winner": "1" | "2" | "tie", '
              '"reason": "<one sentence>"}')
    parts = [f"[Question]\n{clip(question) if question else '(not recorded)'}"]
    if reference is not None and str(reference).strip():
        parts.append(f"[Reference answer]\n{clip(reference)}")
    parts += [f"[Response 1]\n{clip(first)}", f"[Response 2]\n{clip(second)}"]
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]


def _position(value: Any) -> str | None:
    text = norm_key(value)
    for position, names in (("1", ("1", "response_1", "first", "a")),
                            ("2", ("2", "response_2", "second", "b")),
                            ("tie", ("tie", "draw", "equal", "both", "none", "0"))):
        if text in names:
            return position
    return None


def parse_pairwise(text: str) -> tuple[str, str]:
    """(``"1"`` | ``"2"`` | ``"tie"``, reason) from a judge reply."""
    try:
        data = extract_json(text)
    except VerdictError:
        match = _BRACKETS.search(text or "") or _PLAIN.search(text or "")
        if not match:
            raise
        return match.group(1).lower(), ""
    data = {norm_key(k): v for k, v in data.items()}
    raw = next((data[k] for k in ("winner", "better", "verdict", "choice", "preferred")
                if k in data), None)
    position = _position(raw)
    if position is None:
        raise VerdictError(f"winner {str(raw)[:30]!r} is not 1, 2 or tie")
    reason = data.get("reason") or data.get("explanation") or ""
    return position, " ".join(str(reason).split())


def combine(first_order: str, second_order: str) -> dict[str, Any]:
    """Winner of A vs B from the positions picked with A first, then with B first."""
    as_a = {"1": "A", "2": "B", "tie": "tie"}[first_order]
    as_b = {"1": "B", "2": "A", "tie": "tie"}[second_order]
    consistent = as_a == as_b
    return {"winner": as_a if consistent else "tie", "consistent": consistent,
            "position_bias": first_order == second_order and first_order != "tie"}


def judge_pair(client: JudgeClient, question: str | None, response_a: str, response_b: str,
               reference: str | None = None, cache: ReplyCache | None = None,
               max_retries: int = 3, domain: str = DEFAULT_DOMAIN) -> dict[str, Any]:
    """A ``judged`` pairwise record; raises ``Unjudged`` when either order gets no verdict."""
    orders, calls, cached = [], 0, True
    for first, second in ((response_a, response_b), (response_b, response_a)):
        answer = ask(client, pairwise_messages(question, first, second, reference, domain),
                     parse_pairwise, PAIRWISE_VERSION, cache, max_retries, max_tokens=256,
                     reminder='Reply with only {"winner": "1" | "2" | "tie", "reason": "..."}.',
                     schema=PAIRWISE_SCHEMA)
        position, reason = answer.verdict
        orders.append({"winner_position": position, "reason": reason})
        calls += answer.calls
        cached = cached and answer.cached
    outcome = combine(orders[0]["winner_position"], orders[1]["winner_position"])
    if not outcome["consistent"]:
        outcome["note"] = "tie (inconsistent)"
    return {"status": "judged", **outcome, "orders": orders, "calls": calls, "cached": cached}
