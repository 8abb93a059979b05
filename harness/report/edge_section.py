"""The edge page: one GGUF backbone with every zoo adapter routed on llama.cpp, against hf-peft.

The study's deployment argument is that an edge box ships one quantized backbone and a small
LoRA file per task, not one merged model per task. This page measures it from the records:
accuracy per category of ``llama-cpp-peft`` runs against the ``hf-peft`` run of the same zoo
(same adapters by sha256) on the same questions, paired; how fast each engine answers; and,
from ``slmbench bench`` runs with ``gguf-<quant>+lora`` rows, the disk and memory of backbone
plus N adapters against N merged GGUFs, the decode cost of an active adapter and the switch
time (``edge_bench``). The issue's targets are checked against these numbers, met or not, on
the page: each configuration's newest verdict first, the ones it supersedes at the end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.evaluation.sample_rows import task_variant
from harness.flags import as_bool
from harness.report.baseline_view import cell_baselines, constant_text, paired
from harness.report.edge_bench import (
    BenchCheck,
    bench_config,
    bench_name,
    bench_part,
    latest_benches,
    with_interval,
)
from harness.report.leaderboard_data import EvalCell, Records
from harness.report.mdtable import DASH, code, esc, is_num, num, pm, table
from harness.report.sections import Section
from harness.runs.store import Run
from harness.scoring.baselines import CircularMean, circular_mean
from harness.significance import compare_paired, pair_by_id

ROUTED_GGUF, REFERENCE = "llama-cpp-peft", "hf-peft"
SPEED_TARGET, SPEED_MOONSHOT, DECODE_TARGET, SWITCH_TARGET_MS = 2.0, 3.0, 0.95, 5.0
# edge.sh labels a patched library's runs by its version (the build's hash of the patches)
PATCH_VERSION = re.compile(r"-patched-[0-9a-f]+$")


@dataclass(frozen=True)
class TargetRow:
    """One target checked on one measurement, and the configuration it measures.

    ``config`` is what a later measurement answers again (engine and quantization, Pass@1 or
    circular, stock or patched llama.cpp of whichever version; or the bench's backbone, zoo
    and load), ``order`` when it was measured.
    """

    target: str
    config: tuple[Any, ...]
    order: tuple[Any, ...]
    measured_on: str
    value: str
    verdict: str


def _engine(run: Run) -> str | None:
    return (run.manifest.get("config") or {}).get("model")


def _engine_text(run: Run) -> str:
    """The engine, and llama.cpp's fused attention when the run turned it on.

    Flash attention changes prefill speed by a quarter or more on a CPU, so a speed-up means
    little without saying whether it was on.
    """
    args = (run.manifest.get("config") or {}).get("model_args") or {}
    flash = as_bool(args.get("flash_attn"), f"run {run.run_id}: flash_attn")
    return code(_engine(run)) + (" flash_attn" if flash else "")


def _zoo_key(run: Run) -> tuple[str, ...]:
    adapters = (run.manifest.get("model") or {}).get("adapters") or []
    return tuple(sorted(str(a.get("sha256")) for a in adapters if isinstance(a, dict)))


def _engine_pairs(records: Records) -> list[tuple[Run, list[Run]]]:
    """Each hf-peft run with the llama-cpp-peft runs of the same adapters over the same tasks.

    Adapters by sha256; tasks by name, since a cloze run is no measure of a Pass@1 run's
    answers or speed. Where several hf-peft runs fit, a llama.cpp run is paired with the one
    measured nearest in time, as speed-ups across sessions of a shared CPU compare the machine's
    load as much as the engines.
    """
    runs = sorted(records.eval_runs.values(), key=lambda r: (r.label, r.run_id))
    refs = [r for r in runs if _engine(r) == REFERENCE and _zoo_key(r)]
    paired: dict[str, list[Run]] = {}
    for run in (r for r in runs if _engine(r) == ROUTED_GGUF):
        fits = [ref for ref in refs
                if _zoo_key(run) == _zoo_key(ref) and set(run.tasks()) == set(ref.tasks())]
        if fits:  # the reference measured nearest in time: the same session's, on one machine
            ref = min(fits, key=lambda f: (abs((_when(f, "finished") or 0.0)
                                               - (_when(run, "started") or 0.0)), f.run_id))
            paired.setdefault(ref.run_id, []).append(run)
    return [(ref, paired[ref.run_id]) for ref in refs if ref.run_id in paired]


def _circular(run: Run) -> bool:
    return any(task_variant(task) == "circular" for task in run.tasks())


def _questions(run: Run) -> int:
    """The questions a run scored, from its record (no results file read)."""
    return sum(i.get("n") or 0 for i in run.tasks().values() if isinstance(i, dict))


def _measured_on(run: Run) -> str:
    """A target row's run: its label, its id and what it asked.

    A label's Pass@1 and circular runs share the label, and a newer run on other questions
    supersedes an older one, so the row says how many questions it had.
    """
    return f"{esc(run.label)} ({code(run.run_id)}), {_questions(run)} questions" + (
        ", circular" if _circular(run) else "")


def _when(run: Run, field: str) -> float | None:
    """A run's start or finish as seconds (None when the record lacks it)."""
    stamp = run.manifest.get(field)
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _cells(records: Records, run: Run) -> dict[str, EvalCell]:
    return {c.task: c for c in records.evals if c.run_id == run.run_id}


def _answers(run: Run, task: str) -> dict[str, Any]:
    """Question id -> the extracted answer (what the score was taken from)."""
    rows = run.samples(task) or []
    return {r["id"]: (r.get("parsed") or [None])[0] for r in rows if "id" in r}


def _same_share(ref: Run, other: Run, task: str) -> float | None:
    a, b = _answers(ref, task), _answers(other, task)
    ids = a.keys() & b.keys()
    return sum(a[i] == b[i] for i in ids) / len(ids) if ids else None


def _circular_mean(run: Run, task: str) -> CircularMean | None:
    """None for a task the run did not record as circular, without reading its samples."""
    if (run.tasks().get(task) or {}).get("variant") != "circular":
        return None
    rows = run.samples(task)
    return circular_mean(rows) if rows else None


def _mean_paired(ref: CircularMean | None, other: CircularMean | None) -> dict[str, Any] | None:
    """Two runs' circular means paired per question (None unless both have them in common)."""
    if ref is None or other is None:
        return None
    scores = pair_by_id(ref.per_question, other.per_question)
    return compare_paired(*scores) if scores[0] else None


def _circular_mean_rows(ref: Run, routed: list[Run], task: str, benchmark: str,
                        shares: list[str]) -> tuple[list[str], list[str]] | None:
    """A circular task's mean over rotations: its accuracy row and its paired row.

    The strict score is 0 for a small model on any engine, so it cannot show two engines
    disagreeing; the mean can. Paired per question (the mean of its rotations, so the paired
    bootstrap, not McNemar); ``shares`` are the strict row's same-answer cells (per prompt).
    """
    means = [_circular_mean(run, task) for run in (ref, *routed)]
    if means[0] is None:
        return None
    recorded = [(run.tasks().get(task) or {}).get("circular_mean") or {} for run in (ref, *routed)]
    ref_mean = means[0]
    acc = [esc(benchmark), "Circular mean", num(ref_mean.n, "d"), num(ref_mean.chance, ".3f"),
           f"{ref_mean.best_constant_score:.3f} ({esc(str(ref_mean.best_constant))})",
           *(pm(r.get("value"), r.get("stderr")) for r in recorded)]
    pair = [esc(benchmark)]
    for found, share in zip(means[1:], shares, strict=True):
        stats = _mean_paired(ref_mean, found)
        text = DASH
        if stats is not None:
            text = f"{stats['delta']:+.3f} (p={stats['p_value']:.2g}, {stats['test']})"
        pair += [text, share]
    return acc, pair


def _accuracy_tables(records: Records, ref: Run, routed: list[Run]) -> tuple[str, list[str]]:
    ref_cells = _cells(records, ref)
    routed_cells = [_cells(records, r) for r in routed]
    tasks = sorted(t for t in ref_cells
                   if all(t in cells for cells in routed_cells) and ref_cells[t].split)
    acc_rows, pair_rows, used = [], [], [ref.run_id, *(r.run_id for r in routed)]
    for task in tasks:
        cell = ref_cells[task]
        others = [cells[task] for cells in routed_cells]
        baselines = cell_baselines(records, cell)
        acc_rows.append([esc(cell.benchmark), esc(cell.kind), num(cell.n, "d"),
                         num(baselines.get("chance") if baselines else None, ".3f"),
                         constant_text(baselines),
                         pm(cell.value, cell.stderr), *(pm(o.value, o.stderr) for o in others)])
        row, shares = [esc(cell.benchmark)], []
        for run, other in zip(routed, others, strict=True):
            found = paired(records, cell, other)
            same = _same_share(ref, run, task)
            shares.append(num(same * 100 if same is not None else None, ".0f", "%"))
            row += [found.text() if found else DASH, shares[-1]]
        pair_rows.append(row)
        mean_rows = _circular_mean_rows(ref, routed, task, cell.benchmark, shares)
        if mean_rows:
            acc_rows.append(mean_rows[0])
            pair_rows.append(mean_rows[1])
    labels = [esc(r.label) for r in routed]
    acc = table(["category", "metric", "n", "chance", "best constant", esc(ref.label), *labels],
                acc_rows, right=range(2, 6 + len(labels)))
    pair_headers = ["category"]
    for label in labels:
        pair_headers += [f"{label} Δ vs {esc(ref.label)} (p, −lost/+gained)", "same answer"]
    pairs = table(pair_headers, pair_rows, right=range(1, len(pair_headers)))
    return acc + "\nEach engine against hf-peft on the same questions (exact McNemar; a circular "\
        "mean's per-question means by the paired bootstrap), and the share of questions (of "\
        "prompts, each rotation, on circular rows) where both extracted the same answer:\n\n" \
        + pairs, used


def _timing(run: Run) -> dict[str, Any]:
    config = (run.json("results.json") or {}).get("config") or {}
    seconds = config.get("request_seconds") or {}
    counts = config.get("request_counts") or {}
    answering = sum(v for v in seconds.values() if is_num(v)) if seconds else None
    answered = sum(v for v in counts.values() if is_num(v)) if counts else None
    started, finished = _when(run, "started"), _when(run, "finished")
    wall = finished - started if started is not None and finished is not None else None
    questions = _questions(run)
    # Requests per second of answering; a run resumed from its response cache answered fewer
    # requests than it scored, so the rate is over the requests it did answer.
    done = answered if answered else questions
    rate = done / answering if is_num(answering) and answering else None
    return {"answering": answering, "answered": done, "rate": rate, "wall": wall,
            "questions": questions}


def _speed(ref_t: dict[str, Any], t: dict[str, Any], key: str) -> float | None:
    """How many times faster than the reference: a rate's ratio, or a duration's inverse."""
    a, b = ref_t.get(key), t.get(key)
    if not (is_num(a) and is_num(b) and a and b):
        return None
    return b / a if key == "rate" else a / b


def _throughput_table(ref: Run, routed: list[Run]) -> tuple[str, list[tuple[Run, float]]]:
    ref_t = _timing(ref)
    rows, speedups = [], []
    for run in [ref, *routed]:
        t = _timing(run)
        answering_x, wall_x = _speed(ref_t, t, "rate"), _speed(ref_t, t, "wall")
        if run is not ref and answering_x is not None:
            speedups.append((run, answering_x))
        rows.append([esc(run.label), _engine_text(run), num(t["questions"], "d"),
                     num(t["answered"], "d"), num(t["answering"], ".1f"),
                     num(t["rate"], ".2f"), num(answering_x, ".2f", "×"), num(t["wall"], ".0f"),
                     num(wall_x, ".2f", "×")])
    headers = ["run", "engine", "questions", "requests answered", "answering s", "requests/s",
               "speed-up (answering)", "wall s (load included)", "speed-up (wall)"]
    return table(headers, rows, right=range(2, len(headers))), speedups


def _run_config(run: Run) -> tuple[Any, ...]:
    """An evaluation's configuration: its label less the patch version, Pass@1 or circular.

    Not its categories: a later run over all seven answers what an earlier one over TeleQnA
    alone asked.
    """
    return ("run", PATCH_VERSION.sub("-patched", run.label), _circular(run))


def _target_rows(speedups: list[tuple[Run, float]],
                 agreement: list[tuple[Run, str, Any]],
                 checks: list[BenchCheck]
                 ) -> list[TargetRow]:
    def run_row(target: str, run: Run, value: str, verdict: str) -> TargetRow:
        return TargetRow(target, _run_config(run), (_when(run, "finished") or 0.0, run.run_id),
                         _measured_on(run), value, verdict)

    rows = []
    for run, x in speedups:
        verdict = ("met, moonshot too" if x >= SPEED_MOONSHOT else "met" if x >= SPEED_TARGET
                   else "not met")
        rows.append(run_row(f"evaluates ≥ {SPEED_TARGET:g}× faster than hf-peft (answering, "
                            f"batch 1; moonshot {SPEED_MOONSHOT:g}×)", run, f"{x:.2f}×", verdict))
    for run, text, ok in agreement:
        rows.append(run_row("f16 answers agree with hf-peft within noise (paired, every "
                            "category)", run, text, "met" if ok else "not met"))
    for bench, quant, ratio, p50, p95, whole_switch, spread, interval in checks:
        config, order = bench_config(bench, quant), (bench.finished, bench.run_id)
        where = f"{code(quant)}, {bench_name(bench)}"
        rows.append(TargetRow(f"routed decode ≥ {DECODE_TARGET:g}× the plain GGUF's", config,
                              order, where, with_interval(ratio, interval, "95%: "),
                              _decode_verdict(ratio, interval)))
        rows.append(TargetRow(f"adapter switch < {SWITCH_TARGET_MS:g} ms (p95)", config, order,
                              where, num(p95, ".3f", " ms" if whole_switch else " ms, call only"),
                              _switch_verdict(p50, p95, spread) if whole_switch or not is_num(p95)
                              else "not measured"))
    return rows


def _decode_verdict(ratio: float | None, interval: tuple[float, float] | None) -> str:
    """Met or not by the interval of the rounds' median where recorded, not by a median alone.

    On a noisy VM two benches of one build read several points apart, so a median a point
    either side of the target is no answer when the interval spans it.
    """
    if ratio is None:
        return DASH
    if interval is None:
        return "met" if ratio >= DECODE_TARGET else "not met"
    low, high = interval
    if low >= DECODE_TARGET:
        return "met"
    if high < DECODE_TARGET:
        return "not met"
    return f"not resolved: its 95% interval spans {DECODE_TARGET:g}"


def _switch_verdict(p50: Any, p95: Any, spread: float | None) -> str:
    """A p95 within a token's own spread says nothing, unless the p50 is over already."""
    if not is_num(p95):
        return DASH
    if p95 < SWITCH_TARGET_MS:
        return "met"
    if (is_num(spread) and spread >= SWITCH_TARGET_MS
            and not (is_num(p50) and p50 >= SWITCH_TARGET_MS)):
        return f"not resolved: a token alone spreads {spread:.1f} ms at p95"
    return "not met"


def _targets(rows: list[TargetRow]) -> tuple[str, str]:
    """(each configuration's newest verdict on each target; the verdicts it supersedes).

    A configuration measured again (a newer patch version, a later session) answers the same
    question; the newest answer is the page's verdict, and the older ones stay listed below it
    rather than forty rows of history reading as forty verdicts.
    """
    if not rows:
        return "", ""
    newest: dict[tuple[Any, ...], TargetRow] = {}
    for row in rows:
        key = (row.target, row.config)
        if key not in newest or row.order > newest[key].order:
            newest[key] = row
    current = [r for r in rows if newest[(r.target, r.config)] is r]
    earlier = [r for r in rows if newest[(r.target, r.config)] is not r]
    headers = ["target", "measured on", "value", "verdict"]

    def rendered(chosen: list[TargetRow]) -> str:
        return table(headers, [[r.target, r.measured_on, r.value, r.verdict] for r in chosen],
                     right=[2])

    text = ("## Targets\n\nThe newest measurement of each configuration: engine and "
            "quantization, stock or patched llama.cpp (of any patch version), Pass@1 or circular "
            "prompts, or the bench." + (" Older measurements of the same configurations are under "
                                      "Targets, earlier measurements, at the end."
                                      if earlier else "") + "\n\n" + rendered(current) + "\n")
    older = ("## Targets, earlier measurements\n\nSuperseded by the rows under Targets: the "
             "same configurations, measured again since (a newer patch version, a later "
             "session).\n\n" + rendered(earlier) + "\n") if earlier else ""
    return text, older


def _f16_agreement(records: Records, ref: Run, routed: list[Run]) -> list[tuple[Run, str, Any]]:
    """Per f16 run: the smallest paired p over categories; within noise when all are ≥ 0.05."""
    out = []
    f16_runs = [run for run in routed if "f16" in run.label.lower()]
    ref_cells = _cells(records, ref)
    ref_means = {t: _circular_mean(ref, t) for t in ref_cells} if f16_runs else {}
    for run in f16_runs:
        cells = _cells(records, run)
        found = [paired(records, ref_cells[t], cells[t]) for t in sorted(ref_cells)
                 if t in cells]
        found = [f for f in found if f is not None]
        if found:
            # a circular category's strict score is 0 on every engine; its mean can differ
            means = [_mean_paired(ref_means[t], _circular_mean(run, t))
                     for t in sorted(ref_cells) if t in cells]
            worst = min([f.p_value for f in found]
                        + [m["p_value"] for m in means if m is not None])
            out.append((run, f"{len(found)} categories, smallest p = {worst:.2g}",
                        worst >= 0.05))
    return out


def edge(records: Records, out: Path) -> Section | None:
    pairs = _engine_pairs(records)
    benches, superseded = latest_benches(records)
    if not pairs and not benches:
        return None
    parts, used, speedups, agreement, checks = [], [], [], [], []
    for ref, routed in pairs:
        acc, ids = _accuracy_tables(records, ref, routed)
        used += ids
        throughput, found = _throughput_table(ref, routed)
        speedups += found
        agreement += _f16_agreement(records, ref, routed)
        # the run id too: a reference re-measured in a later session has the same label
        parts.append(f"## Accuracy per category: {esc(ref.label)} ({code(ref.run_id)}) "
                     "against llama.cpp\n\n"
                     "Test questions, the same ones for every engine; value ± standard error, "
                     "beside the chance rate and the best constant answer on those questions. "
                     "Circular rows ask each question once per rotation of its options: "
                     "Circular Pass@1 counts it right only when every rotation is, Circular "
                     "mean is its share of rotations right (where a constant letter scores "
                     "chance)."
                     "\n\n" + acc
                     + "\n## Evaluation speed\n\n"
                     "Answering: the seconds the engine spent on lm-eval's requests (routing and "
                     "adapter switches included), over the requests it answered (a resumed run "
                     "takes the rest from its response cache); wall: the whole command, "
                     "imports, data and model load included. Speed-ups are against the "
                     "hf-peft run, on the same questions, both at batch 1.\n\n" + throughput + "\n")
    for bench in benches:
        part, found = bench_part(bench)
        parts.append(part)
        checks += found
        used.append(bench.run_id)
    targets, earlier = _targets(_target_rows(speedups, agreement, checks))
    text = ("# At the edge: one GGUF backbone, one LoRA adapter per task\n\n"
            "The deployment the study argues for, measured: llama.cpp runs one quantized "
            "backbone with every zoo adapter loaded beside it and switches to each task's "
            "adapter per request (`--model llama-cpp-peft`), against the same adapters on "
            "transformers (`--model hf-peft`). `bash scripts/edge.sh` re-runs it.\n\n"
            + targets + "\n".join(parts) + ("\n" + earlier if earlier else "")
            + "\nSources: " + ", ".join(code(i) for i in sorted(set(used))) + ".\n"
            + ("Left out, superseded by a later bench of the same backbone, zoo and quants: "
               + ", ".join(code(b.run_id) for b in superseded) + ".\n" if superseded else ""))
    return Section("edge", "At the edge: routed GGUF adapters", text)
