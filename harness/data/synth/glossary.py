"""Load and validate a domain glossary: terms with their causes, and shared customer contexts.

Glossary YAML (see ``resources/telecom_glossary.yaml``)::

    domain: telecom
    contexts:                      # shared by every term
      - name: prepaid customer     # short label, unique (case/whitespace-insensitive)
        customer: I'm on a prepaid plan        # first person, starts with "I", no final stop
        note: Top-ups apply straight away.     # optional sentence the agent may add
    terms:
      - term: roaming              # unique (case/whitespace-insensitive)
        definition: Roaming means ...          # one or two full sentences
        causes:                    # this term's own causes, unique within the term
          - cause: data roaming is switched off   # clause: "Could it be that ...?"
            symptom: my phone has no data abroad  # first-person clause: "Since yesterday ..."
            fix: turn on Data Roaming             # imperative clause: "Please ..."

Scenarios are ``term x cause x context``. Every rule break is a one-line ``SlmbenchError``
naming the file and the term (or context) at fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data.synth.yamlfile import RESOURCES, read_yaml, text_field
from harness.errors import SlmbenchError

DEFAULT_GLOSSARY = RESOURCES / "telecom_glossary.yaml"


@dataclass(frozen=True)
class Cause:
    cause: str
    symptom: str
    fix: str


@dataclass(frozen=True)
class Term:
    term: str
    definition: str
    causes: tuple[Cause, ...]


@dataclass(frozen=True)
class Context:
    name: str
    customer: str
    note: str = ""


@dataclass(frozen=True)
class Glossary:
    domain: str
    terms: tuple[Term, ...]
    contexts: tuple[Context, ...]
    path: str
    sha256: str

    @property
    def n_scenarios(self) -> int:
        return sum(len(t.causes) for t in self.terms) * len(self.contexts)


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


def _items(data: dict[str, Any], name: str, where: str) -> list[Any]:
    items = data.get(name)
    if not isinstance(items, list) or not items:
        raise SlmbenchError(f"{where}: needs a non-empty list '{name}'")
    return items


def _parse_contexts(items: list[Any], where: str) -> tuple[Context, ...]:
    contexts: list[Context] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(items, 1):
        label = f"{where}: context #{index}"
        if not isinstance(entry, dict):
            raise SlmbenchError(f"{label}: must be a mapping with 'name' and 'customer'")
        try:
            ctx = Context(name=text_field(entry, "name"), customer=text_field(entry, "customer"),
                          note=text_field(entry, "note", required=False))
        except ValueError as err:
            raise SlmbenchError(f"{label}: {err}") from None
        if _key(ctx.name) in seen:
            raise SlmbenchError(f"{label}: duplicate context {ctx.name!r} "
                                f"(same as context #{seen[_key(ctx.name)]})")
        seen[_key(ctx.name)] = index
        contexts.append(ctx)
    return tuple(contexts)


def _parse_causes(entry: dict[str, Any], label: str) -> tuple[Cause, ...]:
    causes = entry.get("causes")
    if not isinstance(causes, list) or not causes:
        raise SlmbenchError(f"{label}: needs a non-empty list 'causes'")
    parsed: list[Cause] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(causes, 1):
        if not isinstance(raw, dict):
            raise SlmbenchError(f"{label}: cause #{index} must be a mapping with "
                                "'cause', 'symptom' and 'fix'")
        try:
            cause = Cause(cause=text_field(raw, "cause"), symptom=text_field(raw, "symptom"),
                          fix=text_field(raw, "fix"))
        except ValueError as err:
            raise SlmbenchError(f"{label}: cause #{index}: {err}") from None
        if _key(cause.cause) in seen:
            raise SlmbenchError(f"{label}: cause #{index} duplicates cause "
                                f"#{seen[_key(cause.cause)]} ({cause.cause!r})")
        seen[_key(cause.cause)] = index
        parsed.append(cause)
    return tuple(parsed)


def parse_glossary(data: Any, where: str, sha256: str = "") -> Glossary:
    """Validate parsed YAML ``data``; ``where`` names the file in error messages."""
    if not isinstance(data, dict):
        raise SlmbenchError(f"{where}: expected a mapping with 'terms' and 'contexts'")
    contexts = _parse_contexts(_items(data, "contexts", where), where)
    terms: list[Term] = []
    seen: dict[str, tuple[int, str]] = {}
    for index, entry in enumerate(_items(data, "terms", where), 1):
        if not isinstance(entry, dict):
            raise SlmbenchError(f"{where}: term #{index} must be a mapping with "
                                "'term', 'definition' and 'causes'")
        try:
            name = text_field(entry, "term")
        except ValueError as err:
            raise SlmbenchError(f"{where}: term #{index}: {err}") from None
        label = f"{where}: term #{index} {name!r}"
        if _key(name) in seen:
            first_index, first = seen[_key(name)]
            raise SlmbenchError(f"{label}: duplicate term (same as term #{first_index} "
                                f"{first!r}, ignoring case and whitespace)")
        seen[_key(name)] = (index, name)
        try:
            definition = text_field(entry, "definition")
        except ValueError as err:
            raise SlmbenchError(f"{label}: {err}") from None
        terms.append(Term(term=name, definition=definition, causes=_parse_causes(entry, label)))
    domain = str(data.get("domain") or "telecom").strip()
    return Glossary(domain=domain, terms=tuple(terms), contexts=contexts, path=where,
                    sha256=sha256)


def load_glossary(path: str | Path | None = None) -> Glossary:
    """The glossary at ``path`` (default: the shipped telecom glossary), validated."""
    path = Path(path) if path else DEFAULT_GLOSSARY
    data, sha256 = read_yaml(path)
    return parse_glossary(data, str(path), sha256)
