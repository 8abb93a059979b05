"""The regression gate: fail when a candidate run scores worse than a baseline beyond noise.

A task regresses only when its paired delta is both large (below ``-tolerance``) and
significant (p below ``alpha``): a tolerance alone fails CI on noise for small tasks, a
p-value alone fails it on a real but negligible drop for large ones. Scores are paired by
question id, so both runs must have answered the same questions of the same data with the
same task version; anything else is refused unless ``allow_mismatch`` is set.

A baseline is a run folder or a committed JSON exported from one (``export_run``); the
JSON carries the per-question scores, so CI needs no access to the baseline's run store.
Every comparable task is reported before an error (missing task, unreadable samples,
mismatch) is raised, so one broken task does not hide the others.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import SlmbenchError
from harness.hashing import sha256_json
from harness.runs.atomic import write_json_atomic, write_text_atomic
from harness.runs.store import RUN_FILE, Run, load_run
from harness.scoring import baselines
from harness.significance import compare_paired

EXPORT_SCHEMA = 1
EXPORT_KIND = "slmbench-baseline"
# The export's own seal, over every other field: per-task hashes guard the scores, this
# guards the rest (label, run id, config), so a file edited outside slmbench is never read
# as if it were what ``regress --export`` wrote.
EXPORT_SEAL = "export_sha256"
EXPORT_FIELDS = {"schema_version", "kind", "run_id", "label", "source", "finished", "config",
                 "model", "environment", "tasks", EXPORT_SEAL}
# Task fields copied into an export; the samples path is replaced by the scores themselves.
TASK_FIELDS = ("metric", "filter", "value", "stderr", "version", "benchmark", "split", "n",
               "data_sha256", "question_set_sha256", "baselines")


# --- the two sides ---------------------------------------------------------------------------

@dataclass
class Side:
    """One side of a comparison, from a run folder or an export.

    ``unreadable`` maps a task whose scores could not be read to the line saying why (naming
    the file), so the gate can still compare the other tasks.
    """

    label: str
    run_id: str
    source: str
    tasks: dict[str, dict[str, Any]]
    scores: dict[str, dict[str, float]]
    unreadable: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _side_from_run(run: Run) -> Side:
    if not run.tasks():
        raise SlmbenchError(f"{run.path}: run {run.run_id} ({run.kind}) has no eval tasks")
    side = Side(run.label, run.run_id, str(run.path),
                {task: dict(info) for task, info in run.tasks().items()}, {},
                problems=list(run.problems))
    for task, info in side.tasks.items():
        scores = run.per_doc(task)
        if scores is not None:
            side.scores[task] = scores
            if "baselines" not in info:  # recorded before baselines were: from its samples
                found = baselines.compute(run.samples(task) or [])
                info["baselines"] = found.as_dict() if found is not None else None
            continue
        name = info.get("samples")
        file = str(run.path / name) if name else None
        why = next((p for p in run.problems if file and p.startswith(file)), None)
        side.unreadable[task] = why or (f"{file}: samples unreadable" if file else
                                        f"{run.path}: no per-question samples recorded")
    return side


def export_run(run: Run) -> dict[str, Any]:
    """A self-contained, committable baseline: task info plus every per-question score."""
    side = _side_from_run(run)
    if side.unreadable:
        raise SlmbenchError(f"{run.path}: cannot export, "
                            + "; ".join(f"task {t}: {why}" for t, why in side.unreadable.items()))
    tasks = {}
    for task, info in sorted(side.tasks.items()):
        entry = {k: info.get(k) for k in TASK_FIELDS}
        entry["per_doc"] = dict(sorted(side.scores[task].items()))
        # ids alone (question_set_sha256) cannot tell a flipped score: this hash can.
        entry["per_doc_sha256"] = sha256_json(entry["per_doc"])
        tasks[task] = entry
    exported = {"schema_version": EXPORT_SCHEMA, "kind": EXPORT_KIND, "run_id": run.run_id,
                "label": run.label, "source": str(run.path),
                "finished": run.manifest.get("finished"), "config": run.manifest.get("config"),
                "model": run.manifest.get("model"),
                "environment": run.manifest.get("environment"), "tasks": tasks}
    exported[EXPORT_SEAL] = _export_digest(exported)
    return exported


def _export_digest(exported: dict[str, Any]) -> str:
    return sha256_json({k: v for k, v in exported.items() if k != EXPORT_SEAL})


def write_export(folders: list[str | Path], out: str | Path) -> dict[str, Any]:
    """One run exports as itself; several as ``{"runs": [...]}``, chosen later by label."""
    exported = [export_run(load_run(f)) for f in folders]
    payload = exported[0] if len(exported) == 1 else {"schema_version": EXPORT_SCHEMA,
                                                      "runs": exported}
    write_json_atomic(Path(out), payload)
    return payload


def _side_from_export(data: Any, path: Path) -> Side:
    if not isinstance(data, dict) or data.get("kind") != EXPORT_KIND:
        raise SlmbenchError(f"{path}: not an slmbench baseline export (kind {EXPORT_KIND!r})")
    if data.get("schema_version") != EXPORT_SCHEMA:
        raise SlmbenchError(f"{path}: baseline schema version {data.get('schema_version')!r}, "
                            f"this slmbench reads version {EXPORT_SCHEMA}")
    tasks = data.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        raise SlmbenchError(f"{path}: baseline {data.get('label')!r} lists no tasks")
    side = Side(str(data.get("label") or data.get("run_id")), str(data.get("run_id")),
                str(path), {t: {k: v for k, v in e.items() if k != "per_doc"}
                            for t, e in tasks.items()}, {})
    for task, entry in tasks.items():
        per_doc = entry.get("per_doc")
        if not isinstance(per_doc, dict):
            side.unreadable[task] = f"{path}: task {task} has no per_doc scores"
            continue
        expected = entry.get("question_set_sha256")
        if expected and sha256_json(sorted(per_doc)) != expected:
            side.unreadable[task] = (f"{path}: task {task} per_doc ids do not match its "
                                     "question_set_sha256 (edited?)")
            continue
        expected = entry.get("per_doc_sha256")
        if expected and sha256_json(per_doc) != expected:
            side.unreadable[task] = (f"{path}: task {task} per_doc scores do not match its "
                                     "per_doc_sha256 (edited?)")
            continue
        side.scores[task] = {str(k): float(v) for k, v in per_doc.items()}
    side.problems = list(side.unreadable.values())
    unknown = sorted(set(data) - EXPORT_FIELDS)
    if unknown:
        # Also how a damaged seal's key shows up: never read as an export from before seals.
        raise SlmbenchError(f"{path}: baseline {side.label!r} has unknown field(s) {unknown} "
                            "(edited outside slmbench? re-export it with slmbench regress "
                            "--export)")
    sealed = EXPORT_SEAL in data
    if sealed and data[EXPORT_SEAL] != _export_digest(data) and not side.unreadable:
        # A damaged task is named above and the rest still compared; damage anywhere else
        # leaves nothing in the file to trust.
        raise SlmbenchError(f"{path}: baseline {side.label!r} does not match its {EXPORT_SEAL} "
                            "(edited outside slmbench? re-export it with slmbench regress "
                            "--export)")
    return side


def _pick(runs: list[Any], label: str | None, path: Path) -> Any:
    names = ", ".join(str(r.get("label")) for r in runs if isinstance(r, dict))
    if label is None:
        if len(runs) == 1:
            return runs[0]
        raise SlmbenchError(f"{path}: holds {len(runs)} runs, pick one with --baseline-label "
                            f"({names})")
    found = [r for r in runs if isinstance(r, dict) and label in (r.get("label"), r.get("run_id"))]
    if len(found) != 1:
        what = "no run" if not found else f"{len(found)} runs"
        raise SlmbenchError(f"{path}: {what} labelled {label!r} (labels: {names}; a run_id "
                            "also selects)")
    return found[0]


def load_baseline(path: str | Path, label: str | None = None) -> Side:
    """Load either side: a run folder, one exported run, or ``{"runs": [...]}`` by label."""
    path = Path(path)
    if path.is_dir():
        side = _side_from_run(load_run(path))
        if label is not None and label not in (side.label, side.run_id):
            raise SlmbenchError(f"{path}: run is labelled {side.label!r}, not {label!r}")
        return side
    if not path.is_file():
        raise SlmbenchError(f"{path}: no such run folder or baseline JSON")
    if path.name == RUN_FILE:
        return load_baseline(path.parent, label)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SlmbenchError(f"{path}: unreadable baseline JSON ({err})") from None
    if isinstance(data, dict) and isinstance(data.get("runs"), list):
        if not data["runs"]:
            raise SlmbenchError(f"{path}: holds no runs")
        data = _pick(data["runs"], label, path)
    elif label is not None:
        _pick([data], label, path)
    return _side_from_export(data, path)


# --- the comparison --------------------------------------------------------------------------

@dataclass
class TaskRow:
    task: str
    n: int
    test: str
    baseline: float
    candidate: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    verdict: str
    lost: int | None = None  # binary scores: right in the baseline only
    gained: int | None = None  # right in the candidate only
    chance: float | None = None  # the candidate's questions: a uniform guess
    constant: str = ""  # the best constant answer there, "0.740 (A)"


@dataclass
class GateReport:
    baseline: Side
    candidate: Side
    tolerance: float
    alpha: float
    rows: list[TaskRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def regressed(self) -> list[str]:
        return [r.task for r in self.rows if r.verdict == "regressed"]

    @property
    def passed(self) -> bool:
        return not self.errors and not self.regressed

    @property
    def status(self) -> str:
        return "ERROR" if self.errors else ("FAILED" if self.regressed else "PASSED")

    def check(self) -> bool:
        """Raise the collected errors as one line; else whether the gate passed."""
        if self.errors:
            raise SlmbenchError("; ".join(self.errors))
        return self.passed


def verdict(delta: float, p_value: float, tolerance: float, alpha: float) -> str:
    if p_value < alpha and delta < -tolerance:
        return "regressed"
    if p_value < alpha and delta > tolerance:
        return "improved"
    return "ok"


def _differences(task: str, b: dict[str, Any], c: dict[str, Any], bs: dict[str, float],
                 cs: dict[str, float]) -> list[str]:
    diffs = []
    for key in ("version", "data_sha256", "metric"):
        if b.get(key) != c.get(key):
            diffs.append(f"{key} differs (baseline {_short(b.get(key))}, "
                         f"candidate {_short(c.get(key))})")
    only_b, only_c = len(bs.keys() - cs.keys()), len(cs.keys() - bs.keys())
    if only_b or only_c:
        diffs.append(f"question sets differ ({only_b} only in baseline, {only_c} only in "
                     "candidate)")
    return diffs


def _short(value: Any) -> str:
    text = repr(value)
    return text[:14] + "...'" if isinstance(value, str) and len(value) > 16 else text


def compare_task(task: str, base: list[float], cand: list[float], tolerance: float,
                 alpha: float, n_resamples: int = 10000, seed: int = 0) -> TaskRow:
    """McNemar for 0/1 scores (exact, no resampling noise), paired bootstrap otherwise."""
    n = len(base)
    stats = compare_paired(base, cand, n_resamples=n_resamples, seed=seed)
    return TaskRow(task, n, stats["test"], sum(base) / n, sum(cand) / n, stats["delta"],
                   stats["ci_low"], stats["ci_high"], stats["p_value"],
                   verdict(stats["delta"], stats["p_value"], tolerance, alpha), stats["lost"],
                   stats["gained"])


def compare(baseline: Side, candidate: Side, tolerance: float = 0.02, alpha: float = 0.05,
            allow_mismatch: bool = False, n_resamples: int = 10000,
            seed: int = 0) -> GateReport:
    """Every baseline task the candidate can be paired on; the rest become ``errors``."""
    if not 0 < alpha <= 1:
        raise SlmbenchError(f"--alpha must be in (0, 1], got {alpha}")
    if tolerance < 0:
        raise SlmbenchError(f"--tolerance must be >= 0, got {tolerance}")
    report = GateReport(baseline, candidate, tolerance, alpha)
    missing = sorted(t for t in baseline.tasks if t not in candidate.tasks)
    for task in sorted(baseline.tasks):
        if task in missing:
            continue
        unreadable = [f"{who} {side.unreadable[task]}" for who, side in
                      (("baseline", baseline), ("candidate", candidate))
                      if task in side.unreadable]
        if unreadable:
            report.errors.append(f"task {task}: " + "; ".join(unreadable))
            continue
        bs, cs = baseline.scores[task], candidate.scores[task]
        diffs = _differences(task, baseline.tasks[task], candidate.tasks[task], bs, cs)
        ids = sorted(bs.keys() & cs.keys())
        if diffs and not allow_mismatch:
            report.errors.append(f"task {task}: {', '.join(diffs)}; refused (--allow-mismatch "
                                 f"compares the {len(ids)} shared questions)")
            continue
        if not ids:
            report.errors.append(f"task {task}: no question ids in common")
            continue
        if diffs:
            report.warnings.append(f"task {task}: {', '.join(diffs)}; compared on the "
                                   f"{len(ids)} shared questions")
        row = compare_task(task, [bs[i] for i in ids], [cs[i] for i in ids], tolerance, alpha,
                           n_resamples, seed)
        _beside_baselines(report, row, candidate.tasks[task].get("baselines"))
        report.rows.append(row)
    if missing:
        report.errors.append(f"candidate {candidate.label} lacks task(s) {', '.join(missing)} "
                             "of the baseline")
    extra = sorted(t for t in candidate.tasks if t not in baseline.tasks)
    if extra:
        report.warnings.append(f"not gated (absent from the baseline): {', '.join(extra)}")
    return report


def _beside_baselines(report: GateReport, row: TaskRow, found: Any) -> None:
    """Put the candidate's constant-answer baselines beside its row, and warn on a collapse.

    A candidate that does not beat always giving one answer is no evidence of a working
    adapter, even when it passes the gate against a weaker baseline run.
    """
    if not isinstance(found, dict):
        return
    row.chance = found.get("chance")
    if isinstance(found.get("best_constant_score"), int | float):
        row.constant = f"{found['best_constant_score']:.4f} ({found.get('best_constant')})"
    if found.get("collapse"):
        report.warnings.append(
            f"task {row.task}: candidate does not beat always answering "
            f"{found.get('best_constant')!r} ({row.constant.split()[0]}) on the same questions "
            f"(paired p={found.get('vs_constant_p', 1):.3g}); its score measures the answer "
            "prior, not knowledge")


# --- rendering -------------------------------------------------------------------------------

def _p(p: float) -> str:
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


def _cells(row: TaskRow) -> list[str]:
    return [row.task, str(row.n), f"{row.baseline:.4f}", f"{row.candidate:.4f}",
            f"{row.chance:.4f}" if isinstance(row.chance, float) else "-", row.constant or "-",
            f"{row.delta:+.4f}", f"[{row.ci_low:+.4f}, {row.ci_high:+.4f}]", _p(row.p_value),
            row.test, f"-{row.lost}/+{row.gained}" if row.lost is not None else "",
            row.verdict]


COLUMNS = ("task", "n", "baseline", "candidate", "chance", "best constant", "delta", "95% CI",
           "p", "test", "lost/gained", "verdict")
TEXT_COLUMNS = ("task", "test", "verdict")


def _header(report: GateReport, quote: str = "") -> str:
    b, c = report.baseline, report.candidate
    return (f"baseline {quote}{b.label}{quote} ({b.run_id}) vs candidate {quote}{c.label}"
            f"{quote} ({c.run_id}); regressed = delta < -{report.tolerance} and "
            f"p < {report.alpha}")


def print_report(report: GateReport, console: Any = None) -> None:
    from rich.markup import escape
    from rich.table import Table

    from harness.console import wide_console

    if console is None:
        console = wide_console()
    colour = {"PASSED": "green", "FAILED": "red", "ERROR": "red"}[report.status]
    table = Table(title=f"[{colour}]regression gate {report.status}[/]", caption=_header(report))
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in TEXT_COLUMNS else "right", no_wrap=True)
    style = {"regressed": "bold red", "improved": "green", "ok": ""}
    for row in report.rows:
        table.add_row(*_cells(row), style=style[row.verdict] or None)
    console.print(table)
    for line in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False)
    for line in sorted({*report.baseline.problems, *report.candidate.problems}):
        console.print(f"[yellow]problem:[/] {escape(line)}", highlight=False)


def render_markdown(report: GateReport) -> str:
    """The summary for a PR comment: verdict first, then the table, then what went wrong."""
    icon = {"PASSED": ":white_check_mark:", "FAILED": ":x:", "ERROR": ":warning:"}
    lines = [f"## {icon[report.status]} slmbench regression gate: {report.status}", "",
             _header(report, quote="`"), ""]
    if report.rows:
        lines += ["| " + " | ".join(COLUMNS) + " |",
                  "|" + "|".join("---" if c in TEXT_COLUMNS else "---:"
                                 for c in COLUMNS) + "|"]
        for row in report.rows:
            cells = _cells(row)
            if row.verdict != "ok":
                cells[-1] = f"**{row.verdict}**"
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    for title, items in (("Errors", report.errors), ("Warnings", report.warnings),
                         ("Unreadable files", sorted({*report.baseline.problems,
                                                      *report.candidate.problems}))):
        if items:
            lines += [f"**{title}**", ""] + [f"- {item}" for item in items] + [""]
    return "\n".join(lines)


def only_tasks(side: Side, tasks: list[str] | None) -> Side:
    """``side`` cut down to ``tasks``: gate one adapter's category against a wider baseline."""
    if not tasks:
        return side
    unknown = [t for t in tasks if t not in side.tasks and t not in side.unreadable]
    if unknown:
        raise SlmbenchError(f"--task {', '.join(unknown)}: not in the baseline {side.label} "
                            f"(it has {', '.join(sorted(side.tasks)) or 'no tasks'})")
    keep = set(tasks)
    return Side(side.label, side.run_id, side.source,
                {t: v for t, v in side.tasks.items() if t in keep},
                {t: v for t, v in side.scores.items() if t in keep},
                {t: v for t, v in side.unreadable.items() if t in keep}, side.problems)


def run_gate(baseline: str | Path, candidate: str | Path, baseline_label: str | None = None,
             tolerance: float = 0.02, alpha: float = 0.05, allow_mismatch: bool = False,
             summary: str | Path | None = None, console: Any = None,
             tasks: list[str] | None = None) -> int:
    """Print and write everything comparable, then raise collected errors; 1 if regressed."""
    report = compare(only_tasks(load_baseline(baseline, baseline_label), tasks),
                     load_baseline(candidate), tolerance, alpha, allow_mismatch)
    print_report(report, console)
    if summary:
        write_text_atomic(Path(summary), render_markdown(report))
    return 0 if report.check() else 1
