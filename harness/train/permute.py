"""Option-order augmentation for adapter training.

A small model fine-tuned on a few hundred questions learns where the answer key sits (75.8% of
srsRANBench's train keys are "A") rather than what the answer is. Shuffling each question's
options afresh every epoch, and relabelling its answer, leaves no position to learn: the gold
option keeps its text and moves. The shuffle is a pure function of (seed, epoch, example id),
so a run resumed from a mid-epoch checkpoint sees exactly the permutations an uninterrupted
run sees, and the permuted doc is rendered by the task's own ``doc_to_text``/``doc_to_target``,
so the training prompt stays the evaluation prompt.

Two kinds of docs are permuted:

* choice docs (``choices`` and an int ``answer``): the options are reordered and ``answer``
  follows its option;
* label docs (``labels`` and a str ``answer``): the label list is reordered, in the prompt's
  "Reply with exactly one label from: ..." list and in any list of exactly those labels the
  question embeds (3GPP-TSG's ``{'CT1', 'CT3', ...}``); the gold label string is unchanged.

Options that point at other options cannot move freely: "All of the above" / "None of the
above" keep their place (the rest shuffle around them), and a question whose options name
other options by letter or number ("Both A and B", "option 2") keeps its order, since moving
them would change what they say.
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any

# Options about the options before them: their position is part of their meaning.
_ANCHORED = re.compile(
    r"\b(all|none|both|neither|any)\s+(of\s+)?(the\s+)?(above|previous|preceding|these|those)\b"
    r"|^\s*(all|none)\s+(of\s+)?(the\s+)?(options|answers|choices)\b",
    re.IGNORECASE)
# Options naming other options by letter or number: moving anything would change their sense.
_NAMES_OPTIONS = re.compile(
    r"\b(options?|answers?|choices?|statements?)\s*\(?([A-H]|[1-9])\)?(?![\w.-])"
    r"|^\s*\(?[A-H]\)?\s*(,|and|&|or|\+)\s*\(?[A-H]\)?\s*((,|and|&|or|\+)\s*\(?[A-H]\)?\s*)*[.]?\s*$"
    r"|\b(both|either|neither)\s+\(?[A-H]\)?\s+(and|or|nor)\s+\(?[A-H]\)?(?![\w])",
    re.IGNORECASE)
# A bracketed, comma-separated list in a question (``{'CT1', 'CT3'}``, ``[RAN1, RAN2]``).
_EMBEDDED_LIST = re.compile(r"([\[{(])([^\[\]{}()]*,[^\[\]{}()]*)([\]})])")


def permutation(seed: int, epoch: int | str, example_id: str, n: int,
                anchored: frozenset[int] = frozenset()) -> list[int]:
    """``order[new_position] = old_position`` for one example in one epoch.

    Seeded from a sha256 of the key (never Python's per-process ``hash``), so every process,
    machine and resume draws the same order. Positions in ``anchored`` stay where they are.
    """
    key = f"{seed}\x1f{epoch}\x1f{example_id}".encode()
    rng = random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))
    free = [i for i in range(n) if i not in anchored]
    moved = list(free)
    rng.shuffle(moved)
    order = list(range(n))
    for slot, old in zip(free, moved, strict=True):
        order[slot] = old
    return order


def doc_kind(doc: dict[str, Any]) -> str | None:
    """'choice', 'label', or None for docs with nothing to permute (numbers, free text)."""
    answer = doc.get("answer")
    choices = doc.get("choices")
    if (isinstance(choices, list) and len(choices) >= 2 and isinstance(answer, int)
            and not isinstance(answer, bool) and 0 <= answer < len(choices)):
        return "choice"
    labels = doc.get("labels")
    if isinstance(labels, list) and len(labels) >= 2 and isinstance(answer, str) \
            and answer in labels:
        return "label"
    return None


def choice_constraints(choices: list[str]) -> frozenset[int] | None:
    """Positions that must not move, or None when the question must keep its whole order."""
    if any(_NAMES_OPTIONS.search(str(c)) for c in choices):
        return None
    return frozenset(i for i, c in enumerate(choices) if _ANCHORED.search(str(c)))


def permute_doc(doc: dict[str, Any], seed: int, epoch: int | str,
                example_id: str) -> tuple[dict[str, Any], str]:
    """The doc with its options (or labels) in this epoch's order, and what was done.

    The second value is 'permuted', 'kept' (options that name other options) or 'none'
    (nothing to permute); the input doc is never modified.
    """
    kind = doc_kind(doc)
    if kind == "choice":
        choices = list(doc["choices"])
        anchored = choice_constraints(choices)
        if anchored is None:
            return doc, "kept"
        order = permutation(seed, epoch, example_id, len(choices), anchored)
        return {**doc, "choices": [choices[i] for i in order],
                "answer": order.index(doc["answer"])}, "permuted"
    if kind == "label":
        labels = list(doc["labels"])
        order = permutation(seed, epoch, example_id, len(labels))
        new = [labels[i] for i in order]
        return {**doc, "labels": new,
                "question": reorder_embedded_lists(doc["question"], labels, new)}, "permuted"
    return doc, "none"


def reorder_embedded_lists(text: str, labels: list[str], new_order: list[str]) -> str:
    """Rewrite every bracketed list of exactly ``labels`` in ``text`` in ``new_order``.

    Brackets, quotes and separator are kept, so the question reads as before with its list
    reordered. Lists of other items are left alone.
    """
    wanted = sorted(labels)

    def swap(match: re.Match) -> str:
        body = match.group(2)
        items = [item.strip() for item in body.split(",")]
        bare = [item.strip("'\"") for item in items]
        if sorted(bare) != wanted:
            return match.group(0)
        quote = items[0][0] if items[0][:1] in ("'", '"') else ""
        separator = ", " if ", " in body else ","
        return (match.group(1) + separator.join(f"{quote}{label}{quote}" for label in new_order)
                + match.group(3))

    return _EMBEDDED_LIST.sub(swap, text)
