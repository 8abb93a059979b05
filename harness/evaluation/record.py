"""One finished ``slmbench lm-eval`` run written into its run-store folder.

The folder is named by the run's identity (``harness.evaluation.identity``), taken before it
ran; this module writes what ``simple_evaluate`` returned into it: lm-eval's results, one
JSONL row per question (``harness.evaluation.sample_rows``) with its baselines, and the
manifest that seals it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.evaluation.identity import id_of, run_folder
from harness.evaluation.sample_rows import (
    circular_scores,
    headline_key,
    sample_rows,
    task_variant,
)
from harness.evaluation.spec import EvalSpec
from harness.hashing import sha256_json
from harness.runs.atomic import write_json_atomic
from harness.runs.store import RUN_FILE, write_run, write_samples
from harness.scoring import baselines


def record_eval_run(spec: EvalSpec, key: dict[str, Any], results: dict[str, Any],
                    samples: dict[str, list[dict[str, Any]]], started: float,
                    reports: dict[str, Any]) -> Path:
    """Record the run just finished, from what ``simple_evaluate`` returned, in its folder.

    ``key`` is the run's ``identity``, taken before it ran: the folder it was looked up under.
    ``results`` and ``samples`` are JSON-safe (as lm-eval wrote them to its own files);
    ``reports`` are the data reports of the loads the run made.
    """
    run_id = id_of(key)
    folder = run_folder(run_id, spec.store)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RUN_FILE).unlink(missing_ok=True)  # the folder is "not done" until rewritten
    files, tasks = ["results.json"], {}
    for task, task_result in sorted(results.get("results", {}).items()):
        headline = headline_key(task_result)
        config = results.get("configs", {}).get(task)
        if headline is None or config is None:
            continue  # group rows carry no per-question samples
        metric, filt = headline
        info: dict[str, Any] = {
            "metric": f"{metric},{filt}", "filter": filt,
            "value": task_result.get(f"{metric},{filt}"),
            "stderr": task_result.get(f"{metric}_stderr,{filt}"),
            "version": results.get("versions", {}).get(task),
            "benchmark": (config.get("dataset_kwargs") or {}).get("benchmark"),
            "split": config.get("test_split"),
            "n": (results.get("n-samples", {}).get(task) or {}).get("effective"),
        }
        report = reports.get(info["benchmark"])
        info["data_sha256"] = report.sha256 if report else None
        if task in samples:
            rows = sample_rows(samples[task], metric, filt,
                               [m.get("metric") for m in config.get("metric_list") or []
                                if isinstance(m, dict) and isinstance(m.get("metric"), str)])
            name = f"samples/{task}.jsonl"
            write_samples(folder / name, rows)
            files.append(name)
            info["samples"] = name
            info["question_set_sha256"] = sha256_json(sorted(r["id"] for r in rows))
            variant = task_variant(task)
            if variant:
                info["variant"] = variant
            if variant == "circular" and all("circular_id" in r for r in rows):
                circ = circular_scores(rows)
                info.update(value=circ["strict"], stderr=circ["strict_stderr"], n=circ["n"],
                            circular_mean={"value": circ["mean"], "stderr": circ["mean_stderr"]},
                            prompts=circ["prompts"])
            found = baselines.compute(rows)
            if found is not None:
                info["baselines"] = found.as_dict()
        tasks[task] = info
    results = {**results, "slmbench_baselines": {
        task: info["baselines"] for task, info in tasks.items() if "baselines" in info}}
    write_json_atomic(folder / "results.json", results)
    write_run(folder, "eval", run_id, key, files, started=started,
              extra={"label": spec.label or _default_label(spec), "tasks": tasks,
                     "model": _model_info(spec),
                     "data": {name: r.as_dict() for name, r in reports.items()}})
    return folder


def _default_label(spec: EvalSpec) -> str:
    model_args = spec.model_args or {}
    base = Path(str(model_args.get("pretrained", spec.model))).name
    for key in ("adapters", "peft"):
        if model_args.get(key):
            return f"{base}+{Path(str(model_args[key])).stem}"
    return base


def _model_info(spec: EvalSpec) -> dict[str, Any]:
    """The model and, for a zoo manifest, each adapter with its weights' sha256."""
    model_args = spec.model_args or {}
    info: dict[str, Any] = {"model": spec.model, "pretrained": str(model_args.get("pretrained")),
                            "adapters": []}
    if model_args.get("adapters"):
        from harness.artefacts.zoo_manifest import load_manifest

        manifest = load_manifest(model_args["adapters"])
        info["adapters"] = [{"name": e.name, "task": e.task, "sha256": e.sha256,
                             "rank": e.rank} for e in manifest.adapters]
    elif model_args.get("peft"):
        from harness.artefacts.zoo_manifest import WEIGHTS_FILE
        from harness.hashing import sha256_file

        weights = Path(str(model_args["peft"])) / WEIGHTS_FILE
        info["adapters"] = [{"name": Path(str(model_args["peft"])).name,
                             "sha256": sha256_file(weights) if weights.is_file() else None}]
    return info


def data_report_payload(reports: dict[str, Any]) -> dict[str, Any] | None:
    """What a run's data loads skipped and kept, per benchmark (None if it loaded none)."""
    return {name: r.as_dict() for name, r in reports.items()} or None
