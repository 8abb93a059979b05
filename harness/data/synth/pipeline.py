"""``slmbench data synth``: source -> scenarios -> examples (+ LLM) -> dedup -> split -> files.

Writes ``OUT/{train,validation,test}.jsonl`` (one record per line, each file written
atomically) and ``OUT/synth_report.json``: sizes per split, scenarios, duplicates dropped,
LLM items that failed, the seed and the sha256 of the glossary or intent set. The same
inputs and seed give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data.splits import DEFAULT_SEED, SPLITS
from harness.data.synth import expand
from harness.data.synth.dedup import DEFAULT_THRESHOLD, dedup
from harness.data.synth.generator import DEFAULT_PER_SCENARIO, generate_examples
from harness.data.synth.glossary import load_glossary
from harness.data.synth.intents import (
    DEFAULT_CONTEXTS,
    build_intent_scenarios,
    dedup_intents,
    intent_examples,
    load_intent_set,
)
from harness.data.synth.intents import DEFAULT_PER_SCENARIO as INTENT_PER_SCENARIO
from harness.data.synth.llm import ExpanderChat, LLMConfig, run_items
from harness.data.synth.scenario_split import assign_scenarios, split_by_scenario
from harness.data.synth.scenarios import build_scenarios
from harness.errors import SlmbenchError
from harness.runs.atomic import write_json_atomic, write_text_atomic

DOMAINS = ("telecom", "ecommerce")
GENERATOR_VERSION = 1


@dataclass
class SynthOptions:
    domain: str
    out: Path
    seed: int = DEFAULT_SEED
    per_scenario: int | None = None  # default: 20 (telecom) or 5 (ecommerce)
    source: Path | None = None  # glossary (telecom) or intent set (ecommerce) YAML
    contexts: int = DEFAULT_CONTEXTS  # ecommerce: slot combinations per intent and language
    dedup_threshold: float = DEFAULT_THRESHOLD
    llm: LLMConfig | None = None
    llm_examples: int = 2  # examples asked for per LLM request
    llm_max_items: int | None = None  # scenarios sent to the LLM (None: all)

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise SlmbenchError(f"unknown synth domain {self.domain!r}; known: "
                                f"{', '.join(DOMAINS)}")
        if self.per_scenario is not None and self.per_scenario < 1:
            raise SlmbenchError(f"--per-scenario must be >= 1, got {self.per_scenario}")
        if not 0 < self.dedup_threshold <= 1:
            raise SlmbenchError(f"--dedup-threshold must be in (0, 1], got "
                                f"{self.dedup_threshold}")
        if self.contexts < 1 or self.llm_examples < 1:
            raise SlmbenchError("--contexts and --llm-examples must be >= 1")
        self.out = Path(self.out)
        if self.llm is not None:
            self.llm.cache_dir = self.llm.cache_dir or self.out / "llm_cache"
            self.llm.log_path = self.llm.log_path or self.out / "llm_calls.jsonl"


def _telecom(opts: SynthOptions, client: ExpanderChat | None) -> tuple[list, dict[str, Any]]:
    glossary = load_glossary(opts.source)
    scenarios = build_scenarios(glossary)
    per = opts.per_scenario or DEFAULT_PER_SCENARIO
    records = generate_examples(scenarios, opts.seed, per)
    generated = {"template": len(records), "llm": 0}
    if client is not None:
        extra = run_items(client, expand.telecom_items(scenarios, opts.llm_examples, opts.seed,
                                                       opts.llm_max_items))
        generated["llm"] = len(extra)
        records += extra
    kept, report = dedup(records, threshold=opts.dedup_threshold)
    info = {
        "source": glossary.path, "source_sha256": glossary.sha256, "per_scenario": per,
        "terms": len(glossary.terms), "causes": sum(len(t.causes) for t in glossary.terms),
        "contexts": len(glossary.contexts), "scenario_ids": [s.id for s in scenarios],
        "generated": generated, "dedup": report.as_dict(),
    }
    return kept, info


def _ecommerce(opts: SynthOptions, client: ExpanderChat | None) -> tuple[list, dict[str, Any]]:
    intent_set = load_intent_set(opts.source)
    scenarios = build_intent_scenarios(intent_set, opts.seed, opts.contexts)
    per = opts.per_scenario or INTENT_PER_SCENARIO
    records = intent_examples(intent_set, scenarios, opts.seed, per)
    generated = {"template": len(records), "llm": 0}
    if client is not None:
        extra = run_items(client, expand.intent_items(intent_set, scenarios, opts.llm_examples,
                                                      opts.seed, opts.llm_max_items))
        generated["llm"] = len(extra)
        records += extra
    kept, report = dedup_intents(records, opts.dedup_threshold)
    info = {
        "source": intent_set.path, "source_sha256": intent_set.sha256, "per_scenario": per,
        "intents": intent_set.labels, "languages": list(intent_set.languages),
        "contexts": opts.contexts, "scenario_ids": [s.id for s in scenarios],
        "generated": generated, "dedup": report.as_dict(),
    }
    return kept, info


def _jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def run_synth(opts: SynthOptions,
              client_factory: Callable[[LLMConfig], ExpanderChat] = ExpanderChat) -> dict[str, Any]:
    """Generate, deduplicate, split and write one synthetic data set; returns the report."""
    client = client_factory(opts.llm) if opts.llm is not None else None
    build = _telecom if opts.domain == "telecom" else _ecommerce
    records, info = build(opts, client)
    if not records:
        raise SlmbenchError(f"synth {opts.domain}: no examples were generated")
    scenario_ids = info.pop("scenario_ids")
    where = assign_scenarios(scenario_ids, opts.seed)
    parts = split_by_scenario(records, opts.seed, scenario_ids=scenario_ids)
    files = {}
    for name in SPLITS:
        text = _jsonl(parts[name])
        write_text_atomic(opts.out / f"{name}.jsonl", text)
        files[name] = {"path": f"{name}.jsonl", "rows": len(parts[name]),
                       "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}
    group, title = ("kind", "by_kind") if opts.domain == "telecom" else ("subject", "by_language")
    info["source"] = str(opts.source) if opts.source else f"shipped:{Path(info['source']).name}"
    report: dict[str, Any] = {
        "domain": opts.domain,
        "generator_version": GENERATOR_VERSION,
        "seed": opts.seed,
        **{k: info.pop(k) for k in ("source", "source_sha256", "per_scenario")},
        "scenarios": {"total": len(where),
                      **{n: sum(1 for s in where.values() if s == n) for n in SPLITS}},
        "examples": {"total": len(records), **{n: len(parts[n]) for n in SPLITS}},
        title: {n: dict(sorted(Counter(r[group] for r in parts[n]).items())) for n in SPLITS},
        **info,
        "llm": None,
        "failed_llm_items": 0,
        "files": files,
    }
    if opts.domain == "ecommerce":
        report["by_label"] = dict(sorted(Counter(r["answer"] for r in records).items()))
    if client is not None:
        report["llm"] = {**opts.llm.describe(), **client.report.as_dict()}
        report["failed_llm_items"] = client.report.failed
    write_json_atomic(opts.out / "synth_report.json", report)
    return report
