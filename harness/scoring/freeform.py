"""Free-form answer metrics, as lm-eval metrics: the distillation study's automatic ones.

Per answer: exact match and token F1 (SQuAD normalisation, ``overlap.py``), ROUGE-1/2/L
F-measure (Google's ``rouge-score``, Porter stemming), METEOR (NLTK) and the cosine of
mean-pooled hidden states of the embedded model. Per corpus, through lm-eval's own
registered aggregations over ``(reference, prediction)`` pairs: BLEU, chrF and TER
(``sacrebleu``). The reference implementations do the arithmetic; this module only routes
strings to them.

METEOR's synonym stage needs WordNet. NLTK finds it in its data path (``nltk.download(
"wordnet")``) or in ``$SLMBENCH_WORDNET`` (a WordNet 3.0 ``dict`` folder with NLTK's
``lexnames``: ``scripts/wordnet_from_debian.sh`` makes one from Debian's ``wordnet-base``);
without it METEOR runs its exact and stem stages only, and says so once in the log.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
from typing import Any

from harness.scoring.overlap import token_f1, tokens

log = logging.getLogger(__name__)

EMBEDDING_MODEL = "SmolLM2-135M-Instruct (the embedded model), mean-pooled last hidden state"
PER_ANSWER = ("exact_match", "token_f1", "rouge1", "rouge2", "rougeL", "meteor", "embed_cos")
PER_CORPUS = ("bleu", "chrf", "ter")


def exact_match(prediction: str, reference: str) -> float:
    return float(tokens(prediction) == tokens(reference))


@functools.lru_cache(maxsize=1)
def _rouge():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


def rouge(prediction: str, reference: str) -> dict[str, float]:
    scores = _rouge().score(reference, prediction)  # (target, prediction)
    return {name: scores[name].fmeasure for name in ("rouge1", "rouge2", "rougeL")}


class _NoSynonyms:
    """A WordNet stand-in with no synsets: METEOR's exact and stem stages only."""

    @staticmethod
    def synsets(_word: str) -> list:
        return []


@functools.lru_cache(maxsize=1)
def wordnet():
    """NLTK's WordNet reader, or the no-synonym stand-in when WordNet is not installed."""
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    folder = os.environ.get("SLMBENCH_WORDNET")
    try:
        if folder:
            import nltk

            # NLTK >= 3.9.3 reads corpora only under its data path; a folder the user names
            # in SLMBENCH_WORDNET is authorised by that choice (else: "Unauthorized path").
            if folder not in nltk.data.path:
                nltk.data.path.append(folder)

            class DictFolder(WordNetCorpusReader):
                def map_wn(self, version="wordnet"):
                    return None  # maps other WordNet versions for OMW; METEOR needs none

            return DictFolder(folder, None)
        from nltk.corpus import wordnet as reader

        reader.synsets("signal")  # the lazy loader opens the corpus here, or raises
        return reader
    except (LookupError, OSError, ValueError) as err:  # PermissionError is an OSError
        log.warning("METEOR without WordNet synonyms (exact and stem matches only): %s",
                    str(err).strip().splitlines()[0] if str(err).strip() else err)
        return _NoSynonyms()


def meteor(prediction: str, reference: str) -> float:
    from nltk.translate.meteor_score import meteor_score

    hypothesis, ref = prediction.split(), reference.split()
    if not hypothesis or not ref:
        return float(hypothesis == ref)
    return float(meteor_score([ref], hypothesis, wordnet=wordnet()))


@functools.lru_cache(maxsize=1)
def _embedder():
    from transformers import AutoModel, AutoTokenizer

    from harness.artefacts.embedded import ensure_checkpoint

    folder = ensure_checkpoint()
    return AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()


def embedding_cosine(prediction: str, reference: str) -> float:
    """Cosine of mean-pooled last hidden states (``EMBEDDING_MODEL``); 0 for an empty answer."""
    import torch

    if not prediction.strip() or not reference.strip():
        return float(prediction.strip() == reference.strip())
    tokenizer, model = _embedder()
    vectors = []
    with torch.inference_mode():
        for text in (prediction, reference):
            ids = tokenizer(text, return_tensors="pt", truncation=True, max_length=512)
            vectors.append(model(**ids).last_hidden_state[0].mean(0))
    return float(torch.nn.functional.cosine_similarity(vectors[0], vectors[1], dim=0))


def answer_scores(prediction: str, reference: str) -> dict[str, Any]:
    """Every metric of one answer; the corpus ones as lm-eval's ``(reference, prediction)``."""
    scores: dict[str, Any] = {"exact_match": exact_match(prediction, reference),
                              "token_f1": token_f1(prediction, reference),
                              **rouge(prediction, reference),
                              "meteor": meteor(prediction, reference),
                              "embed_cos": embedding_cosine(prediction, reference)}
    for name in PER_CORPUS:
        scores[name] = (reference, prediction)
    return {k: v for k, v in scores.items() if not (isinstance(v, float) and math.isnan(v))}


def teleqna_reference(doc: dict[str, Any]) -> str:
    """The correct option's text, then the explanation the row carries."""
    answer = doc["choices"][int(doc["answer"])]
    explanation = str(doc.get("explanation") or "").strip()
    return f"{answer}. {explanation}".strip() if explanation else answer


def process_results_teleqna(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    return answer_scores(results[0].strip(), teleqna_reference(doc))


_AGENT_LABEL = re.compile(r"^\s*agent\s*:\s*", re.IGNORECASE)


def process_results_support(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    # The prompt ends in "Agent:"; a model that repeats the label has not said a word more.
    return answer_scores(_AGENT_LABEL.sub("", results[0]).strip(), doc["answer"])
