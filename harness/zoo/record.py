"""Attach an evaluation from the run store to the zoo entries it scored.

The study evaluates the whole zoo in one ``slmbench lm-eval --model hf-peft`` run; this writes
each adapter's share of that run (its own tasks, routed as the run routed them) into its
manifest entry's ``test_metrics``, and names the run in ``eval_runs``, so a number in a
manifest can always be traced to the per-question records behind it.
"""

from __future__ import annotations

from pathlib import Path

from harness.artefacts.zoo_manifest import (
    AdapterEntry,
    load_manifest,
    manifest_lock,
    write_manifest,
)
from harness.errors import SlmbenchError
from harness.runs.records import task_scores
from harness.runs.store import load_run


def _evaluated_manifest(run, manifest_path: Path) -> None:
    model_args = run.manifest.get("config", {}).get("model_args") or {}
    named = model_args.get("adapters") if isinstance(model_args, dict) else None
    if not named or Path(named).resolve() != manifest_path.resolve():
        raise SlmbenchError(f"run {run.run_id} ({run.path}) evaluated adapters={named!r}, "
                            f"not {manifest_path}")


def record_eval_runs(manifest_path: str | Path, run_folders: list[str | Path]
                     ) -> list[AdapterEntry]:
    """Copy each run's per-task scores into the entries that served those tasks."""
    manifest_path = Path(manifest_path)
    with manifest_lock(manifest_path):
        return _record(manifest_path, run_folders)


def _record(manifest_path: Path, run_folders: list) -> list[AdapterEntry]:
    manifest = load_manifest(manifest_path)
    touched: dict[str, AdapterEntry] = {}
    runs = [load_run(folder) for folder in run_folders]
    # Oldest first, so a later score of the same task replaces an earlier one.
    for run in sorted(runs, key=lambda r: (str(r.manifest.get("finished") or ""), r.run_id)):
        folder = run.path
        if run.kind != "eval":
            raise SlmbenchError(f"{folder}: a {run.kind} run, not an eval run")
        if run.problems:
            raise SlmbenchError(f"{folder}: {run.problems[0]}")
        _evaluated_manifest(run, manifest_path)
        scored = {a.get("name"): a.get("sha256")
                  for a in (run.manifest.get("model") or {}).get("adapters") or []}
        for task, info in sorted(run.tasks().items()):
            entry = manifest.route(task)
            if entry is None or not isinstance(info, dict):
                continue
            if scored and scored.get(entry.name) != entry.sha256:
                continue  # the run scored an earlier version of this adapter
            entry.test_metrics = task_scores(entry.test_metrics)
            entry.test_metrics[task] = {"metric": info.get("metric"), "value": info.get("value"),
                                        "stderr": info.get("stderr"), "n": info.get("n"),
                                        "split": info.get("split")}
            if run.run_id not in entry.eval_runs:
                entry.eval_runs.append(run.run_id)
            touched[entry.name] = entry
    if not touched:
        raise SlmbenchError(f"no task of {', '.join(map(str, run_folders))} is served by an "
                            f"adapter of {manifest_path}")
    write_manifest(manifest_path, manifest.adapters)
    return list(touched.values())


def describe(entry: AdapterEntry) -> str:
    scores = ", ".join(f"{task} {m['value']:.3f}" for task, m in sorted(entry.test_metrics.items())
                       if isinstance(m, dict) and isinstance(m.get("value"), int | float))
    return f"{entry.name}: {scores}"
