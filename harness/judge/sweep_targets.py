"""Judge every point of a LoRA sweep in one command (``slmbench judge --sweep DIR``).

The reference study's check of validation loss against judge rank. Each finished point's
``result.json`` names the eval run of its adapter (``eval_run_id``); every one of those
runs gets its own judge run, so the leaderboard's sweep section can join judge scores to
points. Points not yet evaluated are listed, not silently dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import SlmbenchError
from harness.runs.records import eval_run_of, task_scores
from harness.runs.store import RUN_FILE, store_root

RESULT = "result.json"  # harness.train.sweep writes it; not imported so no torch is loaded


@dataclass
class SweepPoint:
    name: str
    val_loss: float | None
    eval_run: Path | None
    task_scores: dict[str, Any]


def sweep_points(sweep_dir: str | Path, store: str | Path | None = None) -> list[SweepPoint]:
    """The sweep's finished points in folder order, each with its eval run folder (or None)."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise SlmbenchError(f"--sweep {sweep_dir}: no such sweep folder")
    points = []
    for result_file in sorted(sweep_dir.glob(f"*/{RESULT}")):
        try:
            result = json.loads(result_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise SlmbenchError(f"{result_file}: unreadable sweep result ({err})") from None
        run_id = eval_run_of(result)
        folder = store_root(store) / "eval" / run_id if run_id else None
        if folder is not None and not (folder / RUN_FILE).is_file():
            folder = None
        points.append(SweepPoint(result.get("run_id") or result_file.parent.name,
                                 result.get("best_val_answer_loss", result.get("best_val_loss")),
                                 folder,
                                 task_scores(result.get("scores"))))
    if not points:
        raise SlmbenchError(f"--sweep {sweep_dir}: no finished points ({RESULT} files)")
    return points


def print_sweep_judgement(rows: list[tuple[SweepPoint, dict[str, Any] | None]]) -> None:
    """Point, validation loss, the task's own metric and each judge's mean score."""
    from rich.console import Console
    from rich.table import Table

    judges = sorted({name for _, m in rows if m for name in m["summary"]["per_judge"]})
    table = Table(title="sweep: validation loss against judge score")
    for col in ("point", "val loss", "task metric", *judges):
        table.add_column(col)
    for point, manifest in rows:
        metric = next(iter(point.task_scores.values()), {}).get("value")
        per_judge = manifest["summary"]["per_judge"] if manifest else {}
        cells = [per_judge.get(j, {}).get("judge_score") for j in judges]
        table.add_row(point.name, _fmt(point.val_loss), _fmt(metric),
                      *(_fmt(c) for c in cells))
    Console().print(table)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)
