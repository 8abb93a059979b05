"""Leaderboard sections built from sweep runs: the rank ablation and the full LoRA sweep.

The sweep page ranks configurations twice, by validation loss and by quality, and reports
how well the two orders agree (Spearman): the reference study found that the configuration
with the lowest loss is not the best one, so loss alone should not pick an adapter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.judge.summary import NEAR_CONSTANT_SHARE
from harness.report import plots
from harness.report.baseline_view import run_baselines
from harness.report.leaderboard_data import Records, SweepRun, canonical
from harness.report.mdtable import DASH, code, esc, integer, is_num, num, pm, sources, table
from harness.report.sections import Section
from harness.runs.records import eval_run_of, task_scores
from harness.scoring.baselines import TABLE_COLUMNS, table_cells
from harness.significance import mcnemar_exact, spearman

# Fields of a sweep row that describe the point itself rather than its results.
POINT_FIELDS = ("rank", "alpha", "module_set", "target_modules")
MIN_SPEARMAN_N = 3  # two points always give +1 or -1: no evidence either way


def benchmarks(rows: list[dict[str, Any]]) -> list[str]:
    return sorted({name for row in rows for name in task_scores(row.get("scores"))})


def score(row: dict[str, Any], bench: str) -> dict[str, Any]:
    found = (row.get("scores") or {}).get(bench)
    return found if isinstance(found, dict) else {}


def circular_mean(row: dict[str, Any], bench: str) -> dict[str, Any]:
    found = score(row, bench).get("circular_mean")
    return found if isinstance(found, dict) else {}


def columns_of(rows: list[dict[str, Any]], benches: list[str]) -> list[tuple[str, Any]]:
    """One column per task, and a second for a circular task's mean over rotations.

    Strict circular accuracy is 0 for a model at chance and for one below it alike.
    """
    columns: list[tuple[str, Any]] = []
    for b in benches:
        columns.append((f"{esc(b)} {metric_name(rows, b)}", lambda r, b=b: score(r, b)))
        if any(circular_mean(r, b) for r in rows):
            columns.append((f"{esc(b)} mean over rotations",
                            lambda r, b=b: circular_mean(r, b)))
    return columns


def val_loss(row: dict[str, Any]) -> Any:
    loss = row.get("best_val_loss")
    return loss if is_num(loss) else row.get("best_val_answer_loss")


def differs_only_in_rank(rows: list[dict[str, Any]]) -> bool:
    """Same modules and the same alpha (or the same alpha/rank scale), distinct ranks.

    The rank grid scales alpha with rank so the LoRA update keeps its magnitude; that is
    still a rank-only comparison.
    """
    ranks = [row.get("rank") for row in rows]
    if len(rows) < 2 or not all(is_num(r) and r > 0 for r in ranks) or len(set(ranks)) < len(ranks):
        return False

    def shape(row: dict[str, Any]) -> str:
        rest = {k: v for k, v in (row.get("point") or {}).items() if k not in POINT_FIELDS}
        return canonical([row.get("module_set"), sorted(row.get("target_modules") or []), rest])

    if len({shape(row) for row in rows}) != 1:
        return False
    alphas = [row.get("alpha") for row in rows]
    if not all(is_num(a) for a in alphas):
        return False
    return len(set(alphas)) == 1 or len({a / r for a, r in zip(alphas, ranks, strict=True)}) == 1


def metric_name(rows: list[dict[str, Any]], bench: str) -> str:
    """``accuracy`` for exact match, else the task's own metric (``token_f1``)."""
    metrics = {str(score(row, bench).get("metric") or "").split(",")[0] for row in rows}
    metrics.discard("")
    if metrics == {"circular_strict"}:
        return "strict accuracy"
    if len(metrics) == 1 and not next(iter(metrics)).startswith(("exact_match", "acc")):
        return next(iter(metrics))
    return "accuracy"


def judges_uninformative(rows: list[dict[str, Any]]) -> bool:
    """Every row's judges gave nearly every answer one and the same verdict."""
    shares = [row.get("judge_modal_share") for row in rows]
    return bool(rows) and all(is_num(s) and s >= NEAR_CONSTANT_SHARE for s in shares)


def quality(rows: list[dict[str, Any]]) -> tuple[str, list[Any]]:
    """Judge score when every row has an informative one, else the task metric.

    Several benchmarks: the mean of their accuracies.
    """
    if (rows and all(is_num(row.get("judge_score")) for row in rows)
            and not judges_uninformative(rows)):
        return "judge score", [row["judge_score"] for row in rows]
    benches = benchmarks(rows)
    metric = metric_name(rows, benches[0]) if len(benches) == 1 else "accuracy"
    name = (f"{metric} on {benches[0]}" if len(benches) == 1
            else "mean accuracy over " + ", ".join(benches) if benches else "accuracy")
    values = []
    for row in rows:
        found = [score(row, b).get("value") for b in benches]
        values.append(sum(found) / len(found) if found and all(is_num(v) for v in found)
                      else None)
    return name, values


def loss_quality_spearman(rows: list[dict[str, Any]]) -> tuple[float, int, str]:
    """Spearman between the rank by val loss (lowest first) and by quality (highest first).

    +1: the loss order is the quality order; near 0 or negative: loss does not tell which
    configuration is best. NaN when fewer than three rows have both numbers.
    """
    name, values = quality(rows)
    pairs = [(val_loss(row), q) for row, q in zip(rows, values, strict=True)
             if is_num(val_loss(row)) and is_num(q)]
    if len(pairs) < MIN_SPEARMAN_N:
        return math.nan, len(pairs), name
    return spearman([p[0] for p in pairs], [-p[1] for p in pairs]), len(pairs), name


def _meaning(rows: list[dict[str, Any]], rho: float, n: int, name: str) -> str:
    if math.isnan(rho):
        return ("Too few configurations with both a loss and a quality score (or all tied) "
                "to compare the two orders.\n")
    _, values = quality(rows)
    scored = [(val_loss(r), q, r) for r, q in zip(rows, values, strict=True)
              if is_num(val_loss(r)) and is_num(q)]
    lowest = min(scored, key=lambda s: s[0])
    place = 1 + sum(1 for s in scored if s[1] > lowest[1])
    tied = " (tied)" if sum(1 for s in scored if s[1] == lowest[1]) > 1 else ""
    verdict = ("the loss order largely agrees with the quality order" if rho >= 0.5
               else "validation loss is a poor guide to the best configuration")
    return (f"The lowest-validation-loss configuration ({code(lowest[2].get('run_id'))}) "
            f"ranks {place}{tied} of {n} by {name}, so here {verdict} (the reference study "
            "found that the lowest loss is not the best configuration).\n")


def _point_name(row: dict[str, Any]) -> str:
    return f"r{row.get('rank')} a{row.get('alpha')} {row.get('module_set') or ''}".strip()


def _modules(row: dict[str, Any]) -> str:
    mods = row.get("module_set") or DASH
    if mods == "custom":
        mods += " (" + ", ".join(row.get("target_modules") or []) + ")"
    return esc(mods)


def file_stem(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "run"


def rank_ablation(records: Records, out: Path) -> Section | None:
    sweeps = [s for s in records.sweeps if differs_only_in_rank(s.rows)]
    if not sweeps:
        return None
    parts, series = ["# Rank ablation\n\n"
                     "Sweeps whose configurations differ only in LoRA rank (alpha fixed or "
                     "scaled with rank): what each doubling of the adapter buys.\n\n"], []
    for sweep in sweeps:
        rows = sorted(sweep.rows, key=lambda r: r["rank"])
        benches = benchmarks(rows)
        columns = columns_of(rows, benches)
        body = [[str(r["rank"]), num(r.get("alpha"), "g"), num(r.get("adapter_mb"), ".2f"),
                 integer(r.get("trainable_params")), num(val_loss(r), ".4f"),
                 *(pm(get(r).get("value"), get(r).get("stderr")) for _, get in columns),
                 code(r.get("run_id"))] for r in rows]
        headers = ["rank", "alpha", "adapter MB", "trainable params", "val loss",
                   *(name for name, _ in columns), "point"]
        parts += [f"## {esc(sweep.label)}\n\n",
                  f"Modules: {_modules(rows[0])}. ", sources([sweep.run_id]), "\n",
                  table(headers, body, right=range(0, len(headers) - 1)), "\n"]
        parts.append(baselines_table(rows, benches, records, "rank", rank_name))
        parts.append(paired_table(
            list(zip(rows, rows[1:], strict=False)), benches, records, "doubling",
            "\nNeighbouring ranks, paired on the same questions (exact McNemar on the "
            "questions only one of the two answered correctly):\n\n", rank_name))
        for b in benches:
            series.append((f"{sweep.label} · {b}",
                           [(r.get("adapter_mb"), score(r, b).get("value"),
                             score(r, b).get("stderr"), f"r{r['rank']}") for r in rows]))
    image = plots.rank_ablation_plot(series, out / "rank_ablation.png")
    images = []
    if image is not None:
        images.append(image)
        parts.append(f"![accuracy vs adapter size, labelled by rank]({image.name})\n")
    return Section("rank_ablation", "Rank ablation", "".join(parts), images)


def rank_name(row: dict[str, Any]) -> str:
    return f"r{row['rank']}"


def paired_table(pairs: list[tuple[dict[str, Any], dict[str, Any]]], benches: list[str],
                 records: Records, what: str, intro: str,
                 name: Callable[[dict[str, Any]], str]) -> str:
    """Each pair of points, question by question: the second against the first (McNemar).

    "Diminishing returns" (a doubling of rank) or "nothing lost" (fewer adapted modules) is
    then a measured claim: a pair whose discordant questions split evenly differs by nothing
    these questions can show.
    """
    body = []
    for first, second in pairs:
        for bench in benches:
            pair = [_per_doc(row, bench, records) for row in (first, second)]
            if pair[0] is None or pair[1] is None:
                continue
            shared = sorted(set(pair[0]) & set(pair[1]))
            if not shared:
                continue
            lost = sum(1 for q in shared if pair[0][q] > pair[1][q])
            won = sum(1 for q in shared if pair[1][q] > pair[0][q])
            delta = sum(pair[1][q] - pair[0][q] for q in shared) / len(shared)
            body.append([f"{name(first)} → {name(second)}", esc(bench), str(len(shared)),
                         num(delta, "+.3f"), f"{won} / {lost}",
                         num(mcnemar_exact(lost, won), ".3f")])
    if not body:
        return ""
    headers = [what, "task", "n (paired)", "Δ accuracy", "gained / lost questions",
               "McNemar p"]
    return intro + table(headers, body, right=range(2, 6)) + "\n"


def baselines_table(rows: list[dict[str, Any]], benches: list[str], records: Records,
                    what: str, name: Callable[[dict[str, Any]], str]) -> str:
    """Each point's score beside what a constant answer scores on the same questions.

    A point that "gains" while the adapter answers one letter has learnt the key's prior: the
    paired test against the best constant and the most given answer show it.
    """
    body = []
    for bench in benches:
        for row in rows:
            found = run_baselines(records, str(_run_id(row, bench)), bench)
            if found is not None:
                body.append([esc(name(row)), *(esc(c) for c in table_cells(bench, found))])
    if not body:
        return ""
    headers = [what, *TABLE_COLUMNS]
    return ("\nBeside their baselines, on the same questions: chance (a uniform guess), "
            "always the first option, always the most frequent key, the best single constant "
            "answer and each point's difference from it, paired per question (exact McNemar "
            "p), then the point's most given answer and the normalised entropy of its answers "
            "(0: always the same answer). Circular rows count a question right only when "
            "every rotation is, for the point and the constants alike.\n\n"
            + table(headers, body, right=range(2, len(headers))) + "\n")


def _run_id(row: dict[str, Any], bench: str) -> Any:
    """The eval run that scored ``bench`` for this point: its circular run for a circular task."""
    return row.get("circular_eval_run_id") if bench.endswith("_circular") else eval_run_of(row)


def _per_doc(row: dict[str, Any], bench: str, records: Records) -> dict[str, float] | None:
    """Per question; a circular task's come from the point's circular run, strict."""
    run = records.eval_runs.get(str(_run_id(row, bench)))
    return run.per_doc(bench) if run is not None else None


def _sweep_part(sweep: SweepRun, out: Path) -> tuple[str, Path | None]:
    rows = sweep.rows
    benches = benchmarks(rows)
    judged = any(is_num(r.get("judge_score")) for r in rows)
    columns = columns_of(rows, benches)
    headers = ["point", "rank", "alpha", "modules", "val loss", *(name for name, _ in columns),
               *(["judge"] if judged else []),
               "energy Wh", "train s"]
    body = [[code(r.get("run_id")), num(r.get("rank"), "g"), num(r.get("alpha"), "g"),
             _modules(r), num(val_loss(r), ".4f"),
             *(pm(get(r).get("value"), get(r).get("stderr")) for _, get in columns),
             *([num(r.get("judge_score"), ".2f")] if judged else []),
             num(r.get("energy_wh"), ".2f"), num(r.get("train_wall_s"), ".1f")] for r in rows]
    rho, n, name = loss_quality_spearman(rows)
    grid = sweep.config.get("grid")
    text = (f"## {esc(sweep.label)}\n\n"
            + (f"Grid: {code(grid)}. " if grid else "") + sources([sweep.run_id]) + "\n"
            + table(headers, body, right=[i for i in range(1, len(headers)) if i != 3])
            + f"\nSpearman ρ between the rank by validation loss (lowest first) and the rank "
              f"by {name} (highest first): {num(rho, '+.2f')} (n = {n}).\n"
            + _meaning(rows, rho, n, name)
            + ("Judge scores are shown but not used to rank: every judge gave 90% or more of "
               "the answers one and the same verdict, so they do not tell the configurations "
               "apart.\n" if judged and judges_uninformative(rows) else ""))
    _, values = quality(rows)
    points = [(val_loss(r), q, _point_name(r))
              for r, q in zip(rows, values, strict=True)]
    image = plots.loss_quality_plot(f"{sweep.label}: val loss vs {name}", points, name,
                                    out / f"sweep_{file_stem(sweep.run_id)}.png")
    if image is not None:
        text += f"\n![validation loss vs {name}]({image.name})\n"
    return text + "\n", image


def sweep(records: Records, out: Path) -> Section | None:
    if not records.sweeps:
        return None
    parts, images = ["# LoRA sweeps\n\n"
                     "Every configuration of every sweep with its validation loss, accuracy "
                     "± standard error, judge score (1–10, when judged), training energy and "
                     "wall time; — means not measured.\n\n"], []
    for found in records.sweeps:
        text, image = _sweep_part(found, out)
        parts.append(text)
        if image is not None:
            images.append(image)
    return Section("sweep", "LoRA sweeps", "".join(parts).rstrip("\n") + "\n", images)
