"""The reference study's per-category tables: backbone vs its adapters, unseen and seen.

An eval run labelled ``B+A`` is adapter(s) ``A`` over backbone ``B``; its page compares it
with the run labelled ``B`` on the same benchmarks. Every cell carries its n and standard
error, because the limits differ per benchmark (TeleTables has 100 test questions, TeleQnA
2,000) and a difference means nothing without them. A gain is called clear when it exceeds
two standard errors of the difference (the two errors combined as if independent, which
overstates the error of a paired comparison, so the call is conservative).
"""

from __future__ import annotations

import math
from pathlib import Path

from harness.report.leaderboard_data import EvalCell, Records, latest
from harness.report.mdtable import DASH, esc, is_num, table
from harness.report.sections import Section, run_sources

CLEAR_Z = 2.0


def cell_text(cell: EvalCell | None) -> str:
    if cell is None or not is_num(cell.value):
        return DASH
    se = f" ± {cell.stderr:.3f}" if is_num(cell.stderr) else ""
    n = f" (n={cell.n})" if isinstance(cell.n, int) else ""
    return f"{cell.value:.3f}{se}{n}"


def delta_text(base: EvalCell | None, tuned: EvalCell | None) -> str:
    """``Δ (z)``: the gain and how many combined standard errors it spans."""
    if base is None or tuned is None or not (is_num(base.value) and is_num(tuned.value)):
        return DASH
    delta = tuned.value - base.value
    if not (is_num(base.stderr) and is_num(tuned.stderr)):
        return f"{delta:+.3f}"
    se = math.hypot(base.stderr, tuned.stderr)
    if se == 0:
        return f"{delta:+.3f}"
    z = delta / se
    mark = " ✔" if z > CLEAR_Z else ""
    return f"{delta:+.3f} ({z:+.1f}σ){mark}"


def _pairs(cells: list[EvalCell]) -> list[tuple[str, str]]:
    labels = {c.label for c in cells}
    return sorted((lab.split("+", 1)[0], lab) for lab in labels
                  if "+" in lab and lab.split("+", 1)[0] in labels)


def _unseen_table(grid: dict, base: str, tuned: str, benches: list[str],
                  kinds: list[str]) -> str:
    headers = ["category"]
    for kind in kinds:
        headers += [f"{esc(base)} {kind}", f"{esc(tuned)} {kind}", f"Δ {kind} (z)"]
    rows = []
    for bench in benches:
        row = [esc(bench)]
        for kind in kinds:
            b, t = grid.get((base, bench, "test", kind)), grid.get((tuned, bench, "test", kind))
            row += [cell_text(b), cell_text(t), delta_text(b, t)]
        rows.append(row)
    return table(headers, rows, right=range(1, len(headers)))


def _seen_table(grid: dict, base: str, tuned: str, benches: list[str]) -> str:
    headers = ["category", f"{esc(base)} seen", f"{esc(base)} unseen", f"{esc(tuned)} seen",
               f"{esc(tuned)} unseen", "adapter gain seen", "adapter gain unseen"]
    rows = []
    for bench in benches:
        cells = [grid.get((lab, bench, split, "Pass@1"))
                 for lab in (base, tuned) for split in ("train", "test")]
        rows.append([esc(bench), *(cell_text(c) for c in cells),
                     delta_text(cells[0], cells[2]), delta_text(cells[1], cells[3])])
    return table(headers, rows, right=range(1, len(headers)))


def study(records: Records, out: Path) -> Section | None:
    chosen = latest(records.evals)
    cells = [c for c in chosen.values() if c.split in ("train", "test")
             and c.kind in ("Pass@1", "Maj@4")]
    pairs = _pairs(cells)
    grid = {c.key: c for c in cells}
    parts, used = [], []
    for base, tuned in pairs:
        benches = sorted({c.benchmark for c in cells if c.label == tuned and c.split == "test"
                          and (base, c.benchmark, "test", c.kind) in grid})
        if not benches:
            continue
        kinds = [k for k in ("Pass@1", "Maj@4")
                 if any((lab, b, "test", k) in grid for lab in (base, tuned) for b in benches)]
        used += [c for c in cells if c.label in (base, tuned) and c.benchmark in benches]
        parts.append(f"## {esc(tuned)} vs {esc(base)}\n\n"
                     "Unseen questions (test split):\n\n"
                     + _unseen_table(grid, base, tuned, benches, kinds))
        if any((lab, b, "train", "Pass@1") in grid for lab in (base, tuned) for b in benches):
            parts.append("Seen (the questions each adapter trained on) vs unseen, Pass@1, "
                         "in the layout of the study's Table 2:\n\n"
                         + _seen_table(grid, base, tuned, benches))
    if not parts:
        return None
    text = (
        "# The reference study, per category\n\n"
        "Each adapter against the zero-shot backbone it was trained on. Cells are value ± "
        "standard error (n questions). Δ is adapter − backbone; z is Δ over the two standard "
        f"errors combined; ✔ marks a gain above {CLEAR_Z:.0f} of them. Seen questions are the "
        "training examples of the category's adapter (`seen_from`), so the backbone's seen "
        "column is scored on the same questions.\n\n"
        + "\n".join(parts) + "\n" + run_sources(used))
    return Section("study", "The reference study, per category", text)
