"""The run store read into the few shapes the leaderboard sections need.

Reading is kept apart from rendering so that every section sees the same verified records:
a file that fails its hash check is never read, and what cannot be used is reported once,
as one problem line, instead of silently shrinking a table.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.runs.records import eval_run_of
from harness.runs.store import Run, find_runs

# Metric kinds that get a fixed column order; any other (loglikelihood acc, ...) follows.
KIND_ORDER = {"Pass@1": 0, "Maj@4": 1}


@dataclass(frozen=True)
class EvalCell:
    label: str
    run_id: str
    finished: str
    task: str
    benchmark: str
    split: str | None
    kind: str
    value: Any
    stderr: Any
    n: Any
    version: float = 0.0  # the task's metadata version; a newer definition supersedes older

    @property
    def key(self) -> tuple[str, str, str | None, str]:
        return (self.label, self.benchmark, self.split, self.kind)

    @property
    def recency(self) -> tuple[float, int, str, str, str]:
        """The newest task version wins, then more questions, then a later ``finished``.

        A number measured under a superseded task definition (say, a stop sequence that
        emptied answers) is never shown over the current one, however many questions it had;
        within a version a quick ``--limit`` check never hides a fuller evaluation. Run id and
        task break ties, so the choice does not depend on the order folders were listed in.
        """
        n = self.n if isinstance(self.n, int) else 0
        return (self.version, n, self.finished, self.run_id, self.task)


@dataclass
class SweepRun:
    run_id: str
    label: str
    config: dict[str, Any]
    rows: list[dict[str, Any]]


@dataclass
class BenchRun:
    run_id: str
    label: str
    finished: str
    report: dict[str, Any]


@dataclass
class Records:
    evals: list[EvalCell] = field(default_factory=list)
    sweeps: list[SweepRun] = field(default_factory=list)
    benches: list[BenchRun] = field(default_factory=list)
    # Eval runs by id, for sections that pair two runs question by question.
    eval_runs: dict[str, Run] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def metric_kind(info: dict[str, Any]) -> str:
    filt = info.get("filter") or "none"
    metric = str(info.get("metric") or "").split(",")[0] or "value"
    named = {"pass@1": "Pass@1", "maj@4": "Maj@4"}.get(filt)
    kind = named or (metric if filt == "none" else f"{metric} ({filt})")
    variant = info.get("variant")  # circular and cloze scores are columns of their own
    return f"{variant.capitalize()} {kind}" if variant else kind


def kind_sort_key(kind: str) -> tuple[int, str]:
    return (KIND_ORDER.get(kind, len(KIND_ORDER)), kind)


def latest(cells: list[EvalCell]) -> dict[tuple, EvalCell]:
    """One cell per (label, benchmark, split, metric kind): most questions, then latest."""
    chosen: dict[tuple, EvalCell] = {}
    for cell in cells:
        if cell.key not in chosen or cell.recency > chosen[cell.key].recency:
            chosen[cell.key] = cell
    return chosen


def _eval_cells(run: Run) -> list[EvalCell]:
    cells = []
    for task, info in sorted(run.tasks().items()):
        if not isinstance(info, dict):
            continue
        if info.get("samples") and not run.readable(info["samples"]):
            continue  # its per-question record failed the hash check: the number is untraceable
        cells.append(EvalCell(
            label=run.label, run_id=run.run_id, finished=str(run.manifest.get("finished") or ""),
            task=task, benchmark=str(info.get("benchmark") or task), split=info.get("split"),
            kind=metric_kind(info), value=info.get("value"), stderr=info.get("stderr"),
            n=info.get("n"), version=_version(info.get("version"))))
    return cells


def _version(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _payload(run: Run, name: str, reader: str, problems: list[str]) -> Any:
    """A listed payload file, or None with a problem line when it is absent or malformed."""
    if name not in run.manifest.get("files", {}):
        problems.append(f"{run.path / name}: {run.kind} run {run.run_id} lists no {name}")
        return None
    if not run.readable(name):
        return None  # the store already reported the hash mismatch
    try:
        return getattr(run, reader)(name)
    except (ValueError, OSError) as err:  # JSONDecodeError and jsonlines errors are ValueErrors
        problems.append(f"{run.path / name}: unreadable ({type(err).__name__})")
        return None


def collect(root: str | Path) -> Records:
    root = Path(root)
    runs, found = find_runs(root)
    records = Records(counts=dict(sorted(Counter(run.kind for run in runs).items())))
    problems = list(found)
    for run in runs:
        if run.kind == "eval":
            records.evals += _eval_cells(run)
            records.eval_runs[run.run_id] = run
        elif run.kind == "sweep":
            rows = _payload(run, "results.jsonl", "jsonl", problems)
            if rows is not None:
                records.sweeps.append(SweepRun(run.run_id, run.label, run.manifest["config"],
                                               [r for r in rows if isinstance(r, dict)]))
        elif run.kind == "bench":
            report = _payload(run, "bench.json", "json", problems)
            if isinstance(report, dict) and isinstance(report.get("results"), dict):
                records.benches.append(BenchRun(run.run_id, run.label,
                                                str(run.manifest.get("finished") or ""), report))
            elif report is not None:
                problems.append(f"{run.path / 'bench.json'}: no results table")
    _attach_judge_scores(records.sweeps, [r for r in runs if r.kind == "judge"])
    records.sweeps.sort(key=lambda s: (s.label, s.run_id))
    records.benches.sort(key=lambda b: (b.label, b.run_id))
    records.problems = _relative(problems, root)
    return records


def _attach_judge_scores(sweeps: list[SweepRun], judges: list[Run]) -> None:
    """Give each sweep point the score of the latest rubric judge run over its evaluation.

    A sweep row names the eval run of its point (``eval_run_id``); a judge run names the
    eval run it judged (``target_run_id``). With several judges the mean of their means is
    used, with the smallest ``modal_share`` among them (see ``harness.judge.summary``). A row
    that already carries a ``judge_score`` keeps it.
    """
    latest_by_target: dict[str, tuple[tuple[str, str], float, float | None]] = {}
    for run in judges:
        config = run.manifest.get("config") or {}
        per_judge = list(((run.manifest.get("summary") or {}).get("per_judge") or {}).values())
        scores = [j.get("judge_score") for j in per_judge
                  if isinstance(j.get("judge_score"), int | float)]
        shares = [j.get("modal_share") for j in per_judge
                  if isinstance(j.get("modal_share"), int | float)]
        target = config.get("target_run_id")
        if config.get("mode") != "rubric" or not target or not scores:
            continue
        stamp = (str(run.manifest.get("finished") or ""), run.run_id)
        if target not in latest_by_target or stamp > latest_by_target[target][0]:
            # The most discriminating judge decides whether the mean says anything.
            latest_by_target[target] = (stamp, sum(scores) / len(scores),
                                        min(shares) if shares else None)
    for sweep in sweeps:
        for row in sweep.rows:
            target = eval_run_of(row)
            if row.get("judge_score") is None and target in latest_by_target:
                _, mean, share = latest_by_target[target]
                row["judge_score"] = round(mean, 4)
                if share is not None:
                    row["judge_modal_share"] = share


def _relative(problems: list[str], root: Path) -> list[str]:
    """Problem lines with paths relative to the runs folder.

    The index then does not depend on where the store happens to be mounted.
    """
    prefix = f"{root}/"
    seen, out = set(), []
    for line in problems:
        line = line[len(prefix):] if line.startswith(prefix) else line
        if line not in seen:
            seen.add(line)
            out.append(line)
    return out


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
