"""Scenarios: every ``term x cause x context`` of a glossary, each with a stable id."""

from __future__ import annotations

from dataclasses import dataclass

from harness.data.synth.glossary import Cause, Context, Glossary, Term
from harness.data.synth.ids import content_id


@dataclass(frozen=True)
class Scenario:
    id: str
    term: Term
    cause: Cause
    context: Context


def scenario_id(domain: str, term: str, cause: str, context: str) -> str:
    """Hash of the scenario's parts (case- and whitespace-insensitive), not of its position."""
    return content_id(domain, term, cause, context, fold=True)


def build_scenarios(glossary: Glossary) -> list[Scenario]:
    """All scenarios, in glossary order (terms, then their causes, then contexts)."""
    return [
        Scenario(id=scenario_id(glossary.domain, term.term, cause.cause, ctx.name),
                 term=term, cause=cause, context=ctx)
        for term in glossary.terms
        for cause in term.causes
        for ctx in glossary.contexts
    ]
