"""Combinatorial synthetic data: glossary or intent set -> scenarios -> examples -> splits.

Telecom: a glossary of terms, each with its causes, crossed with shared customer contexts
(``term x cause x context`` = one scenario), expanded from templates into customer
question / support answer pairs and short conversations. E-commerce: an intent set in
several languages (``intent x language x slot combination`` = one scenario) expanded into
customer utterances labelled with their intent. Both are deduplicated (exact and near)
and split 60/20/20 by scenario, so no scenario appears in two splits. ``llm`` optionally
adds examples written by any OpenAI-compatible endpoint. Entry point: ``pipeline.run_synth``
(``slmbench data synth``).
"""
