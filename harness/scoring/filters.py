"""lm-eval filters and the ``process_results`` hook used by every generative task YAML.

Registered on import; task YAMLs import this module through their ``!function`` hooks, so
plain ``lm_eval --include_path tasks`` works as well as ``slmbench lm-eval``.
"""

from __future__ import annotations

from typing import Any

from lm_eval.api.filter import Filter
from lm_eval.api.registry import filter_registry, register_filter

from harness.scoring.extract import (
    LETTERS,
    extract_choice,
    extract_label,
    extract_number,
    is_unparsed,
    numbers_match,
)
from harness.scoring.vote import majority_vote


def extract(kind: str, response: str, doc: dict[str, Any]) -> str:
    """The filtered response for one generation of ``doc``: an answer or an unparsed reason."""
    if kind == "mcq":
        return extract_choice(response, doc["choices"]).as_response
    if kind == "label":
        return extract_label(response, doc["labels"]).as_response
    if kind == "numeric":
        return extract_number(response).as_response
    raise ValueError(f"unknown answer kind {kind!r}")


def gold(doc: dict[str, Any]) -> str:
    """The reference answer in the form the extractors produce."""
    answer = doc["answer"]
    if isinstance(answer, int):
        return LETTERS[answer]
    return str(answer)


def is_correct(kind: str, predicted: str, doc: dict[str, Any]) -> bool:
    if is_unparsed(predicted):
        return False
    if kind == "numeric":
        return numbers_match(predicted, doc["answer"])
    if kind == "label":
        return predicted.strip().lower() == gold(doc).strip().lower()
    return predicted == gold(doc)


def _register(name: str):
    """``register_filter`` that tolerates this module being loaded twice (by path and name)."""

    def wrap(cls):
        if name in filter_registry:
            return cls
        return register_filter(name)(cls)

    return wrap


@_register("slm_extract")
class ExtractAnswer(Filter):
    """Per sample: generation -> canonical answer, or ``[unparsed] <reason>``."""

    def __init__(self, kind: str = "mcq", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind

    def apply(self, resps, docs):
        pairs = zip(resps, docs, strict=True)
        return [[extract(self.kind, r, doc) for r in rs] for rs, doc in pairs]


@_register("slm_majority_vote")
class MajorityVote(Filter):
    """Per question: k extracted answers -> the single voted answer (see ``vote.py``)."""

    def apply(self, resps, docs):
        return [[majority_vote(list(rs))] for rs in resps]


def _make_process_results(kind: str):
    def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, int]:
        predicted = results[0]
        return {
            "exact_match": int(is_correct(kind, predicted, doc)),
            "unparsed": int(is_unparsed(predicted)),
        }

    process_results.__doc__ = f"Score one filtered {kind} answer; unparsed counts as wrong."
    return process_results


process_results_mcq = _make_process_results("mcq")
process_results_label = _make_process_results("label")
process_results_numeric = _make_process_results("numeric")
