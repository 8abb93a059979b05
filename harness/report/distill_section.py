"""The distillation study's comparison: its four arms x every free-form metric, paired.

An eval run labelled ``distill:<arm>`` scored a distilled student; the arms of the study are
``no_sft`` (neither model fine-tuned before distillation), ``sft_teacher``, ``sft_student``
and ``sft_both``; any other ``distill:*`` label (e.g. ``distill:teacher``) is shown as a
reference row. Each arm is tested against ``no_sft`` on the same questions:

* per-answer metrics (exact match, token F1, ROUGE, METEOR, embedding cosine): paired
  bootstrap of the mean difference (``significance.paired_bootstrap``, 10,000 resamples);
* corpus metrics (BLEU, chrF, TER): sacrebleu's own paired bootstrap resampling (1,000
  resamples), which recomputes the corpus statistic on each resample, as a mean of
  per-answer values would not.

Runs that did not score the same questions are not compared; the page says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.report.leaderboard_data import Records, latest
from harness.report.mdtable import DASH, esc, is_num, table
from harness.report.sections import Section, run_sources
from harness.significance import paired_bootstrap

PREFIX = "distill:"
ARMS = ("no_sft", "sft_teacher", "sft_student", "sft_both")
BASELINE = "no_sft"
PER_ANSWER = ("exact_match", "token_f1", "rouge1", "rouge2", "rougeL", "meteor", "embed_cos")
PER_CORPUS = {"bleu": "BLEU", "chrf": "chrF2", "ter": "TER"}  # sacrebleu's result names
LOWER_IS_BETTER = {"ter"}
ALPHA = 0.05


def _arm_order(arm: str) -> tuple[int, str]:
    return (ARMS.index(arm), arm) if arm in ARMS else (len(ARMS), arm)


def _rows(run, task: str) -> dict[str, dict[str, Any]] | None:
    rows = run.samples(task)
    if not rows or not all("metrics" in r for r in rows):
        return None
    return {r["id"]: r for r in rows}


def corpus_tests(pairs: dict[str, list[tuple[str, str]]], baseline: str,
                 n_resamples: int = 1000) -> dict[str, dict[str, dict[str, float]]]:
    """Corpus score of each system and sacrebleu's paired-bootstrap p against ``baseline``.

    ``pairs[name]`` holds ``(reference, prediction)`` per question, in the same order for
    every system. Returns ``{metric: {system: {"value", "p_value"}}}``.
    """
    from sacrebleu.metrics import BLEU, CHRF, TER
    from sacrebleu.significance import PairedTest

    names = [baseline] + sorted(n for n in pairs if n != baseline)
    references = [ref for ref, _ in pairs[baseline]]
    systems = [(name, [pred for _, pred in pairs[name]]) for name in names]
    metrics = {"BLEU": BLEU(), "chrF2": CHRF(), "TER": TER()}
    _, results = PairedTest(systems, metrics, [references], test_type="bs",
                            n_samples=n_resamples)()
    # sacrebleu counts resampled differences strictly beyond the observed one, so a system
    # identical to the baseline would get its smallest p; there is nothing to test there.
    same = {name for name, preds in systems if preds == systems[0][1]}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for metric, name in PER_CORPUS.items():
        out[metric] = {system: {"value": float(res.score),
                                "p_value": 1.0 if system in same and system != baseline
                                else None if res.p_value is None else float(res.p_value)}
                       for (system, _), res in zip(systems, results[name], strict=True)}
    return out


def _mark(delta: float, p: float | None, metric: str) -> str:
    if p is None or p >= ALPHA or delta == 0:
        return ""
    better = delta < 0 if metric in LOWER_IS_BETTER else delta > 0
    return " ✔" if better else " ✘"


def _task_tables(task: str, runs: dict[str, Any]) -> tuple[str, list[str]]:
    rows = {arm: _rows(run, task) for arm, run in runs.items()}
    problems = [f"{esc(arm)}: no per-answer metrics in its samples (scored before they were "
                "recorded)" for arm, r in rows.items() if r is None]
    rows = {arm: r for arm, r in rows.items() if r is not None}
    if BASELINE not in rows:
        return "", problems + [f"no `{PREFIX}{BASELINE}` run of {task} to pair against"]
    ids = sorted(rows[BASELINE])
    for arm in [a for a in rows if a != BASELINE]:
        if sorted(rows[arm]) != ids:
            problems.append(f"{esc(arm)}: scored other questions than {BASELINE}; not compared")
            del rows[arm]
    arms = sorted(rows, key=_arm_order)
    metrics = [m for m in PER_ANSWER
               if all(m in rows[a][i]["metrics"] for a in arms for i in ids)]
    values: dict[str, dict[str, float]] = {a: {} for a in arms}
    tests: dict[str, dict[str, tuple[float, float, float, float]]] = {a: {} for a in arms}
    for metric in metrics:
        base = [rows[BASELINE][i]["metrics"][metric] for i in ids]
        for arm in arms:
            own = [rows[arm][i]["metrics"][metric] for i in ids]
            values[arm][metric] = sum(own) / len(own)
            if arm != BASELINE:
                t = paired_bootstrap(base, own)
                tests[arm][metric] = (t["delta"], t["ci_low"], t["ci_high"], t["p_value"])
    corpus_metrics: list[str] = []
    if all(rows[a][i].get("corpus_pair") for a in arms for i in ids):
        scored = corpus_tests({a: [tuple(rows[a][i]["corpus_pair"]) for i in ids] for a in arms},
                              BASELINE)
        corpus_metrics = list(PER_CORPUS)
        for metric, per_system in scored.items():
            for arm in arms:
                values[arm][metric] = per_system[arm]["value"]
                if arm != BASELINE:
                    delta = per_system[arm]["value"] - per_system[BASELINE]["value"]
                    tests[arm][metric] = (delta, None, None, per_system[arm]["p_value"])
    columns = metrics + corpus_metrics
    value_rows = [[esc(a)] + [f"{values[a][m]:.3f}" if m in PER_ANSWER else f"{values[a][m]:.2f}"
                              for m in columns] for a in arms]
    delta_rows = []
    for arm in arms:
        if arm == BASELINE:
            continue
        cells = [esc(arm)]
        for m in columns:
            delta, low, high, p = tests[arm][m]
            spec = ".3f" if m in PER_ANSWER else ".2f"
            ci = f" [{low:+{spec}}, {high:+{spec}}]" if is_num(low) and is_num(high) else ""
            p_text = DASH if not is_num(p) else "p<0.001" if p < 0.001 else f"p={p:.3f}"
            cells.append(f"{delta:+{spec}}{ci} {p_text}{_mark(delta, p, m)}")
        delta_rows.append(cells)
    headers = ["arm", *columns]
    text = (f"## {esc(task)} (n={len(ids)} questions)\n\n"
            + table(headers, value_rows, right=range(1, len(headers)))
            + f"\nDifference from `{BASELINE}` (arm − {BASELINE}; per-answer metrics: 95% "
            "bootstrap CI; corpus metrics: sacrebleu paired bootstrap p):\n\n"
            + (table(headers, delta_rows, right=range(1, len(headers))) if delta_rows
               else "(no other arm)\n"))
    return text, problems


def distill_arms(records: Records, out: Path) -> Section | None:
    chosen = [c for c in latest(records.evals).values() if c.label.startswith(PREFIX)]
    tasks = sorted({c.task for c in chosen})
    parts, problems = [], []
    for task in tasks:
        cells = [c for c in chosen if c.task == task]
        runs = {c.label[len(PREFIX):]: records.eval_runs[c.run_id] for c in cells
                if c.run_id in records.eval_runs}
        text, found = _task_tables(task, runs)
        if text:
            parts.append(text)
        problems += [f"{task}: {p}" for p in found]
    if not parts:
        return None
    notes = "".join(f"- {p}\n" for p in problems)
    text = ("# Distillation: the study's four arms\n\n"
            "Each arm is a student distilled from a teacher; the arms differ in which of the "
            "two was fine-tuned (SFT) on the task before distillation. Higher is better, "
            "except TER. ✔/✘: better/worse than `no_sft` at p < 0.05.\n\n"
            + "\n".join(parts) + ("\n" + notes if notes else "") + "\n" + run_sources(chosen))
    return Section("distill", "Distillation: the four arms", text)
