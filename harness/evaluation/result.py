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
        scores = {}
        for task in tasks:
            found = headline(results.get("results", {}).get(task, {}))
            if found:
                metric, value, stderr = found
                scores[task] = {"metric": metric, "value": value, "stderr": stderr,
                                "n": results.get("n-samples", {}).get(task, {}).get("effective")}
        return cls(run.run_id, round(wall_s, 1), scores)
