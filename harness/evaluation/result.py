"""``EvalResult``: what a caller reads back from an evaluation, typed.

Scores per task, the run that holds every answer, and the wall time, as separate fields:
before, the run id and wall time rode inside the scores as ``_run_id``/``_wall_s`` keys that
every reader had to filter out. Sweep results and train records written before keep those
keys; ``task_scores`` and ``eval_run_of`` read both shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.evaluation.record import headline
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


def task_scores(scores: Mapping[str, Any] | None) -> dict[str, Any]:
    """The per-task scores of a stored row, without the keys older records mixed in."""
    return {k: v for k, v in (scores or {}).items()
            if not k.startswith("_") and isinstance(v, Mapping)}


def eval_run_of(row: Mapping[str, Any]) -> str | None:
    """The eval run a sweep point was scored in (``eval_run_id``; older rows: ``_run_id``)."""
    return row.get("eval_run_id") or (row.get("scores") or {}).get("_run_id")
