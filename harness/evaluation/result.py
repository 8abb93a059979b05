"""``EvalResult``: what a caller reads back from an evaluation, typed.

Scores per task, the run that holds every answer, and the wall time, as separate fields:
before, the run id and wall time rode inside the scores as ``_run_id``/``_wall_s`` keys that
every reader had to filter out. Sweep results and train records written before keep those
keys; ``harness.runs.records`` reads both shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.evaluation.sample_rows import headline
from harness.runs.store import Run


@dataclass(frozen=True)
class EvalResult:
    run_id: str
    wall_s: float
    scores: Mapping[str, Mapping[str, Any]]  # task -> metric, value, stderr, n

    @classmethod
    def of(cls, run: Run, tasks: list[str], wall_s: float) -> EvalResult:
        results = run.json("results.json") or {}
        recorded = run.tasks()
        scores = {}
        for task in tasks:
            found = headline(results.get("results", {}).get(task, {}))
            if found:
                metric, value, stderr = found
                scores[task] = {"metric": metric, "value": value, "stderr": stderr,
                                "n": results.get("n-samples", {}).get(task, {}).get("effective")}
                scores[task].update(_circular(recorded.get(task) or {}))
        return cls(run.run_id, round(wall_s, 1), scores)


def _circular(info: Mapping[str, Any]) -> dict[str, Any]:
    """A circular task's score per whole question, where lm-eval's n counts prompts.

    Its mean over rotations comes too: it tells a model at chance from one below it, where
    strict accuracy is 0 for both.
    """
    if "circular_mean" not in info:
        return {}
    return {"value": info["value"], "stderr": info["stderr"], "n": info["n"],
            "circular_mean": dict(info["circular_mean"])}
