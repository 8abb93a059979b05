"""A loud warning when most of a task's answers could not be parsed, with its likely cause.

An unparsed answer scores as wrong, so a run where most answers are unparsed measures the
set-up, not the model: TeleQnA scored 0.013 with 95% unparsed when a chat model's folder was
evaluated without its chat template, and nothing said so. Two causes explain nearly every
case: the chat template is off for a model whose tokenizer has one, or ``max_gen_toks`` cut
the replies before they reached an answer. ``unparsed_warnings`` is a pure function of the
counts and of facts about the run, so every cause is tested without running a model;
``run_facts`` and ``task_answers`` gather those facts from a recorded run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.scoring.extract import is_unparsed

# More than this share of a task's answers unparsed gets a warning.
THRESHOLD = 0.5
# A reply re-tokenized can come out a token or two shorter than the tokens generated.
_LIMIT_SLACK = 2
# The extractors' reasons for a reply that named several answers ("names 7 labels ...").
_NAMES_SEVERAL = re.compile(r"\b(?:names|mentions) (?:\d+|options)\b")


@dataclass(frozen=True)
class TaskAnswers:
    """How one task's answers parsed."""

    task: str
    n: int
    unparsed: int
    # unparsed answers whose reply ran to the generation limit (a reply of each, for Maj@k)
    cut: int
    max_gen_toks: int | None
    samples: str | None = None  # where the replies are, for the user to read
    # unparsed answers that name several options or labels at once (the list echoed back)
    echoed: int = 0

    @property
    def mostly_echoes(self) -> bool:
        return self.echoed > self.unparsed / 2


@dataclass(frozen=True)
class RunFacts:
    """What about the run can make answers unparseable."""

    model: str
    pretrained: str | None
    chat_template: bool  # whether lm-eval applied a chat template
    has_chat_template: bool | None  # whether the model's tokenizer has one (None: unknown)
    declined: bool = False  # --no_chat_template turned off the one slmbench would apply


def unparsed_warnings(tasks: Iterable[TaskAnswers], facts: RunFacts,
                      threshold: float = THRESHOLD) -> list[str]:
    """The warning lines for the tasks with more than ``threshold`` unparsed, else []."""
    bad = [t for t in tasks if t.n and t.unparsed / t.n > threshold]
    if not bad:
        return []
    lines = [f"WARNING: {t.task}: {t.unparsed} of {t.n} answers ({t.unparsed / t.n:.0%}) "
             "could not be parsed and score as wrong; "
             + ("most name several answers at once (below)." if t.mostly_echoes else
                "this score measures the set-up, not the model.") for t in bad]
    model = facts.pretrained or facts.model
    causes = []
    if not facts.chat_template and facts.has_chat_template is not False:
        has = ("its tokenizer has one" if facts.has_chat_template
               else "if it is a chat or instruct model, it needs one")
        fix = ("drop --no_chat_template" if facts.declined else
               "add --apply_chat_template (slmbench turns it on by itself only for the "
               "embedded model)")
        causes.append(f"the chat template is off for {model} ({has}): {fix}.")
    for t in bad:
        if t.mostly_echoes:
            causes.append(
                f"{t.task}: {t.echoed} of its {t.unparsed} unparsed replies name several "
                "options or labels at once: the model lists the choices instead of picking "
                "one. That is the model failing the task, not the set-up; the _cloze variant "
                "scores it without extracting an answer.")
        if t.max_gen_toks and t.cut > t.unparsed / 2:
            causes.append(
                f"{t.task}: {t.cut} of its {t.unparsed} unparsed replies stop at the "
                f"generation limit (max_gen_toks={t.max_gen_toks}): raise it, e.g. "
                f"--gen_kwargs max_gen_toks={2 * t.max_gen_toks}.")
    if causes:
        lines += [f"  likely cause: {cause}" for cause in causes]
    else:
        where = ", ".join(t.samples for t in bad if t.samples) or "the run's samples"
        split = "; ".join(
            f"{t.task}: {t.echoed} name several answers, {t.cut} stop at the generation "
            f"limit, {t.unparsed - t.echoed - t.cut} name none" for t in bad)
        lines.append(f"  no usual cause found ({split}): read the replies (field resps) in "
                     f"{where}.")
    return lines


def reached_limit(reply: str, max_gen_toks: int | None,
                  count_tokens: Callable[[str], int]) -> bool:
    """Whether a reply was most likely stopped by ``max_gen_toks`` rather than finished."""
    return bool(max_gen_toks) and count_tokens(reply) >= max_gen_toks - _LIMIT_SLACK


def rough_token_count(text: str) -> int:
    """Tokens without the model's tokenizer, from its words, punctuation and characters.

    On SmolLM2's replies in the committed study a token is 0.8 words-or-marks and 3.1
    characters on average. The larger of the two estimates finds 7 in 10 of the replies
    that reached 30 tokens, with as many false finds; good enough to name a likely cause
    when most of a task's replies were cut, and used only when no tokenizer can be loaded.
    """
    marks = len(re.findall(r"\w+|[^\w\s]", text))
    return round(max(marks / 0.8, len(text) / 3.1))


def task_answers(task: str, rows: list[dict[str, Any]], max_gen_toks: int | None,
                 count_tokens: Callable[[str], int], samples: str | None = None
                 ) -> TaskAnswers:
    """Count a task's unparsed answers (per-sample rows of the run store) and cut replies."""
    unparsed = [row for row in rows if _parsed(row) is not None and is_unparsed(_parsed(row))]
    # A reply that already names several options or labels is an echo, which more tokens
    # would only lengthen; it does not count as cut short.
    echoed = [row for row in unparsed if _NAMES_SEVERAL.search(_parsed(row) or "")]
    cut = sum(1 for row in unparsed
              if row not in echoed and any(reached_limit(reply, max_gen_toks, count_tokens)
                                           for reply in _replies(row)))
    return TaskAnswers(task, len(rows), len(unparsed), cut, max_gen_toks, samples,
                       echoed=len(echoed))


def run_warnings(run: Any, spec: Any) -> list[str]:
    """``unparsed_warnings`` for a recorded run (a ``Run``) of an ``EvalSpec``.

    The model's tokenizer counts reply tokens, loaded only when a task is over the
    threshold and only from local files; without it the count is ``rough_token_count``.
    """
    results = run.json("results.json") or {}
    configs = results.get("configs", {})
    tasks = []
    for task, info in sorted(run.tasks().items()):
        rows = run.samples(task)
        if rows:
            limit = ((configs.get(task) or {}).get("generation_kwargs") or {}).get("max_gen_toks")
            tasks.append((task, rows, limit if isinstance(limit, int) else None,
                          str(run.path / info["samples"])))
    quick = [task_answers(task, rows, limit, lambda _: 0) for task, rows, limit, _ in tasks]
    if not any(t.n and t.unparsed / t.n > THRESHOLD for t in quick):
        return []
    pretrained = spec.model_args.get("pretrained")
    count = _token_counter(pretrained)
    answers = [task_answers(task, rows, limit, count, where)
               for task, rows, limit, where in tasks]
    facts = RunFacts(model=str(spec.model), pretrained=None if pretrained is None
                     else str(pretrained), chat_template=bool(spec.apply_chat_template),
                     has_chat_template=has_chat_template(pretrained),
                     declined=bool(spec.no_chat_template))
    return unparsed_warnings(answers, facts)


def _token_counter(pretrained: Any) -> Callable[[str], int]:
    """The model's tokenizer as a token counter, else ``rough_token_count``."""
    from harness.artefacts.embedded import checkpoint_dir, is_embedded

    if is_embedded(pretrained) and checkpoint_dir().is_dir():  # llama-cpp's "embedded"
        pretrained = checkpoint_dir()
    if pretrained:
        try:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(pretrained), local_files_only=True)
            return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])
        except Exception:  # noqa: BLE001 - a GGUF, an uncached Hub id: count roughly
            pass
    return rough_token_count


def _parsed(row: dict[str, Any]) -> str | None:
    parsed = row.get("parsed")
    while isinstance(parsed, list):
        parsed = parsed[0] if parsed else None
    return parsed if isinstance(parsed, str) else None


def _replies(row: dict[str, Any]) -> list[str]:
    resps = row.get("resps") or []
    flat: list[str] = []
    stack = list(resps)
    while stack:
        item = stack.pop(0)
        if isinstance(item, list):
            stack[:0] = item
        elif isinstance(item, str):
            flat.append(item)
    return flat


def has_chat_template(pretrained: str | None) -> bool | None:
    """Whether a transformers checkpoint's tokenizer ships a chat template (None: unknown).

    Read from its files (``tokenizer_config.json``'s ``chat_template``, or the
    ``chat_template.jinja``/``.json`` newer transformers write), in a local folder or the
    Hub cache; nothing is downloaded.
    """
    if not pretrained:
        return None
    folder = Path(str(pretrained)).expanduser()
    if folder.is_dir():
        return _template_in(lambda name: folder / name)
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None

    def cached(name: str) -> Path:
        try:
            found = try_to_load_from_cache(str(pretrained), name)
        except ValueError:  # not a Hub id either (a GGUF file's path): unknown
            found = None
        return Path(found) if isinstance(found, str) else Path("/nonexistent") / name

    if not cached("tokenizer_config.json").is_file():
        return None
    return _template_in(cached)


def _template_in(path_of: Callable[[str], Path]) -> bool:
    if path_of("chat_template.jinja").is_file() or path_of("chat_template.json").is_file():
        return True
    config = path_of("tokenizer_config.json")
    try:
        return bool(json.loads(config.read_text(encoding="utf-8")).get("chat_template"))
    except (OSError, ValueError, AttributeError):
        return False
