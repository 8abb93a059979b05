"""The edge page: one GGUF backbone with every zoo adapter routed on llama.cpp, against hf-peft.

The study's deployment argument is that an edge box ships one quantized backbone and a small
LoRA file per task, not one merged model per task. This page measures it from the records:
accuracy per category of ``llama-cpp-peft`` runs against the ``hf-peft`` run of the same zoo
(same adapters by sha256) on the same questions, paired; how fast each engine answers; and,
from ``slmbench bench`` runs with ``gguf-<quant>+lora`` rows, the disk and memory of backbone
plus N adapters against N merged GGUFs, the decode cost of an active adapter and the switch
time. The issue's targets are checked against these numbers, met or not, on the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.bench.outcomes import no_result
from harness.flags import as_bool
from harness.models.llama_cpp_patches import WHAT_THEY_CHANGE
from harness.report.baseline_view import cell_baselines, constant_text, paired
from harness.report.leaderboard_data import BenchRun, EvalCell, Records
from harness.report.mdtable import DASH, code, esc, is_num, num, pm, sources, table
from harness.report.quant_section import (
    llama_cpp_patched,
    mb,
    p50,
    patched_label,
    switch_call_only,
)
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
    return any(task.endswith("_circular") for task in run.tasks())


def _measured_on(run: Run) -> str:
    """A target row's run: its label, its id and what it asked.

    A label's Pass@1 and circular runs share the label, and a newer run on other questions
    supersedes an older one, so the row says how many questions it had.
    """
    n = _timing(run)["questions"]
    return f"{esc(run.label)} ({code(run.run_id)}), {n} questions" + (
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
    questions = sum(i.get("n") or 0 for i in run.tasks().values() if isinstance(i, dict))
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


def _routed_bench_rows(bench: BenchRun) -> list[tuple[str, dict, dict | None]]:
    """(quant, the +lora row, the plain GGUF row of that quant) for each measured pair."""
    results = bench.report.get("results") or {}
    out = []
    for name, row in sorted(results.items()):
        if not (name.endswith("+lora") and isinstance(row, dict) and no_result(row) is None):
            continue
        plain = results.get(name.removesuffix("+lora"))
        plain = plain if isinstance(plain, dict) and no_result(plain) is None else None
        out.append((name.removesuffix("+lora").removeprefix("gguf-"), row, plain))
    return out


def _latest_benches(records: Records) -> tuple[list[BenchRun], list[BenchRun]]:
    """(the newest bench of each backbone, zoo and quant set; the older ones it supersedes).

    A bench re-run on the same configuration (e.g. once the bench records a new measure) is
    the answer to the same question; showing both would put two verdicts on one target.
    """
    newest: dict[tuple[Any, ...], BenchRun] = {}
    for bench in records.benches:
        rows = _routed_bench_rows(bench)
        if not rows:
            continue
        zoo = (bench.report.get("config") or {}).get("zoo")
        key = (bench.label, zoo and Path(zoo).stem, tuple(sorted(q for q, _, _ in rows)),
               llama_cpp_patched(bench),  # patched llama.cpp answers another question
               _read_into_memory(bench))  # and so does a GGUF read, of memory
        if key not in newest or (bench.finished, bench.run_id) > (newest[key].finished,
                                                                   newest[key].run_id):
            newest[key] = bench
    kept_ids = {b.run_id for b in newest.values()}
    timed = [b for b in records.benches if _routed_bench_rows(b)]
    return ([b for b in timed if b.run_id in kept_ids],
            [b for b in timed if b.run_id not in kept_ids])


def _patches_text(bench: BenchRun) -> str:
    patched = llama_cpp_patched(bench)
    if not patched:
        return ""
    return ("This bench ran llama.cpp built with slmbench's patches (`patches/llama.cpp`, "
            "`scripts/build_llama_cpp_lora_patches.sh`), which stock llama.cpp does not have: "
            + "; ".join(f"{code(name)}: {WHAT_THEY_CHANGE.get(name, 'unknown')}"
                        for name in patched) + ". ")


def _llama_cpp_loads(bench: BenchRun) -> list[dict]:
    return [row.get("llama_cpp") or {} for _, lora, plain in _routed_bench_rows(bench)
            for row in (lora, plain) if row]


def _read_into_memory(bench: BenchRun) -> bool:
    return any(load.get("use_mmap") is False for load in _llama_cpp_loads(bench))


def _load_text(bench: BenchRun) -> str:
    """How llama.cpp loaded the weights, where it changes the rows: speed, or resident memory."""
    text = ""
    if any(load.get("extra_bufts") is False for load in _llama_cpp_loads(bench)):
        text += ("llama.cpp ran without its extra buffer types (AMX, weight repacking): this "
                 "build dies in AMX on this host (a GCC 12 build; see the README), so its "
                 "quantized rows run slower than in a build with them. ")
    if _read_into_memory(bench):
        text += ("llama.cpp read the GGUF into memory instead of mapping it (`--no-llama-mmap`),"
                 " so weights its extra buffer types repack are resident once, not beside "
                 "their mapped pages. ")
    return text


def _bench_name(bench: BenchRun) -> str:
    """The backbone and the zoo: one backbone is timed with zoos adapting different modules.

    And the llama.cpp patches that were on, so a patched number is never read as stock's, and
    a GGUF read into memory, whose resident memory is not a mapped one's.
    """
    zoo = (bench.report.get("config") or {}).get("zoo")
    return (esc(bench.label) + (f", zoo {code(Path(zoo).stem)}" if zoo else "")
            + patched_label(bench) + (", GGUF read into memory" if _read_into_memory(bench)
                                      else ""))


def _adapted_modules(bench: BenchRun) -> str | None:
    """What the timed adapter adapts, where the record says (runs before it was recorded don't)."""
    for _, lora, _ in _routed_bench_rows(bench):
        modules = (lora.get("adapters") or {}).get("target_modules")
        if modules:
            return ", ".join(code(m) for m in modules)
    return None


def _storage_table(bench: BenchRun
                   ) -> tuple[str, list[tuple[BenchRun, str, float | None, Any, bool]]]:
    rows, checks = [], []
    for quant, lora, plain in _routed_bench_rows(bench):
        disk = lora.get("disk_bytes") or {}
        n = (lora.get("adapters") or {}).get("n")
        backbone, adapters = disk.get("backbone"), disk.get("adapters")
        merged = n * backbone if is_num(n) and is_num(backbone) else None
        total = backbone + adapters if is_num(backbone) and is_num(adapters) else None
        switch = (lora.get("adapters") or {}).get("switch_ms") or {}
        call_only = switch_call_only(lora)
        on, off = p50(lora, "decode_tok_s"), p50(plain, "decode_tok_s")
        decode_ratio = on / off if is_num(on) and is_num(off) and off else None
        rss_plain = (plain or {}).get("peak_rss_mb")
        # the same process with the adapter off and on in turn, where recorded: two processes
        # minutes apart drift by more than the adapter costs, so this is the number checked
        alternating = (lora.get("adapters") or {}).get("alternating_decode") or {}
        alt_ratio = alternating.get("ratio_p50")
        checks.append((bench, quant, alt_ratio if is_num(alt_ratio) else decode_ratio,
                       switch.get("p95"), not call_only))
        if alternating:
            on, off = p50(alternating, "on_tok_s"), p50(alternating, "off_tok_s")
        # what the active adapter adds per token: beside the ratio, it shows whether a wider
        # backbone hides the adapter (measured: it does not, the cost grows with width)
        cost = 1e3 / on - 1e3 / off if is_num(on) and is_num(off) and on and off else None
        rows.append([code(quant), num(n, "d"), num(mb(backbone), ".1f"), num(mb(adapters), ".1f"),
                     num(mb(total), ".1f"), num(mb(merged), ".1f"),
                     num(merged / total if is_num(merged) and total else None, ".1f", "×"),
                     num(lora.get("peak_rss_mb"), ".0f"), num(rss_plain, ".0f"),
                     num(n * rss_plain if is_num(n) and is_num(rss_plain) else None, ".0f"),
                     num((plain or {}).get("load_s"), ".2f"),
                     num(on, ".1f"), num(off, ".1f"),
                     num(decode_ratio, ".2f", "×"), num(alt_ratio, ".2f", "×"),
                     num(cost, ".2f"),
                     num(switch.get("p50"), ".3f", call_only),
                     num(switch.get("p95"), ".3f", call_only)])
    headers = ["quant", "N adapters", "backbone MB", "N adapters MB", "backbone + N adapters MB",
               "N merged GGUFs MB", "disk saved", "peak RSS, backbone + N adapters MB",
               "peak RSS, one merged-size GGUF MB", "N merged, a process each MB",
               "load s, one GGUF", "decode tok/s, adapter on", "decode tok/s, plain",
               "decode ratio", "decode ratio, one process alternating",
               "adapter cost ms/token", "switch p50 ms", "switch p95 ms"]
    return table(headers, rows, right=range(1, len(headers))), checks


def _run_config(run: Run) -> tuple[Any, ...]:
    """An evaluation's configuration: its label less the patch version, Pass@1 or circular.

    Not its categories: a later run over all seven answers what an earlier one over TeleQnA
    alone asked.
    """
    return ("run", PATCH_VERSION.sub("-patched", run.label), _circular(run))


def _bench_config(bench: BenchRun, quant: str) -> tuple[Any, ...]:
    zoo = (bench.report.get("config") or {}).get("zoo")
    return ("bench", bench.label, zoo and Path(zoo).stem, quant, bool(llama_cpp_patched(bench)),
            _read_into_memory(bench), _adapted_modules(bench))


def _target_rows(speedups: list[tuple[Run, float]],
                 agreement: list[tuple[Run, str, Any]],
                 checks: list[tuple[BenchRun, str, float | None, Any, bool]]
                 ) -> list[TargetRow]:
    rows = []
    for run, x in speedups:
        verdict = ("met, moonshot too" if x >= SPEED_MOONSHOT else "met" if x >= SPEED_TARGET
                   else "not met")
        rows.append(TargetRow(f"evaluates ≥ {SPEED_TARGET:g}× faster than hf-peft (answering, "
                              f"batch 1; moonshot {SPEED_MOONSHOT:g}×)", _run_config(run),
                              (_when(run, "finished") or 0.0, run.run_id), _measured_on(run),
                              f"{x:.2f}×", verdict))
    for run, text, ok in agreement:
        rows.append(TargetRow("f16 answers agree with hf-peft within noise (paired, every "
                              "category)", _run_config(run),
                              (_when(run, "finished") or 0.0, run.run_id), _measured_on(run),
                              text, "met" if ok else "not met"))
    for bench, quant, ratio, p95, whole_switch in checks:
        config, order = _bench_config(bench, quant), (bench.finished, bench.run_id)
        where = f"{code(quant)}, {_bench_name(bench)}"
        rows.append(TargetRow(f"routed decode ≥ {DECODE_TARGET:g}× the plain GGUF's", config,
                              order, where, num(ratio, ".2f", "×"),
                              DASH if ratio is None
                              else "met" if ratio >= DECODE_TARGET else "not met"))
        verdict = ("met" if p95 < SWITCH_TARGET_MS else "not met") if is_num(p95) else DASH
        rows.append(TargetRow(f"adapter switch < {SWITCH_TARGET_MS:g} ms (p95)", config, order,
                              where, num(p95, ".3f", " ms" if whole_switch else " ms, call only"),
                              verdict if whole_switch or not is_num(p95) else "not measured"))
    return rows


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
    benches, superseded = _latest_benches(records)
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
        storage, found = _storage_table(bench)
        checks += found
        modules = _adapted_modules(bench)
        parts.append(f"## One backbone + N adapters against N merged GGUFs: {_bench_name(bench)}"
                     "\n\n" + (f"Each adapter adapts {modules}. " if modules else "") +
                     "From `slmbench bench`: each `gguf-<quant>+lora` row loads the backbone with "
                     "every adapter of the zoo beside it and times decode with the task's adapter "
                     "on; the plain row is the backbone alone, the size and speed of any merged "
                     "GGUF at that quant (folding a LoRA changes weights, not shapes). N merged "
                     "GGUFs cost N times its disk, and N times its memory to keep every task "
                     "resident (or a load per switch). Adapter cost: the decode milliseconds per "
                     "token the active adapter adds (1000/on − 1000/plain). The decode ratio "
                     "compares the two rows, timed in two processes minutes apart; where "
                     "recorded, the next column alternates the adapter off and on in one process, "
                     "request by request, which is the ratio the target is checked on and the "
                     "cost is computed from, as the two processes drift by more than the adapter "
                     "costs on a shared CPU. Switch: the call plus what the next token pays "
                     "for it, as llama.cpp rebuilds its compute graph then; records that timed "
                     "the call alone say call only. llama.cpp computes "
                     "B·(A·x) for every adapted matrix, so it grows with the adapted matrices' "
                     "output rows, as the plain decode grows with the weights. "
                     + _patches_text(bench) + _load_text(bench) + sources([bench.run_id])
                     + "\n"
                     + storage + "\n")
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
