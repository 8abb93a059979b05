"""Per-intent and per-language tables of an intent-recognition run, from its stored samples.

lm-eval reports one number per metric; a user choosing an adapter for a multilingual shop
needs to see which intents and which languages it gets wrong.
"""

from __future__ import annotations

from rich.table import Table

from harness.errors import SlmbenchError
from harness.runs.store import Run
from harness.scoring.intent import intent_breakdown


def intent_tables(run: Run, task: str) -> list[Table]:
    rows = run.samples(task)
    if rows is None:
        known = ", ".join(sorted(run.tasks())) or "none"
        why = "; ".join(run.problems) or f"no per-question records for {task!r} (tasks: {known})"
        raise SlmbenchError(f"{run.path}: {why}")
    scores = intent_breakdown(rows)
    title = (f"{task} in {run.label}: accuracy {scores['accuracy']:.3f}, macro-F1 "
             f"{scores['macro_f1']:.3f} (n={scores['n']})")
    by_intent = Table(title=title)
    for col in ("intent", "precision", "recall", "F1", "support"):
        by_intent.add_column(col, justify="left" if col == "intent" else "right")
    for label, row in scores["per_intent"].items():
        by_intent.add_row(label, f"{row['precision']:.3f}", f"{row['recall']:.3f}",
                          f"{row['f1']:.3f}", str(row["support"]))
    by_language = Table(title=f"{task} per language")
    for col in ("language", "n", "accuracy", "macro-F1"):
        by_language.add_column(col, justify="left" if col == "language" else "right")
    for lang, row in scores["per_language"].items():
        by_language.add_row(lang, str(row["n"]), f"{row['accuracy']:.3f}",
                            f"{row['macro_f1']:.3f}")
    return [by_intent, by_language]
