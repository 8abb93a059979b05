"""The generated sets that back lm-eval tasks directly, with no download and no data dir.

``ecommerce_intent`` is the shipped intent set; ``telecom_support`` is the question/answer
half of the telecom glossary set (4 examples per scenario: enough for evaluation, and cheap
to regenerate at each task load). Both are deterministic (seed 42), so two machines score
the same questions.
"""

from __future__ import annotations

from typing import Any

from harness.errors import SlmbenchError

SEED = 42
SUPPORT_PER_SCENARIO = 4


def generated_records(name: str) -> tuple[str, list[dict[str, Any]]]:
    """(source description, records with question/answer/subject/scenario) of a set."""
    if name == "ecommerce_intent":
        from harness.data.synth.intents import generate_intents

        return (f"synthetic:ecommerce_intents.yaml (seed {SEED})",
                generate_intents(seed=SEED))
    if name == "telecom_support":
        from harness.data.synth.generator import generate_examples
        from harness.data.synth.glossary import load_glossary
        from harness.data.synth.scenarios import build_scenarios

        examples = generate_examples(build_scenarios(load_glossary()), SEED,
                                     SUPPORT_PER_SCENARIO)
        records = [{**ex, "subject": ex["term"]} for ex in examples if ex["kind"] == "qa"]
        return f"synthetic:telecom_glossary.yaml (seed {SEED})", records
    raise SlmbenchError(f"{name}: no offline generator")
