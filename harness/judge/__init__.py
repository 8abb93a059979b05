"""LLM-as-a-judge: rubric and pairwise scoring of free-form answers by one or more judges.

Accuracy on multiple-choice items and validation loss rank adapters differently from how
people rate free-form support answers; a judge scores the answers themselves. Modules:
``client`` (OpenAI-compatible HTTP and in-process llama.cpp judges), ``rubric`` and
``pairwise`` (prompts and tolerant verdict parsers), ``agreement`` (inter-judge statistics),
``cache`` (verdicts on disk, so a re-run makes no calls) and ``runner`` (a batch into the
run store as a ``judge`` run).
"""
