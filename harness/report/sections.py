"""Leaderboard sections built from eval runs: accuracy on unseen questions, seen vs unseen.

Columns follow the records' ``benchmark``/``split``/``filter`` fields, never task names, so
a renamed task still lands in the right column; each page ends with the runs (and tasks)
every cell came from.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from harness.report.leaderboard_data import EvalCell, Records, kind_sort_key, latest
from harness.report.mdtable import DASH, bold, code, esc, is_num, pm, table


@dataclass
class Section:
    name: str
    title: str
    text: str
    images: list[Path] = field(default_factory=list)


def run_sources(cells: list[EvalCell]) -> str:
    """Which run each cell came from: one line per run, with the tasks taken from it."""
    by_run: dict[str, list[EvalCell]] = defaultdict(list)
    for cell in cells:
        by_run[cell.run_id].append(cell)
    lines = ["## Sources\n\n"]
    for run_id in sorted(by_run):
        first = by_run[run_id][0]
        # n differs between runs (--limit): it belongs next to every number it qualifies.
        tasks = ", ".join(f"{c.task} (n={c.n if c.n is not None else DASH})"
                          for c in sorted({c.task: c for c in by_run[run_id]}.values(),
                                          key=lambda c: c.task))
        lines.append(f"- {code(run_id)} ({esc(first.label)}, finished "
                     f"{first.finished or DASH}): {tasks}\n")
    return "".join(lines)


def accuracy(records: Records, out: Path) -> Section | None:
    cells = [c for c in latest(records.evals).values() if c.split == "test"]
    if not cells:
        return None
    columns = sorted({(c.benchmark, c.kind) for c in cells},
                     key=lambda k: (k[0], *kind_sort_key(k[1])))
    labels = sorted({c.label for c in cells})
    grid = {(c.label, c.benchmark, c.kind): c for c in cells}
    best = {}
    for col in columns:
        values = [grid[(lab, *col)].value for lab in labels
                  if (lab, *col) in grid and is_num(grid[(lab, *col)].value)]
        best[col] = max(values) if values else None
    rows = []
    for lab in labels:
        row = [esc(lab)]
        for col in columns:
            cell = grid.get((lab, *col))
            text = pm(cell.value, cell.stderr) if cell else DASH
            win = cell is not None and is_num(cell.value) and cell.value == best[col]
            row.append(bold(text) if win else text)
        rows.append(row)
    headers = ["model", *(f"{esc(b)} {k}" for b, k in columns)]
    text = (
        "# Accuracy on unseen questions\n\n"
        "Test split only: questions no adapter was trained on. Cells are value ± standard "
        "error; the best value per column is in bold; — means not evaluated. When several "
        "runs scored the same model and task, the one over the most questions (then the "
        "latest) is shown.\n\n"
        + table(headers, rows, right=range(1, len(headers))) + "\n"
        + baselines_table(records, cells) + run_sources(cells))
    return Section("accuracy", "Accuracy (unseen split)", text)


def baselines_table(records: Records, cells: list[EvalCell]) -> str:
    """Every choice and label cell beside its constant-answer baselines, same questions."""
    from harness.report.baseline_view import cell_baselines
    from harness.scoring.baselines import TABLE_COLUMNS, table_cells

    rows = []
    for cell in sorted(cells, key=lambda c: (c.benchmark, *kind_sort_key(c.kind), c.label)):
        found = cell_baselines(records, cell)
        if found is not None:
            cells_text = table_cells(cell.task, found)
            rows.append([esc(cell.label), esc(cell.kind), *(esc(c) for c in cells_text)])
    if not rows:
        return ""
    headers = ["model", "metric", *TABLE_COLUMNS]
    return ("## Beside their baselines\n\n"
            "Each choice and label score beside what answering without reading the question "
            "scores on exactly the same questions: a uniform guess (chance), always the first "
            "option, always the most frequent key, and the best single constant answer; then "
            "the difference from that constant, paired per question (exact McNemar p), and "
            "the model's most given answer with the normalised entropy of its answers (0: "
            "always the same answer; 1: spread evenly). \"≈ constant\" means the score is "
            "not above the constant answer; \"below it\" that it is under it, paired "
            "(exact McNemar p < 0.05).\n\n"
            + table(headers, rows, right=range(3, len(headers))) + "\n")


def seen_unseen(records: Records, out: Path) -> Section | None:
    """Pass@1 on questions trained on vs held out: a large gap means memorisation."""
    cells = [c for c in latest(records.evals).values()
             if c.kind == "Pass@1" and c.split in ("train", "test")]
    if not any(c.split == "train" for c in cells):
        return None
    grid = {(c.label, c.benchmark, c.split): c for c in cells}
    pairs = sorted({(c.label, c.benchmark) for c in cells})
    rows = []
    for label, bench in pairs:
        seen, unseen = grid.get((label, bench, "train")), grid.get((label, bench, "test"))
        gap = (f"{seen.value - unseen.value:+.3f}" if seen and unseen and is_num(seen.value)
               and is_num(unseen.value) else DASH)
        rows.append([esc(label), esc(bench), pm(seen.value, seen.stderr) if seen else DASH,
                     pm(unseen.value, unseen.stderr) if unseen else DASH, gap])
    text = (
        "# Seen vs unseen questions\n\n"
        "Pass@1 on questions from the training split (seen) and the held-out test split "
        "(unseen), and the gap seen − unseen, as in the reference study's Table 2. A large "
        "positive gap means the adapter memorised its training questions rather than "
        "learning the domain.\n\n"
        + table(["model", "benchmark", "seen Pass@1", "unseen Pass@1", "gap"], rows,
                right=(2, 3, 4))
        + "\n" + run_sources(cells))
    return Section("seen_unseen", "Seen vs unseen", text)
