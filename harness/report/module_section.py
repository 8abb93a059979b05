"""Leaderboard section for sweeps that vary only what the adapter adapts (its target modules).

Fewer adapted projections are cheaper to serve: llama.cpp applies a routed LoRA as extra
operations on every adapted matrix of every decoded token (the edge page measures it). The
section answers what that saving costs in accuracy, each smaller set paired against the
largest one on the same questions and every point beside its constant-answer baselines, so
"no loss" is a measured claim and not a reading of two overlapping error bars.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.report.leaderboard_data import Records, canonical
from harness.report.mdtable import code, esc, integer, is_num, num, pm, sources, table
from harness.report.sections import Section
from harness.report.sweep_sections import (
    POINT_FIELDS,
    baselines_table,
    benchmarks,
    columns_of,
    paired_table,
    val_loss,
)


def differs_only_in_modules(rows: list[dict[str, Any]]) -> bool:
    """One rank and one alpha, a distinct set of target modules per point, nothing else."""
    sets = [tuple(sorted(row.get("target_modules") or [])) for row in rows]
    if len(rows) < 2 or not all(sets) or len(set(sets)) < len(sets):
        return False

    def shape(row: dict[str, Any]) -> str:
        rest = {k: v for k, v in (row.get("point") or {}).items() if k not in POINT_FIELDS}
        return canonical([row.get("rank"), row.get("alpha"), rest])

    return all(is_num(row.get("rank")) for row in rows) and len({shape(r) for r in rows}) == 1


def module_name(row: dict[str, Any]) -> str:
    return str(row.get("module_set") or "+".join(row.get("target_modules") or []))


def _projections(row: dict[str, Any]) -> str:
    return ", ".join(m.removesuffix("_proj") for m in row.get("target_modules") or [])


def module_ablation(records: Records, out: Path) -> Section | None:
    sweeps = [s for s in records.sweeps if differs_only_in_modules(s.rows)]
    if not sweeps:
        return None
    parts = ["# Module ablation\n\n"
             "Sweeps whose configurations differ only in the projections the adapter adapts "
             "(same rank, alpha, data and budget): what adapting fewer of them costs in "
             "accuracy. Fewer adapted projections are cheaper to serve routed on llama.cpp, "
             "which adds two small matrix products per adapted projection to every decoded "
             "token (slmbench bench's `gguf-<quant>+lora` rows time it; see the edge "
             "leaderboard).\n\n"]
    for sweep in sweeps:
        rows = sorted(sweep.rows, key=lambda r: (len(r.get("target_modules") or []),
                                                 module_name(r)))
        benches = benchmarks(rows)
        columns = columns_of(rows, benches)
        body = [[esc(module_name(r)), esc(_projections(r)), num(r.get("adapter_mb"), ".2f"),
                 integer(r.get("trainable_params")), num(val_loss(r), ".4f"),
                 *(pm(get(r).get("value"), get(r).get("stderr")) for _, get in columns),
                 code(r.get("run_id"))] for r in rows]
        headers = ["modules", "adapted projections", "adapter MB", "trainable params",
                   "val loss", *(name for name, _ in columns), "point"]
        widest = rows[-1]
        parts += [f"## {esc(sweep.label)}\n\n",
                  f"Rank {num(widest.get('rank'), 'g')}, alpha {num(widest.get('alpha'), 'g')}. ",
                  sources([sweep.run_id]), "\n",
                  table(headers, body, right=range(2, len(headers) - 1)), "\n"]
        parts.append(baselines_table(rows, benches, records, "modules", module_name))
        parts.append(paired_table(
            [(widest, row) for row in rows[:-1]], benches, records, "fewer modules",
            f"\nEach smaller set against {esc(module_name(widest))}, paired on the same "
            "questions (exact McNemar on the questions only one of the two answered "
            "correctly); a negative Δ is accuracy the smaller adapter loses:\n\n",
            module_name))
    return Section("module_ablation", "Module ablation", "".join(parts), [])
