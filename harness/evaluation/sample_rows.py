"""lm-eval's logged samples as the run store's per-question rows, and a task's headline score.

Each row keeps what later readers need without re-running anything: the extracted answer,
the right/wrong score, the options a question could be answered with (for baselines), its
circular group, and the prompt sent (for judges).
"""

from __future__ import annotations

from typing import Any


def headline_key(task_result: dict[str, Any]) -> tuple[str, str] | None:

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
