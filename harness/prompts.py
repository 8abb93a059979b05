"""Prompt builders referenced by the task YAMLs (``doc_to_text`` / ``doc_to_choice``).

They live in Python rather than Jinja so that the tests can render them and so that the
generative, Maj@k and loglikelihood variants of a benchmark share one wording: the
loglikelihood variant scores the same option letters the generative one asks for.
"""

from __future__ import annotations

import re
from typing import Any

from harness.scoring.extract import LETTERS

_MCQ_HEADER = (
    "The following is a multiple-choice question about telecommunications. "
    "Reply with the letter of the correct option."
)


def mcq_prompt(doc: dict[str, Any]) -> str:
    options = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(doc["choices"]))
    return f"{_MCQ_HEADER}\n\nQuestion: {doc['question']}\n{options}\nAnswer:"


def cloze_prompt(doc: dict[str, Any]) -> str:
    """The question alone, without lettered options (lm-eval's ARC and MMLU cloze).

    The cloze variants score each option's text after it, so no letter position can carry
    the answer.
    """
    return f"Question: {doc['question']}\nAnswer:"


def choice_texts(doc: dict[str, Any]) -> list[str]:
    return list(doc["choices"])


# 3GPP-TSG rows wrap the document excerpt as "###TEXT:\n{...}" after an instruction that
# lists every label; the cloze variant keeps only the excerpt.
_TSG_EXCERPT = re.compile(r"###TEXT:\s*\{(?P<text>.*)\}\s*$", re.DOTALL)


def label_cloze_prompt(doc: dict[str, Any]) -> str:
    """The document excerpt without the instruction or any label list, for the label cloze."""
    found = _TSG_EXCERPT.search(doc["question"])
    text = found.group("text").strip() if found else doc["question"]
    return f"Text: {text}\nQuestion: Which 3GPP working group wrote this text?\nAnswer:"


def freeform_qa_prompt(doc: dict[str, Any]) -> str:
    """A TeleQnA question answered in words: the option's text, then why (free-form QA)."""
    options = "\n".join(f"- {c}" for c in doc["choices"])
    return ("Answer the following question about telecommunications: state the correct "
            "option in full, then explain why in one or two sentences.\n\n"
            f"Question: {doc['question']}\nOptions:\n{options}\nAnswer:")


def mcq_letters(doc: dict[str, Any]) -> list[str]:
    return [LETTERS[i] for i in range(len(doc["choices"]))]


def label_prompt(doc: dict[str, Any]) -> str:
    labels = ", ".join(doc["labels"])
    return (
        f"{doc['question']}\n\nReply with exactly one label from: {labels}.\nAnswer:"
    )


def intent_prompt(doc: dict[str, Any]) -> str:
    """A customer message to classify; labels are listed so the answer set is closed."""
    labels = ", ".join(doc["labels"])
    return (
        f"Customer message: {doc['question']}\n\nWhich intent does this message express? "
        f"Reply with exactly one label from: {labels}.\nAnswer:"
    )


def support_prompt(doc: dict[str, Any]) -> str:
    """A customer's message to answer as a support agent (free-form)."""
    return (f"You are a telecom customer-support agent. Answer the customer helpfully and "
            f"concretely.\n\nCustomer: {doc['question']}\nAgent:")


def label_choices(doc: dict[str, Any]) -> list[str]:
    return list(doc["labels"])


def label_target(doc: dict[str, Any]) -> int:
    """Index of the gold label, for the loglikelihood variant."""
    return list(doc["labels"]).index(doc["answer"])


def numeric_prompt(doc: dict[str, Any]) -> str:
    return (
        f"{doc['question']}\n\nSolve the problem and give the final numeric answer "
        "in \\boxed{}.\nAnswer:"
    )


def reasoning_label_prompt(doc: dict[str, Any]) -> str:
    labels = ", ".join(doc["labels"])
    return (
        f"{doc['question']}\n\nGive the root cause as one label from: {labels}, "
        "with the final label in \\boxed{}.\nAnswer:"
    )


def target_text(doc: dict[str, Any]) -> str:
    """Gold answer as text, shown in lm-eval's per-sample log."""
    answer = doc["answer"]
    return LETTERS[answer] if isinstance(answer, int) else str(answer)


# Pass@1 prompts of these benchmarks ask for the final answer in \boxed{}.
_BOXED_ANSWER = {"telemath", "telelogs"}


def completion_text(benchmark: str, task, doc: dict[str, Any]) -> str:
    """The answer as training teaches it: in the form the extractor reads first."""
    target = str(task.doc_to_target(doc))
    return f"\\boxed{{{target}}}" if benchmark in _BOXED_ANSWER else target


def render_prompt(tokenizer, text: str, chat_template: bool) -> str:
    """The prompt wrapped as ``--apply_chat_template`` wraps it, so training sees evaluation's."""
    if not chat_template:
        return text + " "
    return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                         add_generation_prompt=True)
