"""Per-judge summaries of a judge run's verdicts, and the table ``slmbench judge`` prints."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from harness.judge.agreement import judges_agreement
from harness.judge.rubric import CRITERIA
from harness.significance import spearman

MIN_PAIRS_FOR_RANK_CORRELATION = 5
NEAR_CONSTANT_SHARE = 0.9


def _judge_rubric(rows: list[dict[str, Any]]) -> dict[str, Any]:
    judged = [r for r in rows if r["status"] == "judged"]
    out: dict[str, Any] = {"judge_score": None, "n_judged": len(judged),
                           "n_unjudged": len(rows) - len(judged)}
    if judged:
        out["judge_score"] = round(statistics.fmean(r["overall"] for r in judged), 4)
        out["criteria"] = {c: round(statistics.fmean(r["scores"][c] for r in judged), 4)
                           for c in CRITERIA}
    if len(judged) >= MIN_PAIRS_FOR_RANK_CORRELATION:
        # A judge that gives (nearly) every answer the same verdict carries no information; a
        # 135M judge does exactly that (1, 2, 3, 4 down the criteria) even when a grammar
        # makes every verdict well-formed.
        verdicts = Counter(tuple(r["scores"][c] for c in CRITERIA) for r in judged)
        out["modal_share"] = round(verdicts.most_common(1)[0][1] / len(judged), 4)
    # Does the judge rank answers the way the task's own metric does? A judge that does not
    # track token F1 at all is either seeing what F1 misses, or not reading the answers.
    paired = [(r["overall"], r["reference_score"]) for r in judged
              if r.get("reference_score") is not None]
    if len(paired) >= MIN_PAIRS_FOR_RANK_CORRELATION:
        rho = spearman([p[0] for p in paired], [p[1] for p in paired])
        out["spearman_vs_reference"] = None if math.isnan(rho) else round(rho, 4)
        out["n_reference"] = len(paired)
    return out


def _judge_pairwise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    judged = [r for r in rows if r["status"] == "judged"]
    wins = Counter(r["winner"] for r in judged)
    n = len(judged)
    inconsistent = sum(not r["consistent"] for r in judged)
    biased = sum(r["position_bias"] for r in judged)
    return {"judge_score": round((wins["A"] + wins["tie"] / 2) / n, 4) if n else None,
            "n_judged": n, "n_unjudged": len(rows) - n, "wins_a": wins["A"],
            "wins_b": wins["B"], "ties": wins["tie"], "inconsistent": inconsistent,
            "inconsistent_rate": round(inconsistent / n, 4) if n else None,
            "position_bias_rate": round(biased / n, 4) if n else None}


def summarize(records: list[dict[str, Any]], judges: list[str], mode: str) -> dict[str, Any]:
    """Per-judge stats, unjudged reasons and inter-judge agreement.

    ``judge_score`` is the mean overall score (rubric) or A's win rate with ties as half
    (pairwise); ``agreement`` (per pair of judges) is there when there are two or more.
    """
    per_judge, values, reasons = {}, {}, {}
    for name in judges:
        rows = [r for r in records if r["judge"] == name]
        per_judge[name] = _judge_rubric(rows) if mode == "rubric" else _judge_pairwise(rows)
        field = "overall" if mode == "rubric" else "winner"
        values[name] = {r["key"]: r[field] for r in rows if r["status"] == "judged"}
        counts = Counter(r["reason"] for r in rows if r["status"] == "unjudged")
        if counts:
            reasons[name] = [{"reason": k, "n": v} for k, v in counts.most_common(5)]
    summary: dict[str, Any] = {"per_judge": per_judge}
    if reasons:
        summary["unjudged_reasons"] = reasons
    if len(judges) >= 2:
        summary["agreement"] = judges_agreement(values, categorical=mode == "pairwise")
    return summary


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def print_summary(manifest: dict[str, Any], folder: Path, notes: list[str] = ()) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    summary, mode = manifest["summary"], manifest["config"]["mode"]
    table = Table(title=f"slmbench judge ({mode}) of {manifest.get('label')}")
    if mode == "rubric":
        columns = ("judge", "mean score", *CRITERIA, "ρ vs task metric", "judged", "unjudged")
    else:
        columns = ("judge", "A win rate", "A", "B", "ties", "inconsistent", "position bias",
                   "judged", "unjudged")
    for col in columns:
        table.add_column(col)
    for name, stats in summary["per_judge"].items():
        if mode == "rubric":
            crit = stats.get("criteria", {})
            cells = [stats["judge_score"], *(crit.get(c) for c in CRITERIA),
                     stats.get("spearman_vs_reference")]
        else:
            cells = [stats["judge_score"], stats["wins_a"], stats["wins_b"], stats["ties"],
                     stats["inconsistent"], stats["position_bias_rate"]]
        table.add_row(name, *map(_fmt, cells), str(stats["n_judged"]), str(stats["n_unjudged"]))
    console.print(table)
    if summary.get("agreement"):
        agree = Table(title="inter-judge agreement")
        keys = [k for k in ("n", "cohen_kappa", "weighted_kappa", "spearman", "agreement_rate")
                if k in summary["agreement"][0]]
        for col in ("judges", *keys):
            agree.add_column(col)
        for row in summary["agreement"]:
            agree.add_row(" vs ".join(row["judges"]), *(_fmt(row[k]) for k in keys))
        console.print(agree)
    for name, stats in summary["per_judge"].items():
        share = stats.get("modal_share")
        if share is not None and share >= NEAR_CONSTANT_SHARE:
            console.print(f"[yellow]warning:[/yellow] {name} gave {share:.0%} of its "
                          f"{stats['n_judged']} answers the very same scores: it hardly tells "
                          "them apart, so its mean and its agreement figures mean little")
    for name, reasons in summary.get("unjudged_reasons", {}).items():
        for entry in reasons:
            console.print(f"[red]unjudged[/red] {name} x{entry['n']}: {entry['reason']}")
    console.print(f"judge run: {folder} (calls {manifest.get('calls')}, cache hits "
                  f"{manifest.get('cache_hits')})")
