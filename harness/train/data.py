r"""Supervised examples for LoRA training, rendered exactly as the evaluation renders them.

The prompt of each example is the Pass@1 task's own ``doc_to_text`` (through lm-eval), wrapped
in the tokenizer's chat template the way ``--apply_chat_template`` wraps it, so an adapter
learns the very format it is scored on. The completion is the answer in the form the
extractor reads first: the option letter, the label, or ``\\boxed{...}`` for the tasks whose
prompt asks for a box. For choice and label tasks the options are reshuffled every epoch
(``harness.train.permute``) and the permuted doc is rendered by the same task functions.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from harness.data.seen import subset_indices
from harness.errors import SlmbenchError
from harness.hashing import sha256_json
from harness.prompts import completion_text, render_prompt
from harness.train.permute import permute_doc

# Fewer train examples than this cannot produce a meaningful adapter or validation loss.
MIN_TRAIN_EXAMPLES = 8


@dataclass
class Example:
    prompt: str
    completion: str
    input_ids: list[int]
    labels: list[int]
    answer_start: int  # index of the first answer token in input_ids


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


@dataclass
class Source:
    """One doc to train or validate on, with what it needs to be rendered again."""

    benchmark: str
    task: Any
    doc: dict[str, Any]
    key: str  # the example id the option permutation is drawn from
    permute: bool


def _render(tokenizer, use_chat: bool, source: Source, doc: dict[str, Any]) -> tuple[str, str]:
    return (render_prompt(tokenizer, source.task.doc_to_text(doc), use_chat),
            completion_text(source.benchmark, source.task, doc))


def uses_chat(cfg, tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None)) if cfg.chat_template is None \
        else bool(cfg.chat_template)


def load_sources(cfg, split: str, limit: int | None, seed_offset: int = 0) -> list[Source]:
    """The docs of ``split`` for every benchmark of ``cfg``, drawn as training draws them."""
    from harness.task_loader import load_task, task_manager

    manager = task_manager(cfg.data_dir, cfg.split_seed)
    sources: list[Source] = []
    for benchmark in cfg.benchmarks:
        name = cfg.task_name(benchmark)
        try:
            task = load_task(manager, name)
        except KeyError:
            raise SlmbenchError(f"train: {benchmark} has no {cfg.answer_format} variant (no "
                                f"lm-eval task {name!r}); use --answer-format choice") from None
        docs = list(task.training_docs() if split == "train" else task.validation_docs())
        permute = cfg.permutes(benchmark)
        own = [Source(benchmark, task, dict(doc), f"{benchmark}/{doc.get('id', i)}", permute)
               for i, doc in enumerate(docs)]
        cap = cfg.train_cap(benchmark)
        if split == "train":  # the draw *_seen tasks repeat (harness.data.seen)
            own = [own[i] for i in subset_indices(len(own), cap, cfg.seed + seed_offset)]
        sources += own
    if limit is not None and len(sources) > limit:
        sources = random.Random(cfg.seed + seed_offset).sample(sources, limit)
    names = "+".join(cfg.benchmarks)
    if split == "train" and len(sources) < MIN_TRAIN_EXAMPLES:
        raise SlmbenchError(f"train: the {names} train split has {len(sources)} examples; "
                            f"at least {MIN_TRAIN_EXAMPLES} are needed")
    if split != "train" and not sources:
        raise SlmbenchError(f"train: the {names} validation split is empty")
    return sources


class ExampleSet:
    """Tokenized examples of a list of sources, in the option order of a given epoch.

    Without permutation every epoch is the same list. With it, ``epoch(e)`` renders each doc
    with the options of ``permutation(seed, e, id)``: a pure function, so the checkpointed
    loop resumes onto exactly the examples an uninterrupted run would have seen.
    """

    def __init__(self, cfg, tokenizer, sources: list[Source]) -> None:
        self.cfg, self.tokenizer, self.sources = cfg, tokenizer, sources
        self.use_chat = uses_chat(cfg, tokenizer)
        self.pairs = [_render(tokenizer, self.use_chat, s, s.doc) for s in sources]
        self.sha256 = sha256_json(self.pairs)  # the data as written, whatever the option order
        self.base = self._tokenize(self.pairs)
        self.permuting = any(s.permute for s in sources)
        self._cache: tuple[int | str, list[Example]] | None = None

    def __len__(self) -> int:
        return len(self.sources)

    def _tokenize(self, pairs: list[tuple[str, str]]) -> list[Example]:
        return [tokenize_example(self.tokenizer, p, c, self.cfg.loss, self.cfg.max_seq_len,
                                 self.use_chat) for p, c in pairs]

    def permuted_pairs(self, epoch: int | str) -> list[tuple[str, str]]:
        """Prompt and completion of every source with the options of ``epoch``."""
        pairs = []
        for source, pair in zip(self.sources, self.pairs, strict=True):
            doc, done = (permute_doc(source.doc, self.cfg.seed, epoch, source.key)
                         if source.permute else (source.doc, "none"))
            pairs.append(_render(self.tokenizer, self.use_chat, source, doc)
                         if done == "permuted" else pair)
        return pairs

    def tally(self) -> dict[str, int]:
        """How many examples are shuffled, kept in order, or have no options; every epoch alike.

        'kept' are questions whose options name other options (``harness.train.permute``).
        """
        tally = Counter()
        for source in self.sources:
            tally[permute_doc(source.doc, 0, 0, source.key)[1] if source.permute
                  else "none"] += 1
        return dict(sorted(tally.items()))

    def epoch(self, epoch: int | str) -> list[Example]:
        if not self.permuting:
            return self.base
        if self._cache is None or self._cache[0] != epoch:
            self._cache = (epoch, self._tokenize(self.permuted_pairs(epoch)))
        return self._cache[1]


def build_examples(cfg, tokenizer, split: str, limit: int | None,
                   seed_offset: int = 0) -> tuple[list[Example], str]:
    """Examples of ``split`` for every benchmark of ``cfg`` and the hash of their text.

    The options are in their written order; ``ExampleSet.epoch`` gives the shuffled ones.
    """
    examples = ExampleSet(cfg, tokenizer, load_sources(cfg, split, limit, seed_offset))
    return examples.base, examples.sha256
