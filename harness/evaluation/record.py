"""Turn one ``slmbench lm-eval`` run into a run-store folder, and recognise repeated runs.

A run is named by the hash of everything that decides its scores: model and model arguments
(with the content hash of local weight files), tasks, limit, few-shot, chat template,
generation kwargs, seeds and the data source. Re-running the same command finds the finished
folder and reuses it; ``--force`` runs it again. lm-eval's raw output (and its response
cache, which makes an interrupted run resume) lives in ``<store>/eval/.work/<run_id>``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.hashing import files_digest, sha256_file, sha256_json
from harness.runs.atomic import write_json_atomic
from harness.runs.store import RUN_FILE, Run, load_run, store_root, write_run, write_samples
from harness.scoring import baselines

# lm-eval run arguments that change what is scored (batch size, verbosity and paths do not).
IDENTITY_ARGS = ("model", "tasks", "limit", "samples", "num_fewshot", "apply_chat_template",
                 "fewshot_as_multiturn", "system_instruction", "gen_kwargs", "seed", "device")


def _device_kind(device: Any) -> str:
    return str(device or "cpu").split(":")[0]


def _data_stamp(metadata: dict[str, Any]) -> Any:
    """The data source: a local folder's file contents, or the Hub dataset id.

    Contents, not mtimes: the same data copied again (a fresh clone's ``../shared``, a new
    session) must find its finished runs, and an edited file must not.
    """
    from harness.data.benchmarks import HUB_DATASET
    from harness.data.source import resolve_data_dir

    folder = resolve_data_dir(metadata.get("data_dir"))
    if folder is None:
        return {"hub": HUB_DATASET}
    return {"local": files_digest(folder)}


_DEFINITION_SUFFIXES = {".py", ".yaml", ".yml", ".json", ".txt", ""}  # "": YAML templates


def _is_definition(path: Path) -> bool:
    return path.suffix in _DEFINITION_SUFFIXES and "__pycache__" not in path.parts


def _definition_files(args: Any) -> list[tuple[str, Path]]:
    import harness
    from harness.paths import tasks_dir

    package = Path(harness.__file__).resolve().parent
    roots = [("tasks", tasks_dir()), ("data", package / "data"),
             ("scoring", package / "scoring"), ("prompts", package / "prompts.py")]
    extra = getattr(args, "include_path", None) or []
    for i, path in enumerate(extra.split(":") if isinstance(extra, str) else extra):
        if path and Path(path).resolve() != tasks_dir().resolve():
            roots.append((f"include_{i}", Path(path)))
    files = []
    for name, root in roots:
        if root.is_file():
            files.append((name, root))
        elif root.is_dir():
            files += [(f"{name}/{p.relative_to(root)}", p) for p in sorted(root.rglob("*"))
                      if p.is_file() and _is_definition(p)]
    return files


def task_definitions(args: Any) -> str:
    """A hash of everything that builds and scores a task beyond its name.

    The task YAMLs (and the templates they include), slmbench's data loading and splitting,
    synthetic generators, prompts and scoring. Any edit gives new run ids, so a run is never
    reused across a change to how its questions are asked or scored.
    """
    return sha256_json([(name, sha256_file(path)) for name, path in _definition_files(args)])


def identity(args: Any) -> dict[str, Any]:
    """What makes two runs the same run."""
    key = {name: getattr(args, name, None) for name in IDENTITY_ARGS}
    key["device"] = _device_kind(key["device"])
    tasks = key["tasks"] or []
    key["tasks"] = sorted(t for entry in tasks for t in str(entry).split(",") if t)
    key["model_args"] = {k: str(v) for k, v in sorted((args.model_args or {}).items())}
    key["weights"] = model_fingerprint(args.model, args.model_args or {})
    metadata = getattr(args, "metadata", None) or {}
    key["metadata"] = {k: v for k, v in sorted(metadata.items()) if k != "data_dir"}
    key["data"] = _data_stamp(metadata)
    key["task_definitions"] = task_definitions(args)
    return key


def id_of(key: dict[str, Any]) -> str:
    """The run id of an ``identity``.

    Callers take the identity once per run: it hashes the task definitions and stats the data
    folder, and the folder a run was looked up under must be the one it is written to.
    """
    return sha256_json(key)[:16]


def run_folder(run_id: str, root: str | Path | None = None) -> Path:
    return store_root(root) / "eval" / run_id


def work_folder(run_id: str, root: str | Path | None = None) -> Path:
    return store_root(root) / "eval" / ".work" / run_id


def finished_run(run_id: str, root: str | Path | None = None) -> Path | None:
    folder = run_folder(run_id, root)
    return folder if (folder / RUN_FILE).is_file() else None


def _headline_key(task_result: dict[str, Any]) -> tuple[str, str] | None:

    found = headline(task_result)
    if not found:
        return None
    metric, filt = found[0].split(",", 1)
    return metric, filt


def sample_rows(lines: list[dict[str, Any]], metric: str, filt: str,
                metric_names: list[str] | None = None) -> list[dict[str, Any]]:
    """lm-eval's logged samples of one task as slmbench per-sample records (headline filter).

    A task with several metrics (the free-form ones) also keeps each answer's value of every
    per-answer metric and the ``(reference, prediction)`` pair its corpus metrics (BLEU,
    chrF, TER) aggregate, so pages can pair two runs on any metric without re-scoring.
    """
    others = [m for m in metric_names or [] if m != metric]
    # A circular task's strict metric is a (question, rotations, correct) triple per
    # rotation; the row keeps that rotation's own right/wrong, the question's is derived.
    per_row = "circular_mean" if metric == "circular_strict" else metric
    others = [m for m in others if m not in ("circular_strict", "circular_mean")]
    rows = []
    for sample in lines:
        if sample.get("filter", filt) != filt or per_row not in sample:
            continue
        doc = sample.get("doc") or {}
        score = float(sample[per_row])
        extra: dict[str, Any] = {}
        if others:
            extra["metrics"] = {m: float(sample[m]) for m in [metric, *others]
                                if isinstance(sample.get(m), int | float)}
            pair = next((sample[m] for m in others if isinstance(sample.get(m), list | tuple)
                         and len(sample[m]) == 2), None)
            if pair is not None:
                extra["corpus_pair"] = [str(pair[0]), str(pair[1])]
        rows.append({
            "doc_id": sample["doc_id"],
            **answer_space(doc),
            "id": str(doc.get("id") or sample.get("doc_hash") or sample["doc_id"]),
            "prompt": _prompt_of(sample.get("arguments")),
            "question": doc.get("question"),
            "subject": doc.get("subject"),
            "target": sample.get("target"),
            "resps": sample.get("resps"),
            "parsed": sample.get("filtered_resps"),
            "score": score,
            "correct": bool(score) if score in (0.0, 1.0) else None,
            **extra,
        })
    return sorted(rows, key=lambda r: r["doc_id"])


def answer_space(doc: dict[str, Any]) -> dict[str, Any]:
    """The keys a question could be answered with, and its circular group, for baselines.

    Kept with every scored row so that chance and constant-answer baselines can be computed
    from the record alone, on exactly the questions scored (``harness.scoring.baselines``).
    """
    from harness.scoring.extract import LETTERS

    out: dict[str, Any] = {}
    if isinstance(doc.get("labels"), list):
        out["options"] = [str(label) for label in doc["labels"]]
    elif isinstance(doc.get("choices"), list) and isinstance(doc.get("answer"), int):
        out["options"] = list(LETTERS[:len(doc["choices"])])
    if doc.get("circular_id") is not None:
        out["circular_id"] = str(doc["circular_id"])
        out["rotation"] = doc.get("rotation")
        out["n_rotations"] = doc.get("n_rotations")
    return out


def task_variant(task: str) -> str | None:
    """How a task asks its questions beyond plain generation, from its name's suffix."""
    name = task.removesuffix("_seen")
    if name.endswith(("_circular", "_circular_maj4")):
        return "circular"
    if name.endswith("_cloze"):
        return "cloze"
    return None


def circular_scores(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Strict and mean circular accuracy per whole question, with per-question stderrs.

    A question's rotations are not independent samples, so the standard errors are taken
    over questions (one strict 0/1 and one mean per question), not over prompts; a question
    whose rotations ``--limit`` cut short is left out, as the strict aggregation does.
    """
    import statistics

    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["circular_id"], []).append(row)
    complete = [g for g in groups.values() if len(g) == (g[0].get("n_rotations") or len(g))]
    strict = [float(all(r["score"] == 1.0 for r in g)) for g in complete]
    mean = [statistics.fmean(r["score"] for r in g) for g in complete]

    def se(values: list[float]) -> float | None:
        return statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else None

    return {"n": len(complete), "prompts": sum(len(g) for g in complete),
            "strict": statistics.fmean(strict) if strict else None, "strict_stderr": se(strict),
            "mean": statistics.fmean(mean) if mean else None, "mean_stderr": se(mean)}


def _prompt_of(arguments: Any) -> str | None:
    """The prompt text lm-eval sent (first argument of the first request), for judges."""
    first = next(iter(arguments.values()), None) if isinstance(arguments, dict) else (
        arguments[0] if isinstance(arguments, list) and arguments else None)
    if isinstance(first, dict):
        first = first.get("arg_0")
    elif isinstance(first, list | tuple):
        first = first[0] if first else None
    return first if isinstance(first, str) else None


def record_eval_run(spec: Any, key: dict[str, Any], results: dict[str, Any],
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
        headline = _headline_key(task_result)
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


def _default_label(args: Any) -> str:
    model_args = args.model_args or {}
    base = Path(str(model_args.get("pretrained", args.model))).name
    for key in ("adapters", "peft"):
        if model_args.get(key):
            return f"{base}+{Path(str(model_args[key])).stem}"
    return base


def _model_info(args: Any) -> dict[str, Any]:
    """The model and, for a zoo manifest, each adapter with its weights' sha256."""
    model_args = args.model_args or {}
    info: dict[str, Any] = {"model": args.model, "pretrained": str(model_args.get("pretrained")),
                            "adapters": []}
    if model_args.get("adapters"):
        from harness.zoo.manifest import load_manifest

        manifest = load_manifest(model_args["adapters"])
        info["adapters"] = [{"name": e.name, "task": e.task, "sha256": e.sha256,
                             "rank": e.rank} for e in manifest.adapters]
    elif model_args.get("peft"):
        from harness.hashing import sha256_file
        from harness.zoo.manifest import WEIGHTS_FILE

        weights = Path(str(model_args["peft"])) / WEIGHTS_FILE
        info["adapters"] = [{"name": Path(str(model_args["peft"])).name,
                             "sha256": sha256_file(weights) if weights.is_file() else None}]
    return info


def print_reused(folder: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    run = load_run(folder)
    table = Table(title=f"reused run {folder} (finished {run.manifest.get('finished')}; "
                        "--force runs it again)")
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


def model_fingerprint(model: str, model_args: dict[str, Any]) -> str:
    """A short hash naming the exact weights a run evaluates, for its response cache.

    Local files count by content (names relative to the argument), so a copied checkpoint
    or a clone in another folder names the same weights, and retrained ones never match.
    """
    import hashlib

    files = []
    for name, value in sorted(model_args.items()):
        path = Path(str(value)).expanduser()
        if isinstance(value, str) and path.exists():
            files += [(name, *entry) for entry in files_digest(path)]
    payload = json.dumps([model, sorted(model_args.items(), key=str), files], default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def headline(task_result: dict[str, Any]) -> tuple[str, float, float | None] | None:
    """(metric, value, stderr) of a task's main score: exact match or acc, else its own metric.

    A free-form task (one scored by token F1) headlines token F1: its exact match of whole
    answers is near zero for any model and would rank nothing.
    """
    keys = sorted(k for k in task_result if "," in k and "_stderr," not in k
                  and not k.startswith("unparsed,"))
    preferred = ([k for k in keys if k.startswith(("token_f1,", "circular_strict,"))]
                 or [k for k in keys if k.startswith(("exact_match,", "acc,"))])
    for key in preferred or keys:  # free-form tasks: their own metric (e.g. token_f1)
        value = task_result[key]
        if not isinstance(value, int | float):
            continue
        metric, filt = key.split(",", 1)
        stderr = task_result.get(f"{metric}_stderr,{filt}")
        return key, float(value), None if stderr in (None, "N/A") else float(stderr)
    return None


def data_report_payload(reports: dict[str, Any]) -> dict[str, Any] | None:
    """What a run's data loads skipped and kept, per benchmark (None if it loaded none)."""
    return {name: r.as_dict() for name, r in reports.items()} or None


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
