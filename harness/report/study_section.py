"""The reference study's per-category tables: backbone vs its adapters, unseen and seen.

An eval run labelled ``B+A`` is adapter(s) ``A`` over backbone ``B``; its page compares it
with the run labelled ``B`` on the same benchmarks. Every cell carries its n and standard
error, because the limits differ per benchmark (TeleTables has 100 test questions, TeleQnA
2,000) and a difference means nothing without them. Differences are paired on the questions
both runs answered (exact McNemar). A gain is called only when the adapter beats both the
backbone and the best constant answer on the same questions: a 135M model tuned on a few
hundred questions learns the key's prior first, which beats a weak backbone but never the
constant (``harness.report.baseline_view``).
"""

from __future__ import annotations

from pathlib import Path

from harness.report.baseline_view import (
    ALPHA,
    cell_baselines,
    constant_text,
    paired,
    top_text,
    versus_constant,
)
from harness.report.leaderboard_data import EvalCell, Records, latest
from harness.report.mdtable import DASH, esc, is_num, table
from harness.report.sections import Section, run_sources

# The study's tables, in order: plain scores, then the position-free ones (a letter prior
# cannot pass for knowledge there: a constant letter scores 0 on circular).
KINDS = ("Pass@1", "Maj@4", "Circular Pass@1", "Circular Maj@4", "Cloze acc")


def cell_text(cell: EvalCell | None) -> str:
    if cell is None or not is_num(cell.value):
        return DASH
    se = f" ± {cell.stderr:.3f}" if is_num(cell.stderr) else ""
    n = f" (n={cell.n})" if isinstance(cell.n, int) else ""
    return f"{cell.value:.3f}{se}{n}"


def _paired_text(records: Records, base: EvalCell | None, tuned: EvalCell | None) -> str:
    found = paired(records, base, tuned)
    return found.text() if found else DASH


def _verdict(records: Records, base: EvalCell | None, tuned: EvalCell | None) -> str:
    """✔ only when the adapter beats the backbone and the best constant, both paired."""
    vs_base = paired(records, base, tuned)
    vs_constant = versus_constant(cell_baselines(records, tuned)) if tuned else None
    if vs_base is None or vs_constant is None:
        return DASH
    if vs_base.significant_gain and vs_constant.significant_gain:
        return "✔ gain"
    if vs_base.significant_gain:
        return "prior only"  # beats the backbone, not the constant answer
    return "no gain"


def _pairs(cells: list[EvalCell]) -> list[tuple[str, str]]:
    labels = {c.label for c in cells}
    return sorted((lab.split("+", 1)[0], lab) for lab in labels
                  if "+" in lab and lab.split("+", 1)[0] in labels)


def _unseen_table(records: Records, grid: dict, base: str, tuned: str, benches: list[str],
                  kind: str) -> str:
    headers = ["category", f"{esc(base)}", f"{esc(tuned)}", "best constant",
               f"{esc(tuned)} top answer", "Δ vs backbone (p, −lost/+gained)",
               "Δ vs constant (p, −lost/+gained)", "verdict"]
    rows = []
    for bench in benches:
        b, t = grid.get((base, bench, "test", kind)), grid.get((tuned, bench, "test", kind))
        found = cell_baselines(records, t) if t else None
        vs_constant = versus_constant(found)
        rows.append([esc(bench), cell_text(b), cell_text(t), constant_text(found),
                     top_text(found), _paired_text(records, b, t),
                     vs_constant.text() if vs_constant else DASH, _verdict(records, b, t)])
    return table(headers, rows, right=range(1, len(headers) - 1))


def _seen_table(records: Records, grid: dict, base: str, tuned: str,
                benches: list[str]) -> str:
    headers = ["category", f"{esc(base)} seen", f"{esc(base)} unseen", f"{esc(tuned)} seen",
               f"{esc(tuned)} unseen", "adapter gain seen (p)", "adapter gain unseen (p)"]
    rows = []
    for bench in benches:
        cells = [grid.get((lab, bench, split, "Pass@1"))
                 for lab in (base, tuned) for split in ("train", "test")]
        rows.append([esc(bench), *(cell_text(c) for c in cells),
                     _paired_text(records, cells[0], cells[2]),
                     _paired_text(records, cells[1], cells[3])])
    return table(headers, rows, right=range(1, len(headers)))


def study(records: Records, out: Path) -> Section | None:
    chosen = latest(records.evals)
    cells = [c for c in chosen.values() if c.split in ("train", "test")
             and c.kind in KINDS]
    pairs = _pairs(cells)
    grid = {c.key: c for c in cells}
    parts, used = [], []
    for base, tuned in pairs:
        benches = sorted({c.benchmark for c in cells if c.label == tuned and c.split == "test"
                          and (base, c.benchmark, "test", c.kind) in grid})
        if not benches:
            continue
        kinds = [k for k in KINDS
                 if any((lab, b, "test", k) in grid for lab in (base, tuned) for b in benches)]
        used += [c for c in cells if c.label in (base, tuned) and c.benchmark in benches]
        parts.append(f"## {esc(tuned)} vs {esc(base)}\n")
        for kind in kinds:
            parts.append(f"Unseen questions (test split), {kind}:\n\n"
                         + _unseen_table(records, grid, base, tuned, benches, kind))
        if any((lab, b, "train", "Pass@1") in grid for lab in (base, tuned) for b in benches):
            parts.append("Seen (the questions each adapter trained on) vs unseen, Pass@1, "
                         "in the layout of the study's Table 2:\n\n"
                         + _seen_table(records, grid, base, tuned, benches))
    if not parts:
        return None
    text = (
        "# The reference study, per category\n\n"
        "Each adapter against the zero-shot backbone it was trained on. Cells are value ± "
        "standard error (n questions). Beside them: the best constant answer on the adapter's "
        "questions (always giving one answer, named), the adapter's most given answer and "
        "its share, and the adapter's difference from the backbone and from that constant, "
        "each paired on the same questions (exact McNemar p, questions lost/gained). The "
        f"verdict is ✔ gain only when both differences are positive with p < {ALPHA}; "
        "\"prior only\" beats the backbone but not the constant answer, which is what "
        "learning the answer key's prior instead of the domain looks like. Seen questions are "
        "the training examples of the category's adapter (`seen_from`), so the backbone's "
        "seen column is scored on the same questions. Circular is MMBench's CircularEval, "
        "strict: each question is asked once per rotation of its options and counts only when "
        "right in all of them, so a constant letter scores 0 (n counts whole questions). "
        "Cloze scores each option's text by its loglikelihood after the question, with no "
        "letters shown.\n\n"
        + "\n".join(parts) + "\n" + run_sources(used))
    return Section("study", "The reference study, per category", text)
