"""Rubric scoring: correctness, helpfulness, domain accuracy and clarity, 1-10 each.

The judge is asked for a JSON object with a score and a one-sentence reason per criterion.
The parser accepts the shapes judges actually produce (``{"correctness": {"score": 8,
"reason": ...}}``, ``{"correctness": 8, "correctness_reason": ...}``, ``{"scores": {...},
"reasons": {...}}``, a ``criteria`` list, or ``Correctness: 8/10 - ...`` lines). A 0 is
clamped to 1; a score off the 1-10 scale or a missing criterion makes the verdict
unreadable, and the judge is asked again. The overall score is the mean of the criteria;
an overall score the judge offers itself is ignored.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from typing import Any

from harness.judge.ask import ask
from harness.judge.client import JudgeClient, Messages
from harness.judge.parsing import VerdictError, extract_json, norm_key, parse_score
from harness.openai_compat.cache import ReplyCache

RUBRIC_VERSION = "rubric-v1"
CRITERIA = ("correctness", "helpfulness", "domain_accuracy", "clarity")
REASON_MAX_CHARS = 120  # one sentence
# The shape the prompt asks for, as a JSON schema for judges that can enforce one. The score
# is an enum because llama.cpp's grammar converter ignores minimum/maximum; the reason is
# bounded because a small judge otherwise repeats itself inside the string until max_tokens
# cuts the object off, and a cut-off object cannot be read. Worst case (one token per
# character) the four reasons and the structure stay inside ``RUBRIC_MAX_TOKENS``.
RUBRIC_SCHEMA = {
    "type": "object",
    "properties": {c: {"type": "object",
                       "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 10,
                                                "enum": list(range(1, 11))},
                                      "reason": {"type": "string",
                                                 "maxLength": REASON_MAX_CHARS}},
                       "required": ["score", "reason"]} for c in CRITERIA},
    "required": list(CRITERIA),
}
RUBRIC_MAX_TOKENS = 768
DEFAULT_DOMAIN = "telecom and e-commerce customer support"
MAX_CHARS = 8000  # of a question, reference or response put into a prompt

_DESCRIPTIONS = {
    "correctness": "factually and technically right; consistent with the reference answer "
                   "when one is given",
    "helpfulness": "resolves what the user needs: complete, specific and actionable",
    "domain_accuracy": "uses the domain's terminology, standards, products and procedures "
                       "correctly",
    "clarity": "well organised, concise and easy to follow",
}
_PREFIXES = {"correct": "correctness", "helpful": "helpfulness", "domain": "domain_accuracy",
             "clar": "clarity"}
_REASON_SUFFIXES = ("_reason", "_reasoning", "_explanation", "_justification", "_rationale")
_LINE = re.compile(r"^\W*(correctness|helpfulness|domain[ _-]?accuracy|clarity)\W*"
                   r"(-?\d+(?:\.\d+)?)\s*(?:/\s*10)?\s*[-:.,)]*\s*(.*)$", re.IGNORECASE)


@dataclass
class RubricVerdict:
    scores: dict[str, float]
    reasons: dict[str, str]

    @property
    def overall(self) -> float:
        return statistics.fmean(self.scores[c] for c in CRITERIA)


def clip(text: str | None, limit: int = MAX_CHARS) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[:limit] + " [...truncated]"


def rubric_messages(question: str | None, response: str, reference: str | None = None,
                    domain: str = DEFAULT_DOMAIN) -> Messages:
    criteria = "\n".join(f"- {c}: {_DESCRIPTIONS[c]}" for c in CRITERIA)
    example = ", ".join(f'"{c}": {{"score": <1-10>, "reason": "<one sentence>"}}'
                        for c in CRITERIA)
    system = (f"You are an impartial expert judge of answers in {domain}. Score the "
              "response on each criterion with an integer from 1 (very poor) to 10 "
              f"(excellent) and give a one-sentence reason:\n{criteria}\n"
              "Judge only the response; its length is no merit. "
              f"Reply with only this JSON object:\n{{{example}}}")
    parts = []
    if question and str(question).strip():
        parts.append(f"[Question]\n{clip(question)}")
    else:
        parts.append("[Question]\n(not recorded: judge the response against the reference "
                     "answer)")
    if reference is not None and str(reference).strip():
        parts.append(f"[Reference answer]\n{clip(reference)}")
    parts.append(f"[Response to judge]\n{clip(response)}")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]


def _criterion(key: str) -> str | None:
    key = norm_key(key)
    for prefix, name in _PREFIXES.items():
        if key.startswith(prefix):
            return name
    return None


def _from_mapping(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    raw, reasons = {}, {}
    if isinstance(data.get("criteria"), list):  # [{"criterion"/"name": ..., "score": ...}]
        for entry in data["criteria"]:
            if isinstance(entry, dict):
                name = _criterion(entry.get("criterion") or entry.get("name") or "")
                if name:
                    raw[name] = entry
    for section in ("scores", "ratings", "criteria"):
        if isinstance(data.get(section), dict):
            data = {**data[section], **{k: v for k, v in data.items() if k != section}}
    for section in ("reasons", "explanations", "justifications"):
        if isinstance(data.get(section), dict):
            for key, text in data[section].items():
                if _criterion(key):
                    reasons[_criterion(key)] = str(text)
    for key, value in data.items():
        name = _criterion(key)
        if name is None:
            continue
        if norm_key(key).endswith(_REASON_SUFFIXES):
            reasons.setdefault(name, str(value))
        else:
            raw.setdefault(name, value)
    for name, value in raw.items():
        if isinstance(value, dict):
            text = next((value[k] for k in ("reason", "reasoning", "explanation",
                                            "justification", "rationale") if k in value), None)
            if text is not None:
                reasons.setdefault(name, str(text))
    return raw, reasons


def _from_lines(text: str) -> tuple[dict[str, Any], dict[str, str]]:
    raw, reasons = {}, {}
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if match:
            name = _criterion(match.group(1))
            raw.setdefault(name, match.group(2))
            reasons.setdefault(name, match.group(3).strip())
    return raw, reasons


def parse_rubric(text: str) -> RubricVerdict:
    """Scores and reasons from a judge reply; ``VerdictError`` says why it is unreadable."""
    try:
        raw, reasons = _from_mapping(extract_json(text))
    except VerdictError:
        raw, reasons = _from_lines(text or "")
        if not raw:
            raise
    missing = [c for c in CRITERIA if c not in raw]
    if missing:
        raise VerdictError(f"no score for {', '.join(missing)}")
    scores = {c: parse_score(raw[c], c) for c in CRITERIA}
    return RubricVerdict(scores, {c: " ".join(reasons.get(c, "").split()) for c in CRITERIA})


def judge_rubric(client: JudgeClient, question: str | None, response: str,
                 reference: str | None = None, cache: ReplyCache | None = None,
                 max_retries: int = 3, domain: str = DEFAULT_DOMAIN) -> dict[str, Any]:
    """A ``judged`` record (scores, reasons, overall); raises ``Unjudged`` with the reason."""
    answer = ask(client, rubric_messages(question, response, reference, domain), parse_rubric,
                 RUBRIC_VERSION, cache, max_retries, max_tokens=RUBRIC_MAX_TOKENS,
                 reminder="Reply with only the JSON object, every criterion scored 1-10.",
                 schema=RUBRIC_SCHEMA)
    verdict = answer.verdict
    return {"status": "judged", "scores": verdict.scores, "reasons": verdict.reasons,
            "overall": round(verdict.overall, 4), "calls": answer.calls,
            "cached": answer.cached}
