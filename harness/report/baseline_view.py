"""Scores on pages beside their baselines, and adapter gains tested in pairs.

A page shows a score only next to what answering without reading the question scores on
the same questions (``harness.scoring.baselines``), and calls an adapter's result a gain
only when it beats both the backbone and the best constant answer, each question paired
(exact McNemar): an adapter that learnt the key's prior instead of the domain beats a weak
backbone too, but never the constant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.report.leaderboard_data import EvalCell, Records
from harness.report.mdtable import DASH, is_num
from harness.scoring import baselines
from harness.significance import compare_paired, pair_by_id

ALPHA = baselines.ALPHA


def cell_baselines(records: Records, cell: EvalCell) -> dict[str, Any] | None:
    """The cell's recorded baselines; computed from its samples for records made before them."""
    return run_baselines(records, cell.run_id, cell.task)


def run_baselines(records: Records, run_id: str, task: str) -> dict[str, Any] | None:
    """Baselines of ``task`` in eval run ``run_id`` of the store, recorded or from its samples."""
    run = records.eval_runs.get(run_id)
    if run is None:
        return None
    info = run.tasks().get(task) or {}
    if isinstance(info.get("baselines"), dict):
        return info["baselines"]
    rows = run.samples(task) if info.get("samples") and run.readable(
        info["samples"]) else None
    found = baselines.compute(rows) if rows else None
    return found.as_dict() if found is not None else None


@dataclass(frozen=True)
class Paired:
    n: int
    delta: float
    lost: int
    gained: int
    p_value: float

    @property
    def significant_gain(self) -> bool:
        return self.delta > 0 and self.p_value < ALPHA

    def text(self) -> str:
        return f"{self.delta:+.3f} (p={_p(self.p_value)}, −{self.lost}/+{self.gained})"


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.0e}"


def paired(records: Records, base: EvalCell | None, tuned: EvalCell | None) -> Paired | None:
    """``tuned`` against ``base`` on the questions both answered, 0/1 scores only."""
    if base is None or tuned is None:
        return None
    runs = [records.eval_runs.get(c.run_id) for c in (base, tuned)]
    if any(r is None for r in runs):
        return None
    b, t = runs[0].per_doc(base.task), runs[1].per_doc(tuned.task)
    if not b or not t:
        return None
    base_scores, tuned_scores = pair_by_id(b, t)
    if not base_scores:
        return None
    stats = compare_paired(base_scores, tuned_scores)
    if stats["test"] != "mcnemar-exact":
        return None  # 0/1 scores only
    return Paired(stats["n"], stats["delta"], stats["lost"], stats["gained"], stats["p_value"])


def versus_constant(found: dict[str, Any] | None) -> Paired | None:
    """The recorded paired test of a score against its best constant answer."""
    if not found or not is_num(found.get("vs_constant_delta")):
        return None
    return Paired(int(found["n"]), float(found["vs_constant_delta"]),
                  int(found["vs_constant_lost"]), int(found["vs_constant_gained"]),
                  float(found["vs_constant_p"]))


def constant_text(found: dict[str, Any] | None) -> str:
    """``0.740 (A)``: the best constant answer's score and the answer."""
    if not found or not is_num(found.get("best_constant_score")):
        return DASH
    return f"{found['best_constant_score']:.3f} ({found['best_constant']})"


def top_text(found: dict[str, Any] | None) -> str:
    if not found or found.get("top_answer") is None or not is_num(found.get("top_share")):
        return DASH
    return f"{found['top_answer']} {found['top_share']:.0%}"
