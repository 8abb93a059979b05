"""The quantization leaderboard: what each deployment format costs and buys, per bench run.

Ratios are taken against the run's own full-precision baseline (the first of fp32, fp16,
bf16, gguf-f32 in the run's format order, as ``slmbench bench`` picks it for accuracy
deltas), since speeds measured on different machines or runs are not comparable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.bench.outcomes import no_result
from harness.models.llama_cpp_patches import patches_on
from harness.report import plots
from harness.report.baseline_view import constant_text, run_baselines
from harness.report.leaderboard_data import BenchRun, Records
from harness.report.mdtable import (
    DASH,
    code,
    delta_ci,
    esc,
    is_num,
    num,
    pm,
    ratio,
    sources,
    table,
)
from harness.report.sections import Section

BASELINES = ("fp32", "fp16", "bf16", "gguf-f32")
HEADERS = ["format", "threads", "size MB", "bits/weight", "accuracy", "chance",
           "best constant", "Δ vs baseline (95% CI)",
           "decode tok/s p50", "prefill tok/s p50", "TTFT p50 s", "peak RSS MB",
           "peak VRAM MB", "J/token", "BW util", "decode speed-up", "RSS ratio", "size ratio"]
ROUTED_HEADERS = ["format", "adapters", "timed with", "switch p50 ms", "switch p95 ms",
                  "backbone MB", "adapters MB", "paired with", "Δ (95% CI)"]


def p50(result: dict[str, Any] | None, key: str) -> Any:
    """The median of a bench row's timing statistic (None when not measured)."""
    stats = (result or {}).get(key)
    return stats.get("p50") if isinstance(stats, dict) else None


def baseline_format(results: dict[str, Any]) -> str | None:
    return next((name for name, r in results.items() if name in BASELINES
                 and isinstance(r, dict) and no_result(r) is None), None)


def accuracy_baselines(records: Records, acc: dict[str, Any]) -> dict[str, Any] | None:
    """A bench row's accuracy baselines, beside its score on the page.

    Recorded with the row; else from its own eval run in the store; else from any eval run
    in the store that scored exactly the same questions of the task (rows measured before
    bench recorded baselines). The chance rate and the best constant answer depend on the
    questions alone, so any model's run over them gives the same two numbers; only those
    two are shown. None when nothing here covers those questions.
    """
    if isinstance(acc.get("baselines"), dict):
        return acc["baselines"]
    task = acc.get("task")
    if not task:
        return None
    own = run_baselines(records, Path(str(acc.get("run") or "")).name, str(task))
    if own is not None or not isinstance(acc.get("ids"), list):
        return own
    questions = set(acc["ids"])
    for run_id, run in sorted(records.eval_runs.items()):
        scored = run.per_doc(task) if task in run.tasks() else None
        if scored and set(scored) == questions:
            return run_baselines(records, run_id, str(task))
    return None


def _row(records: Records, name: str, r: dict[str, Any], base: dict[str, Any] | None
         ) -> list[str]:
    acc = r.get("accuracy") if isinstance(r.get("accuracy"), dict) else {}
    found = accuracy_baselines(records, acc) if acc else None
    energy = r.get("energy") if isinstance(r.get("energy"), dict) else {}
    base = base or {}
    threads = r.get("threads") if isinstance(r.get("threads"), dict) else {}
    # A routed row's Δ is against its own pairing (hf-peft), shown in the routed table.
    delta = None if acc.get("paired_with") else acc.get("delta_vs_baseline")
    return [code(name), _threads(threads), num(r.get("file_size_mb"), ".1f"),
            num(r.get("bits_per_weight"), ".2f"),
            pm(acc.get("value"), acc.get("stderr")),
            num(found.get("chance") if found else None, ".3f"), constant_text(found),
            delta_ci(delta),
            num(p50(r, "decode_tok_s"), ".1f"), num(p50(r, "prefill_tok_s"), ".1f"),
            num(p50(r, "ttft_s"), ".3f"), num(r.get("peak_rss_mb"), ".0f"),
            num(r.get("peak_vram_mb"), ".0f"), num(energy.get("j_per_token"), ".4f"),
            num(_pct(r.get("bandwidth_utilisation")), ".1f", "%"),
            ratio(p50(r, "decode_tok_s"), p50(base, "decode_tok_s")),
            ratio(r.get("peak_rss_mb"), base.get("peak_rss_mb")),
            ratio(r.get("file_size_mb"), base.get("file_size_mb"))]


def switch_call_only(r: dict[str, Any]) -> str:
    """" (call only)" for a routed llama.cpp row whose switch time is the call alone.

    llama.cpp rebuilds its graph at the token after a switch; records before the bench timed
    that token too have no ``switch_parts_ms``.
    """
    info = r.get("adapters") if isinstance(r.get("adapters"), dict) else {}
    return (" (call only)" if r.get("engine") == "llama.cpp-lora"
            and "switch_parts_ms" not in info else "")


def _routed_row(name: str, r: dict[str, Any]) -> list[str]:
    info = r["adapters"]
    switch = info.get("switch_ms") if isinstance(info.get("switch_ms"), dict) else {}
    disk = r.get("disk_bytes") if isinstance(r.get("disk_bytes"), dict) else {}
    acc = r.get("accuracy") if isinstance(r.get("accuracy"), dict) else {}
    call_only = switch_call_only(r)
    return [code(name), num(info.get("n"), "d"), esc(info.get("active") or DASH),
            num(switch.get("p50"), ".3f", call_only), num(switch.get("p95"), ".3f", call_only),
            num(mb(disk.get("backbone")), ".1f"), num(mb(disk.get("adapters")), ".1f"),
            code(acc["paired_with"]) if acc.get("paired_with") else DASH,
            delta_ci(acc.get("delta_vs_baseline") if acc.get("paired_with") else None)]


def mb(value: Any) -> Any:
    """Bytes as megabytes (10^6), as every size on the pages."""
    return value / 1e6 if is_num(value) else None


def _threads(threads: dict[str, Any]) -> str:
    """Decode/batch threads: engines are only comparable on equal cores."""
    if not threads:
        return DASH
    return f"{threads.get('decode', DASH)}/{threads.get('batch', DASH)}"


def _pct(value: Any) -> Any:
    return value * 100 if is_num(value) else None


def llama_cpp_patched(bench: BenchRun) -> tuple[str, ...]:
    """The slmbench llama.cpp patches that were on in any row of the bench (none: stock)."""
    results = bench.report.get("results") or {}
    return tuple(sorted({name for r in results.values() if isinstance(r, dict)
                         for name in patches_on(r.get("llama_cpp"))}))


def patched_label(bench: BenchRun) -> str:
    """Said beside a bench's name wherever it is shown.

    So a patched number never reads as stock llama.cpp's.
    """
    patched = llama_cpp_patched(bench)
    return (", llama.cpp patched (" + ", ".join(code(p) for p in patched) + ")"
            if patched else "")


def _bench_part(records: Records, bench: BenchRun) -> str:
    report = bench.report
    results = {k: v for k, v in report["results"].items() if isinstance(v, dict)}
    base_name = baseline_format(results)
    base = results.get(base_name) if base_name else None
    measured = [(n, r) for n, r in results.items() if no_result(r) is None]
    skipped = [(n, no_result(r)) for n, r in results.items() if no_result(r)]
    env = report.get("environment") if isinstance(report.get("environment"), dict) else {}
    cfg = report.get("config") if isinstance(report.get("config"), dict) else {}
    lines = [f"## {esc(bench.label)}{patched_label(bench)}\n\n",
             f"Machine: {esc(env.get('cpu') or DASH)}; GPU: {esc(env.get('gpu') or DASH)}; "
             f"measured read bandwidth {num(report.get('bandwidth_gbs'), '.1f')} GB/s; "
             f"accuracy task {esc(cfg.get('task') or DASH)} (limit "
             f"{esc(cfg.get('limit') if cfg.get('limit') is not None else DASH)}); finished "
             f"{bench.finished or DASH}. Baseline for Δ and ratios: "
             + (code(base_name) if base_name else "none (no fp32/fp16/bf16/gguf-f32 measured)")
             + ". " + sources([bench.run_id]) + "\n"]
    if measured:
        lines.append(table(HEADERS, [_row(records, n, r, base) for n, r in measured],
                           right=range(1, len(HEADERS))))
    routed = [(n, r) for n, r in measured if isinstance(r.get("adapters"), dict)]
    if routed:
        lines.append("\nRouted rows: every adapter of the zoo loaded beside one backbone, the "
                     "timed task's adapter active; switch time over every adapter in turn (on "
                     "llama.cpp with the next token's graph rebuild, except where it says call "
                     "only); "
                     "size MB above is backbone plus adapters.\n\n")
        lines.append(table(ROUTED_HEADERS, [_routed_row(n, r) for n, r in routed],
                           right=[1, 3, 4, 5, 6, 8]))
    if skipped:
        lines.append("\nSkipped formats:\n\n")
        lines += [f"- {code(n)}: {'' if outcome == 'skipped' else 'crashed: '}{esc(reason)}\n"
                  for n, (outcome, reason) in skipped]
    return "".join(lines) + "\n"


def pareto_groups(benches: list[BenchRun]) -> list[tuple[str, list[tuple[float, float, str]]]]:
    """Per bench run, (decode tok/s p50, accuracy, format) of each measured format."""
    groups = []
    for bench in benches:
        points = []
        for name, r in bench.report["results"].items():
            if no_result(r):
                continue
            acc = r.get("accuracy") if isinstance(r.get("accuracy"), dict) else {}
            decode = p50(r, "decode_tok_s")
            if is_num(decode) and is_num(acc.get("value")):
                points.append((decode, acc["value"], name))
        if points:
            groups.append((f"{bench.label} ({bench.run_id})", points))
    return groups


def quantization(records: Records, out: Path) -> Section | None:
    if not records.benches:
        return None
    parts = ["# Quantization and deployment formats\n\n"
             "Per bench run: size, accuracy beside the chance rate and the best constant "
             "answer on the same questions (— where neither the run nor any eval run in this "
             "store over the same questions recorded them), its paired "
             "Δ against the full-precision baseline, throughput (p50), time to first token, "
             "memory, energy and memory-bandwidth utilisation; ratios are against the run's "
             "baseline format; — means not measured.\n\n"]
    parts += [_bench_part(records, b) for b in records.benches]
    image = plots.pareto_plot(pareto_groups(records.benches), out / "quantization_pareto.png")
    images = []
    if image is not None:
        images.append(image)
        parts.append(f"![accuracy vs decode throughput, Pareto front joined]({image.name})\n"
                     "\nPer bench run, the joined points are its Pareto front: no other format of "
                     "that run is both faster and more accurate.\n")
    return Section("quantization", "Quantization", "".join(parts).rstrip("\n") + "\n", images)
