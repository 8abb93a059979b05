"""What became of each requested bench format: measured, skipped, or crashed.

A skip is a format this machine cannot run (a missing package, no GPU, no task to calibrate
on); a crash is a run that started and died (its exit code or signal kept). Both leave the
format without a result, which ``slmbench bench`` refuses unless ``--allow-skip``: a GPU run
that quietly skipped its GPU formats would otherwise report success.
"""

from __future__ import annotations

import signal
import subprocess
from typing import Any

from rich.table import Table

from harness.child import failure_reason


def crash_record(proc: subprocess.CompletedProcess, stage: str) -> dict[str, Any]:
    """The result entry of a format whose ``stage`` process died: its reason, code, signal."""
    code = proc.returncode
    name = None
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
    return {"crashed": f"{stage} failed: {failure_reason(proc)}", "exit_code": code,
            "signal": name}


def no_result(result: Any) -> tuple[str, str] | None:
    """``(outcome, reason)`` of a format that produced no measurement, else None."""
    if not isinstance(result, dict):
        return "missing", "no result recorded"
    for outcome in ("crashed", "skipped"):
        if outcome in result:
            return outcome, str(result[outcome])
    return None


def unmeasured(results: dict[str, Any], formats: list[str]) -> list[str]:
    """The requested formats, in order, that have no measurement."""
    return [name for name in formats if no_result(results.get(name))]


def outcome_table(results: dict[str, Any], formats: list[str]) -> Table:
    """One row per requested format: what happened to it and why."""
    table = Table(title="slmbench bench: formats requested")
    for col in ("format", "outcome", "exit", "reason"):
        table.add_column(col, no_wrap=col == "format")
    for name in formats:
        result = results.get(name)
        found = no_result(result)
        if found is None:
            table.add_row(name, "[green]measured[/green]", "0", "")
            continue
        outcome, reason = found
        code = "-"
        if isinstance(result, dict) and result.get("exit_code") is not None:
            code = result.get("signal") or str(result["exit_code"])
        colour = "red" if outcome == "crashed" else "yellow"
        table.add_row(name, f"[{colour}]{outcome}[/{colour}]", code, reason)
    return table
