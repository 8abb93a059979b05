"""Readers of stored sweep and train rows, in both the current and the older shape.

Rows written before ``EvalResult`` carried the eval run id and wall time as ``_run_id`` and
``_wall_s`` keys among the per-task scores; these readers see through both shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def task_scores(scores: Mapping[str, Any] | None) -> dict[str, Any]:
    """The per-task scores of a stored row, without the keys older records mixed in."""
    return {k: v for k, v in (scores or {}).items()
            if not k.startswith("_") and isinstance(v, Mapping)}


def eval_run_of(row: Mapping[str, Any]) -> str | None:
    """The eval run a sweep point was scored in (``eval_run_id``; older rows: ``_run_id``)."""
    return row.get("eval_run_id") or (row.get("scores") or {}).get("_run_id")
