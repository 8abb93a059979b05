r"""Supervised examples for LoRA training, rendered exactly as the evaluation renders them.

The prompt of each example is the Pass@1 task's own ``doc_to_text`` (through lm-eval), wrapped
in the tokenizer's chat template the way ``--apply_chat_template`` wraps it, so an adapter
learns the very format it is scored on. The completion is the answer in the form the
extractor reads first: the option letter, the label, or ``\\boxed{...}`` for the tasks whose
prompt asks for a box.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from harness.data.seen import subset_indices
from harness.errors import SlmbenchError
from harness.hashing import sha256_json

# Pass@1 prompts of these benchmarks ask for the final answer in \boxed{}.
_BOXED = {"telemath", "telelogs"}
# Fewer train examples than this cannot produce a meaningful adapter or validation loss.
MIN_TRAIN_EXAMPLES = 8


@dataclass
class Example:
    prompt: str
    completion: str
    input_ids: list[int]
    labels: list[int]
    answer_start: int  # index of the first answer token in input_ids


def completion_text(benchmark: str, task, doc: dict[str, Any]) -> str:
    target = str(task.doc_to_target(doc))
    return f"\\boxed{{{target}}}" if benchmark in _BOXED else target


def render_prompt(tokenizer, text: str, chat_template: bool) -> str:
    if not chat_template:
        return text + " "
    return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                         add_generation_prompt=True)


def tokenize_example(tokenizer, prompt: str, completion: str, loss: str,
                     max_seq_len: int, chat_template: bool) -> Example:
    """Token ids and labels; ``loss='answer'`` masks the prompt out of the loss (-100)."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    end = tokenizer.eos_token if chat_template and tokenizer.eos_token else ""
    answer_ids = tokenizer(completion + end, add_special_tokens=False)["input_ids"]
    if not chat_template and tokenizer.eos_token_id is not None:
        answer_ids = answer_ids + [tokenizer.eos_token_id]
    room = max_seq_len - len(answer_ids)
    prompt_ids = prompt_ids[-room:] if room > 0 else []
    ids = prompt_ids + answer_ids
    labels = ([-100] * len(prompt_ids) if loss == "answer" else list(prompt_ids)) + answer_ids
    return Example(prompt, completion, ids, labels, len(prompt_ids))


def build_examples(cfg, tokenizer, split: str, limit: int | None,
                   seed_offset: int = 0) -> tuple[list[Example], str]:
    """Examples of ``split`` for every benchmark of ``cfg`` and the hash of their text."""
    from harness.task_loader import load_task, task_manager

    manager = task_manager(cfg.data_dir, cfg.split_seed)
    use_chat = cfg.chat_template
    if use_chat is None:
        use_chat = bool(getattr(tokenizer, "chat_template", None))
    pairs: list[tuple[str, str]] = []
    for benchmark in cfg.benchmarks:
        name = cfg.task_name(benchmark)
        try:
            task = load_task(manager, name)
        except KeyError:
            raise SlmbenchError(f"train: {benchmark} has no {cfg.answer_format} variant (no "
                                f"lm-eval task {name!r}); use --answer-format choice") from None
        docs = list(task.training_docs() if split == "train" else task.validation_docs())
        own = [(render_prompt(tokenizer, task.doc_to_text(doc), use_chat),
                completion_text(benchmark, task, doc)) for doc in docs]
        cap = cfg.train_cap(benchmark)
        if split == "train":  # the draw *_seen tasks repeat (harness.data.seen)
            own = [own[i] for i in subset_indices(len(own), cap, cfg.seed + seed_offset)]
        pairs += own
    if limit is not None and len(pairs) > limit:
        pairs = random.Random(cfg.seed + seed_offset).sample(pairs, limit)
    names = "+".join(cfg.benchmarks)
    if split == "train" and len(pairs) < MIN_TRAIN_EXAMPLES:
        raise SlmbenchError(f"train: the {names} train split has {len(pairs)} examples; "
                            f"at least {MIN_TRAIN_EXAMPLES} are needed")
    if split != "train" and not pairs:
        raise SlmbenchError(f"train: the {names} validation split is empty")
    examples = [tokenize_example(tokenizer, p, c, cfg.loss, cfg.max_seq_len, use_chat)
                for p, c in pairs]
    return examples, sha256_json(pairs)
