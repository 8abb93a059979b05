"""The edge page's bench part: backbone + N adapters against N merged GGUFs, from the bench.

Separate from the evaluations' pairing (``edge_section``) because it reads other records
(``slmbench bench`` runs with ``gguf-<quant>+lora`` rows) and answers other targets: disk and
memory of one backbone with every adapter against N merged GGUFs, what the active adapter
costs at decode, and the switch time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from harness.bench.outcomes import no_result
from harness.models.llama_cpp_patches import WHAT_THEY_CHANGE
from harness.report.leaderboard_data import BenchRun, Records
from harness.report.mdtable import code, esc, is_num, num, sources, table
from harness.report.quant_section import (
    llama_cpp_patched,
    mb,
    p50,
    patched_label,
    switch_call_only,
)


class BenchCheck(NamedTuple):
    """One routed row's numbers that Targets judges."""

    bench: BenchRun
    quant: str
    decode_ratio: float | None
    switch_p50: Any
    switch_p95: Any
    whole_switch: bool  # the call and the next token (records before that timed the call only)
    token_spread: float | None  # a token with no switch before it, by the switch's measure
    decode_ci: tuple[float, float] | None = None  # decode_ratio's 95% interval, if kept


def token_spread_ms(lora: dict) -> float | None:
    """How far a token with no switch before it lies above its median, at p95, in ms.

    The switch is timed as the call plus the next token less the median token, so its p95
    carries one token's own spread: on a bigger backbone, or a noisy VM, that spread alone can
    exceed the target, and then the switch's p95 cannot say whether the switch meets it
    (unless its p50, which the spread moves far less, is over the target already).
    """
    parts = (lora.get("adapters") or {}).get("switch_parts_ms") or {}
    token = parts.get("token_without_switch") or {}
    p95, median = token.get("p95"), token.get("p50")
    return p95 - median if is_num(p95) and is_num(median) else None


def _zoo_name(bench: BenchRun) -> str | None:
    """The zoo a bench timed, by its manifest's name (None for a record without one)."""
    zoo = (bench.report.get("config") or {}).get("zoo")
    return Path(zoo).stem if zoo else None


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


def latest_benches(records: Records) -> tuple[list[BenchRun], list[BenchRun]]:
    """(the newest bench of each backbone, zoo and quant set; the older ones it supersedes).

    A bench re-run on the same configuration (e.g. once the bench records a new measure) is
    the answer to the same question; showing both would put two verdicts on one target.
    """
    newest: dict[tuple[Any, ...], BenchRun] = {}
    for bench in records.benches:
        rows = _routed_bench_rows(bench)
        if not rows:
            continue
        key = (bench.label, _zoo_name(bench), tuple(sorted(q for q, _, _ in rows)),
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


def bench_name(bench: BenchRun) -> str:
    """The backbone and the zoo: one backbone is timed with zoos adapting different modules.

    And the llama.cpp patches that were on, so a patched number is never read as stock's, and
    a GGUF read into memory, whose resident memory is not a mapped one's.
    """
    zoo = _zoo_name(bench)
    return (esc(bench.label) + (f", zoo {code(zoo)}" if zoo else "")
            + patched_label(bench) + (", GGUF read into memory" if _read_into_memory(bench)
                                      else ""))


def _adapted_modules(bench: BenchRun) -> str | None:
    """What the timed adapter adapts, where the record says (runs before it was recorded don't)."""
    for _, lora, _ in _routed_bench_rows(bench):
        modules = (lora.get("adapters") or {}).get("target_modules")
        if modules:
            return ", ".join(code(m) for m in modules)
    return None


def _storage_table(bench: BenchRun) -> tuple[str, list[BenchCheck]]:
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
        # minutes apart drift by more than the adapter costs
        alternating = (lora.get("adapters") or {}).get("alternating_decode") or {}
        alt_ratio, alt_interval = _ratio_and_interval(alternating)
        # blocks of tokens on and off within one request, where recorded: finer still, so
        # this decides the target where both are there
        interleaved = (lora.get("adapters") or {}).get("interleaved_decode") or {}
        tok_ratio, tok_interval = _ratio_and_interval(interleaved)
        spread = token_spread_ms(lora)
        ratio, interval = ((tok_ratio, tok_interval) if is_num(tok_ratio)
                           else (alt_ratio, alt_interval) if is_num(alt_ratio)
                           else (decode_ratio, None))
        checks.append(BenchCheck(bench, quant, ratio, switch.get("p50"), switch.get("p95"),
                                 not call_only, spread, interval))
        # what the active adapter adds per token: beside the ratio, it shows whether a wider
        # backbone hides the adapter (measured: it does not, the cost grows with width); from
        # the finest on/off pairs recorded, while the tok/s columns stay the two rows'
        if interleaved:
            cost_on_ms, cost_off_ms = (p50(interleaved, "on_ms_per_token"),
                                       p50(interleaved, "off_ms_per_token"))
        else:
            cost_on, cost_off = ((p50(alternating, "on_tok_s"), p50(alternating, "off_tok_s"))
                                 if alternating else (on, off))
            cost_on_ms, cost_off_ms = ((1e3 / cost_on, 1e3 / cost_off)
                                       if is_num(cost_on) and is_num(cost_off) and cost_on
                                       and cost_off else (None, None))
        cost = (cost_on_ms - cost_off_ms if is_num(cost_on_ms) and is_num(cost_off_ms)
                else None)
        rows.append([code(quant), num(n, "d"), num(mb(backbone), ".1f"), num(mb(adapters), ".1f"),
                     num(mb(total), ".1f"), num(mb(merged), ".1f"),
                     num(merged / total if is_num(merged) and total else None, ".1f", "×"),
                     num(lora.get("peak_rss_mb"), ".0f"), num(rss_plain, ".0f"),
                     num(n * rss_plain if is_num(n) and is_num(rss_plain) else None, ".0f"),
                     num((plain or {}).get("load_s"), ".2f"),
                     num(on, ".1f"), num(off, ".1f"),
                     num(decode_ratio, ".2f", "×"), with_interval(alt_ratio, alt_interval),
                     with_interval(tok_ratio, tok_interval),
                     num(cost, ".2f"),
                     num(switch.get("p50"), ".3f", call_only),
                     num(switch.get("p95"), ".3f", call_only), num(spread, ".3f")])
    headers = ["quant", "N adapters", "backbone MB", "N adapters MB", "backbone + N adapters MB",
               "N merged GGUFs MB", "disk saved", "peak RSS, backbone + N adapters MB",
               "peak RSS, one merged-size GGUF MB", "N merged, a process each MB",
               "load s, one GGUF", "decode tok/s, adapter on", "decode tok/s, plain",
               "decode ratio", "decode ratio, one process alternating",
               "decode ratio, token blocks interleaved",
               "adapter cost ms/token", "switch p50 ms", "switch p95 ms",
               "a token's own p95 spread ms"]
    return table(headers, rows, right=range(1, len(headers))), checks


def _ratio_and_interval(measure: dict) -> tuple[Any, tuple[float, float] | None]:
    """A recorded ratio's median and 95% interval (records before it was kept have none)."""
    interval = measure.get("ratio_ci95")
    ok = interval and len(interval) == 2 and all(map(is_num, interval))
    return measure.get("ratio_p50"), tuple(interval) if ok else None


def with_interval(ratio: Any, interval: tuple[float, float] | None, label: str = "") -> str:
    """A ratio, and its 95% interval where the record kept the pairs' ratios."""
    shown = num(ratio, ".2f", "×")
    if not is_num(ratio) or interval is None:
        return shown
    return f"{ratio:.3f}× ({label}{interval[0]:.3f}–{interval[1]:.3f})"


def bench_config(bench: BenchRun, quant: str) -> tuple[Any, ...]:
    """What a later bench answers again for Targets.

    Stock or patched, not which patches: a newer patched build is the answer the page should
    give now.
    """
    return ("bench", bench.label, _zoo_name(bench), quant, bool(llama_cpp_patched(bench)),
            _read_into_memory(bench), _adapted_modules(bench))


def bench_part(bench: BenchRun) -> tuple[str, list[BenchCheck]]:
    """The bench's section of the page, and its rows' decode ratio and switch for Targets."""
    storage, checks = _storage_table(bench)
    modules = _adapted_modules(bench)
    return (f"## One backbone + N adapters against N merged GGUFs: {bench_name(bench)}"
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
            "request by request, as the two processes drift by more than the adapter "
            "costs on a shared CPU; and the one after it, finer still, switches the adapter "
            "on and off every few tokens within one request (each block's first tokens, "
            "which pay the switch, left out). The finest of them recorded is the ratio the "
            "target is checked on and the cost is computed from; each is the median of its "
            "pairs' ratios with a distribution-free 95% interval where the record kept them, "
            "and an interval that spans the target decides nothing. Switch: the call plus "
            "what the next token pays for it, as llama.cpp rebuilds its compute graph "
            "then, less the median token; "
            "records that timed the call alone say call only. A token's own p95 spread: "
            "how far a token with no switch before it, timed in the same loop, lies above "
            "that median at p95; the switch's p95 carries it, so where it alone reaches "
            "the target the switch's p95 cannot tell whether the switch does. llama.cpp computes "
            "B·(A·x) for every adapted matrix, so it grows with the adapted matrices' "
            "output rows, as the plain decode grows with the weights. "
            + _patches_text(bench) + _load_text(bench) + sources([bench.run_id])
            + "\n"
            + storage + "\n"), checks
