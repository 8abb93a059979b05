"""``slmbench campaign``: the reliability campaign, its figures and its page.

Parts: fuzzed data (``fuzz_data``), tampered artefacts (``tamper``), secrets and safety
(``secrets``), killed runs (``killed_runs``). Each part returns counts; the page
``reliability.md`` (with a PNG figure) and the raw ``reliability.json`` are written atomically
to the output folder. The exit status is 1 when any count that must be zero is not, so CI can
run the short version as a gate.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.report.mdtable import esc, table
from harness.runs.atomic import write_json_atomic, write_text_atomic

PARTS = ("fuzz", "tamper", "secrets", "killed")
QUICK_KILL_JOBS = ("lm-eval", "judge")


def _fuzz(data_dir: Path, work: Path, total: int, progress) -> dict[str, Any]:
    from harness.reliability.fuzz_data import run_fuzz

    rows = []
    for o in run_fuzz(data_dir, work / "fuzz", total=total, progress=progress):
        rows.append({"benchmark": o.benchmark, "format": o.fmt,
                     "injected": sum(o.injected.values()), "mutations": dict(o.injected),
                     "real_rows": o.real_rows, "crashes": o.crashes,
                     "wrongly_kept": dict(o.wrongly_kept),
                     "wrongly_dropped": dict(o.wrongly_dropped),
                     "unreported": dict(o.unreported)})
    return {"rows": rows}


def _tamper(zoo: Path, run_folder: Path, work: Path) -> dict[str, Any]:
    from harness.reliability.tamper import run_adapter_cases, run_record_cases

    cases = run_adapter_cases(zoo, work / "tamper") + run_record_cases(run_folder,
                                                                        work / "tamper")
    return {"cases": [asdict(c) for c in cases]}


def _secrets(work: Path) -> dict[str, Any]:
    from harness.reliability.secrets import run_secrets

    return {"checks": [asdict(c) for c in run_secrets(work / "secrets")]}


def _killed(work: Path, kills: int, jobs: tuple[str, ...], progress) -> dict[str, Any]:
    from harness.reliability.killed_runs import run_killed

    return run_killed(work / "killed", kills=kills, jobs=jobs, progress=progress)


def failures(results: dict[str, Any]) -> list[str]:
    """Every count that must be zero and is not, one line each."""
    out = []
    for row in results.get("fuzz", {}).get("rows", []):
        for key in ("crashes", "wrongly_kept", "wrongly_dropped", "unreported"):
            if row[key]:
                out.append(f"fuzz {row['benchmark']} ({row['format']}): {key} {row[key]}")
    for case in results.get("tamper", {}).get("cases", []):
        if case["outcome"] != "refused":
            out.append(f"tamper {case['artefact']}: {case['change']}: {case['outcome']}")
    for check in results.get("secrets", {}).get("checks", []):
        if not check["passed"]:
            out.append(f"secrets: {check['name']}: {check['detail']}")
    for kill in results.get("killed", {}).get("kills", []):
        found = [f"{key} {kill[key]}" for key in ("lost", "duplicated") if kill[key]]
        found += [f"corrupt {c}" for c in kill["corrupt"]] + kill["differs"]
        if kill["rerun_rc"] != 0:
            found.append(f"re-run failed: {kill['rerun_error']}")
        out += [f"killed {kill['job']} #{kill['attempt']}: {f}" for f in found]
    return out


def run_campaign(data_dir: Path, zoo: Path, run_folder: Path, work: Path, out: Path,
                 parts: tuple[str, ...] = PARTS, fuzz_rows: int = 10_000, kills: int = 20,
                 kill_jobs: tuple[str, ...] | None = None) -> dict[str, Any]:
    from rich.progress import Progress

    results: dict[str, Any] = {"parts": list(parts)}
    with Progress(transient=True) as progress:
        bar = progress.add_task("campaign", total=len(parts))
        for part in parts:
            started = time.perf_counter()
            progress.update(bar, description=f"campaign: {part}")
            if part == "fuzz":
                results[part] = _fuzz(data_dir, work, fuzz_rows,
                                      lambda name: progress.update(
                                          bar, description=f"campaign: fuzz {name}"))
            elif part == "tamper":
                results[part] = _tamper(zoo, run_folder, work)
            elif part == "secrets":
                results[part] = _secrets(work)
            elif part == "killed":
                from harness.reliability.killed_runs import JOBS

                results[part] = _killed(work, kills, kill_jobs or JOBS,
                                        lambda name: progress.update(
                                            bar, description=f"campaign: killed {name}"))
            results[part]["wall_s"] = round(time.perf_counter() - started, 1)
            progress.advance(bar)
    results["failures"] = failures(results)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "reliability.json", results)
    figure = _figure(results, out / "reliability.png")
    write_text_atomic(out / "reliability.md", render(results, figure))
    return results


def _figure(results: dict[str, Any], path: Path) -> Path | None:
    rows = results.get("fuzz", {}).get("rows", [])
    cases = results.get("tamper", {}).get("cases", [])
    kills = results.get("killed", {}).get("kills", [])
    if not rows and not cases and not kills:
        return None
    from harness.report.plots import _render

    def draw(ax) -> None:
        labels, injected, bad = [], [], []
        for row in rows:
            labels.append(f"{row['benchmark']}\n{row['format'][:22]}")
            injected.append(row["injected"])
            bad.append(len(row["crashes"]) + sum(row["wrongly_kept"].values())
                       + sum(row["wrongly_dropped"].values()) + sum(row["unreported"].values()))
        if kills:
            labels.append("killed\nruns")
            injected.append(len(kills))
            bad.append(sum(1 for k in kills if _kill_failed(k)))
        if cases:
            outcomes = Counter(c["outcome"] for c in cases)
            labels.append("tampered\nartefacts")
            injected.append(len(cases))
            bad.append(len(cases) - outcomes.get("refused", 0))
        y = list(range(len(labels)))
        ax.barh(y, injected, color="#9bb7d4", label="bad inputs given")
        ax.barh(y, bad, color="#c0392b", label="mishandled (must be 0)")
        for i, value in enumerate(bad):
            ax.annotate(str(value), (injected[i], i), xytext=(3, -3),
                        textcoords="offset points", fontsize=7)
        ax.set_yticks(y, labels, fontsize=6)
        ax.invert_yaxis()
        ax.set_xlabel("rows / cases")
        ax.set_title("Reliability campaign: bad inputs, and those mishandled")
        ax.legend(fontsize=7, loc="lower right")

    return _render(path, draw)


def _count(d: dict[str, int]) -> str:
    return str(sum(d.values())) if isinstance(d, dict) else str(len(d))


def render(results: dict[str, Any], figure: Path | None) -> str:
    parts = ["# Reliability campaign\n\n",
             "Generated by `scripts/campaign.sh` (`slmbench campaign`); "
             "the raw counts are in `reliability.json`. Every count in the mishandled columns "
             "must be 0.\n\n"]
    if figure is not None:
        parts.append(f"![campaign]({figure.name})\n\n")
    fuzz = results.get("fuzz")
    if fuzz:
        rows = fuzz["rows"]
        total = sum(r["injected"] for r in rows)
        parts.append(f"## Fuzzed data ({total:,} bad rows, {fuzz['wall_s']} s)\n\n"
                     "Bad rows mixed into copies of the real files, loaded as a run loads "
                     "them. Crashes: exceptions out of the load. Wrongly kept: bad rows that "
                     "loaded. Wrongly dropped: real rows, or valid oddities (duplicate "
                     "choices, extra fields, CRLF or CR line ends, negative numeric answers), "
                     "that went missing. Unreported: skipped rows whose report line does not "
                     "name their file and row.\n\n")
        body = [[esc(r["benchmark"]), esc(r["format"]), f"{r['injected']:,}",
                 f"{r['real_rows']:,}", str(len(r["crashes"])), _count(r["wrongly_kept"]),
                 _count(r["wrongly_dropped"]), _count(r["unreported"])] for r in rows]
        parts.append(table(["benchmark", "file", "bad rows", "real rows kept", "crashes",
                            "wrongly kept", "wrongly dropped", "unreported"], body,
                           right=range(2, 8)))
        mutations: Counter = Counter()
        for r in rows:
            mutations.update(r["mutations"])
        parts.append("\nBad rows by kind: " + ", ".join(
            f"{name} {n:,}" for name, n in sorted(mutations.items())) + ".\n\n")
    tamper = results.get("tamper")
    if tamper:
        cases = tamper["cases"]
        refused = sum(c["outcome"] == "refused" for c in cases)
        parts.append(f"## Tampered artefacts ({refused} of {len(cases)} refused, "
                     f"{tamper['wall_s']} s)\n\n"
                     "Each change on a fresh copy, handed to the code that reads it. "
                     "Refused: a one-line error, or (run store) the file listed as a problem "
                     "and left out.\n\n")
        body = [[esc(c["artefact"]), esc(c["change"]), c["outcome"],
                 esc(_short_path(c["detail"]))] for c in cases]
        parts.append(table(["artefact", "change", "outcome", "message (start)"], body))
        parts.append("\n")
    secrets = results.get("secrets")
    if secrets:
        checks = secrets["checks"]
        passed = sum(c["passed"] for c in checks)
        parts.append(f"## Secrets and safety ({passed} of {len(checks)} passed)\n\n")
        body = [[esc(c["name"]), "pass" if c["passed"] else "FAIL", esc(c["detail"])]
                for c in checks]
        parts.append(table(["check", "result", "detail"], body))
        parts.append("\n")
    killed = results.get("killed")
    if killed:
        parts.append(_render_killed(killed))
    if results.get("failures"):
        parts.append("\n## Failures\n\n" + "".join(f"- {esc(f)}\n"
                                                   for f in results["failures"]))
    return "".join(parts)


def _kill_failed(kill: dict[str, Any]) -> bool:
    return bool(kill["lost"] or kill["duplicated"] or kill["corrupt"] or kill["differs"]
                or kill["rerun_rc"])


def _render_killed(killed: dict[str, Any]) -> str:
    kills = killed["kills"]
    bad = sum(_kill_failed(k) for k in kills)
    out = [f"## Killed runs ({len(kills)} kills, {len(kills) - bad} recovered exactly, "
           f"{killed['wall_s']} s)\n\n"
           "Each command ran once uninterrupted (the reference), on a tiny Llama and a "
           "learnable task, the judge played by a deterministic loopback server. Then, per "
           "kill, the command started afresh, its process group got SIGKILL at a seeded "
           "random moment of the reference's wall time (start-up included), and the same "
           "command ran again to the end. Lost: finished runs missing after the re-run. "
           "Duplicated: runs recorded twice. Corrupt: run folders refused, files failing "
           "their sha256, JSON/JSONL/safetensors files that do not parse. Differs: answers, "
           "scores, adapter weights, loss curves, sweep points, bench accuracy or verdicts "
           "unlike the reference's (times are not compared). Redone: killed part + re-run "
           "- reference, process start-ups included (below 0 when the machine was less busy "
           "than during the reference). A kill drawn after the run had ended is drawn again, "
           "earlier (\"mid-run\" counts the kills that landed in a running command).\n\n"]
    body = []
    for job in dict.fromkeys(k["job"] for k in kills):
        mine = [k for k in kills if k["job"] == job]
        ref = killed["references"][job]
        body.append([esc(job), str(len(mine)), str(sum(k["landed"] == "mid-run" for k in mine)),
                     f"{ref['wall_s']}", str(sum(k["lost"] for k in mine)),
                     str(sum(k["duplicated"] for k in mine)),
                     str(sum(len(k["corrupt"]) for k in mine)),
                     str(sum(bool(k["differs"]) for k in mine)),
                     str(sum(k["rerun_rc"] != 0 for k in mine)),
                     f"{sum(k['redone_s'] for k in mine) / len(mine):.1f}",
                     f"{100 * sum(k['redone_s'] for k in mine) / len(mine) / ref['wall_s']:.0f}%"])
    out.append(table(["command", "kills", "mid-run", "reference s", "lost", "duplicated",
                      "corrupt", "differs", "re-run failed", "redone s (mean)",
                      "redone / reference"], body, right=range(1, 11)))
    out.append("\nEach kill: " + "; ".join(
        f"{k['job']} at {k['kill_at_s']} s ({k['landed']})" for k in kills) + ".\n")
    return "".join(out)


def _short_path(text: str) -> str:
    """Messages name temporary copies; keep the part after the copy's folder."""
    words = []
    for word in text.split():
        if "/tmp" in word or "/campaign" in word:
            word = ".../" + "/".join(word.rstrip(":").split("/")[-2:]) + (
                ":" if word.endswith(":") else "")
        words.append(word)
    return " ".join(words)[:140]
