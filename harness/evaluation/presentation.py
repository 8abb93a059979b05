"""What an evaluation prints: a reused run's scores, scores beside baselines, the data report.

Kept apart from recording so that the record is the same bytes whatever the terminal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.evaluation.record import data_report_payload
from harness.runs.atomic import write_json_atomic
from harness.runs.store import Run, load_run
from harness.scoring import baselines


def print_reused(folder: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    run = load_run(folder)
    table = Table(title=f"reused run {folder} (finished {run.manifest.get('finished')}; "
                        "--force scores it again, --fresh runs the model again)")
    for col in ("task", "metric", "value", "stderr", "n"):
        table.add_column(col)
    for task, info in run.tasks().items():
        stderr = info.get("stderr")
        table.add_row(task, info["metric"], f"{info['value']:.4f}",
                      f"{stderr:.4f}" if isinstance(stderr, float) else "-", str(info.get("n")))
    Console().print(table)
    print_baselines(run)


def print_baselines(run: Run) -> None:
    """Every choice and label score of a run beside what a constant answer scores."""
    from rich.console import Console
    from rich.table import Table

    rows = [baselines.table_cells(task, info["baselines"])
            for task, info in sorted(run.tasks().items())
            if isinstance(info.get("baselines"), dict)]
    if not rows:
        return
    table = Table(title="slmbench: scores beside their baselines (same questions)",
                  caption="collapse = not above the best constant answer, paired "
                          "(exact McNemar, p < 0.05)")
    for col in baselines.TABLE_COLUMNS:
        table.add_column(col, justify="left" if col in ("task", "vs constant (p)") else "right")
    for row in rows:
        table.add_row(*row)
    Console(stderr=True, width=200).print(table)


def print_data_report(reports: dict[str, Any], output_path: str | None = None) -> None:
    """The data-quality table on stderr; with ``output_path``, its JSON beside lm-eval's."""
    from rich.console import Console
    from rich.table import Table

    if not reports:
        return
    table = Table(title="slmbench data report")
    for col in ("benchmark", "kept", "duplicates", "skipped", "first skipped row"):
        table.add_column(col)
    for report in reports.values():
        table.add_row(report.benchmark, str(report.kept), str(report.duplicates),
                      str(len(report.skipped)), report.skipped[0] if report.skipped else "")
    Console(stderr=True).print(table)
    if output_path:
        out = Path(output_path)
        folder = out.parent if out.suffix == ".json" else out
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(folder / "slmbench_data_report.json", data_report_payload(reports))
