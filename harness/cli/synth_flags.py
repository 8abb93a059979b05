"""Flags of ``slmbench data synth`` and their translation into ``SynthOptions``."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.data.synth.dedup import DEFAULT_THRESHOLD
from harness.data.synth.intents import DEFAULT_CONTEXTS
from harness.data.synth.llm import DEFAULT_KEY_ENV, LLMConfig
from harness.data.synth.pipeline import DOMAINS, SynthOptions
from harness.errors import SlmbenchError

DESCRIPTION = """\
Generate a synthetic data set from templates written in the repo, offline and deterministic
(same seed, same bytes): telecom = glossary terms x causes x customer contexts expanded into
question/answer pairs and conversations; ecommerce = intents x languages x slot combinations
expanded into labelled customer utterances. Near-duplicates are dropped and the split is
60/20/20 by scenario, so no scenario is in two splits. Optionally adds examples written by
an OpenAI-compatible endpoint (cached under OUT/llm_cache, logged to OUT/llm_calls.jsonl).

  slmbench data synth telecom --out data/synth/telecom
  slmbench data synth ecommerce --out data/synth/ecommerce --seed 7
  slmbench data synth telecom --out runs/tele --glossary my_glossary.yaml --per-scenario 5
  slmbench data synth ecommerce --out runs/shop --llm-base-url http://127.0.0.1:8080/v1 \\
      --llm-model qwen2.5-7b-instruct --llm-max-items 50
"""


def add_synth_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("domain", choices=DOMAINS)
    p.add_argument("--out", required=True, help="output folder for {train,validation,test}.jsonl")
    p.add_argument("--seed", type=int, default=42, help="phrasing and split seed (default 42)")
    p.add_argument("--per-scenario", type=int, default=None,
                   help="examples per scenario (default 20 telecom, 5 ecommerce)")
    p.add_argument("--glossary", default=None,
                   help="glossary (telecom) or intent-set (ecommerce) YAML; default: shipped")
    p.add_argument("--contexts", type=int, default=DEFAULT_CONTEXTS,
                   help="ecommerce: slot combinations per intent and language (default "
                        "%(default)s)")
    p.add_argument("--dedup-threshold", type=float, default=DEFAULT_THRESHOLD,
                   help="Jaccard similarity of word 3-grams that counts as a near-duplicate "
                        "(default %(default)s)")
    g = p.add_argument_group("LLM expansion (optional, any OpenAI-compatible endpoint)")
    g.add_argument("--llm-base-url", default=None, help="e.g. https://api.openai.com/v1")
    g.add_argument("--llm-model", default=None)
    g.add_argument("--llm-api-key-env", default=DEFAULT_KEY_ENV,
                   help="environment variable holding the API key (default %(default)s)")
    g.add_argument("--llm-rps", type=float, default=2.0, help="max requests per second")
    g.add_argument("--llm-price-per-1k", type=float, default=0.0,
                   help="price per 1,000 tokens, for the cost estimate (default 0)")
    g.add_argument("--llm-examples", type=int, default=2,
                   help="examples asked for per request (default 2)")
    g.add_argument("--llm-max-items", type=int, default=None,
                   help="scenarios sent to the LLM, a seeded sample (default all)")
    g.add_argument("--llm-max-retries", type=int, default=4)
    g.add_argument("--llm-timeout", type=float, default=60.0, help="seconds per request")
    g.add_argument("--llm-cache", default=None, help="cache folder (default OUT/llm_cache)")


def options_from_args(args: argparse.Namespace) -> SynthOptions:
    llm = None
    if args.llm_base_url or args.llm_model:
        if not (args.llm_base_url and args.llm_model):
            raise SlmbenchError("LLM expansion needs both --llm-base-url and --llm-model")
        llm = LLMConfig(base_url=args.llm_base_url, model=args.llm_model,
                        api_key_env=args.llm_api_key_env, rps=args.llm_rps,
                        price_per_1k=args.llm_price_per_1k, max_retries=args.llm_max_retries,
                        timeout=args.llm_timeout,
                        cache_dir=Path(args.llm_cache) if args.llm_cache else None)
    return SynthOptions(domain=args.domain, out=Path(args.out), seed=args.seed,
                        per_scenario=args.per_scenario,
                        source=Path(args.glossary) if args.glossary else None,
                        contexts=args.contexts, dedup_threshold=args.dedup_threshold, llm=llm,
                        llm_examples=args.llm_examples, llm_max_items=args.llm_max_items)


def summary(report: dict) -> str:
    """The few lines the CLI prints after a run."""
    ex, sc, dd = report["examples"], report["scenarios"], report["dedup"]
    lines = [
        f"synth {report['domain']}: {sc['total']} scenarios -> {ex['total']} examples "
        f"(train {ex['train']} / validation {ex['validation']} / test {ex['test']}; "
        f"scenarios {sc['train']}/{sc['validation']}/{sc['test']})",
        f"dedup: dropped {dd['dropped']} of {dd['total']} ({dd['exact']} exact, {dd['near']} "
        f"near at Jaccard >= {dd['threshold']})",
    ]
    if report.get("llm"):
        llm = report["llm"]
        lines.append(f"llm: {llm['succeeded']}/{llm['items']} items ok, {llm['records']} "
                     f"examples, {llm['http_calls']} calls, {llm['cache_hits']} cached, "
                     f"{llm['failed']} failed {llm['failures'] or ''}, est. cost "
                     f"{llm['cost']:.4f}")
    return "\n".join(lines)
