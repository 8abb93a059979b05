"""Killed runs: ``kill -9`` real slmbench commands at random moments, re-run them, count damage.

Each command (``lm-eval``, ``train``, ``sweep``, ``bench``, ``judge``) runs once uninterrupted
as the reference, on a tiny Llama and a learnable task (seconds per run on 2 cores), with the
judge played by a deterministic loopback server. Then, for each kill, the same command starts
in a fresh folder, its whole process group gets SIGKILL at a seeded random moment of the
reference's wall time (import and model load included: a real crash picks no good moment;
a moment past the end of the run is drawn again, earlier), and the same command is run again
to the end. Every run happens in the same folder (moved aside afterwards), because run
identities name their inputs' paths. Counted against the reference:

- lost: finished runs the reference has and the re-run does not;
- duplicated: finished runs more than once (or more runs of a kind than the reference made;
  a bench run that had finished before its kill is the exception: its command again is a new
  measurement by design);
- corrupt: run folders the store refuses, files failing their recorded sha256, and JSON,
  JSON Lines or safetensors files that do not parse (dot-folders, the work areas, excepted);
- differing: results unlike the reference's (answers and scores, adapter weights and loss
  curves, sweep points, bench accuracy, verdicts; times, and whether a verdict came from the
  cache, are not results);
- work redone: killed part + re-run - reference, in seconds (process starts included).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.hashing import sha256_json
from harness.reliability.loopback import LoopbackServer

JOBS = ("lm-eval", "train", "sweep", "bench", "judge")
# Keys whose values are measurements of time, memory or energy, or where a run sat: they
# legitimately differ between two runs of the same work and are not compared.
VOLATILE = {"wall_s", "_wall_s", "train_wall_s", "tokens_per_s", "peak_rss_mb", "peak_vram_mb",
            "energy", "energy_wh", "started", "finished", "environment", "meta", "load_s",
            "manifest_sha256", "latency_s", "latency_ms", "elapsed_s", "path", "run_folder",
            "cached", "calls", "cache_hits", "eval_wall_s"}
JUDGE_ITEMS = 40
# Commands whose finished run is never reused: the same command again is a new measurement
# (bench). Only when a kill lands after such a run finished are two runs expected.
NEW_RUN_WHEN_REPEATED = {"bench"}


@dataclass
class Kill:
    job: str
    attempt: int
    kill_at_s: float
    landed: str              # "mid-run", or "after exit" when the process had already ended
    rerun_rc: int
    lost: int
    duplicated: int
    corrupt: list[str]
    differs: list[str]
    killed_wall_s: float
    rerun_wall_s: float
    reference_wall_s: float
    rerun_error: str = ""

    @property
    def redone_s(self) -> float:
        return round(self.killed_wall_s + self.rerun_wall_s - self.reference_wall_s, 1)


@dataclass
class Fixture:
    """What every attempt shares: the tiny model, its data, the judge's items and server."""

    root: Path
    base: Path
    data: Path
    items: Path
    judge_url: str
    grid: Path
    references: dict[str, tuple[Any, Counter, float]] = field(default_factory=dict)


def _judge_reply(body: bytes, _headers) -> tuple[int, dict]:
    """A verdict that depends only on the judged text (the same on every run)."""
    from harness.judge.rubric import CRITERIA

    text = json.loads(body)["messages"][-1]["content"]
    score = 1 + int(sha256_json(text)[:4], 16) % 10
    verdict = {c: {"score": score, "reason": f"{c}: {score}"} for c in CRITERIA}
    return 200, {"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": json.dumps(verdict)}}]}


def _build_fixture(root: Path, judge_url: str) -> Fixture:
    from harness.reliability.tiny_fixtures import build_tiny_base, write_tiny_teletables

    root.mkdir(parents=True, exist_ok=True)
    base = root / "base"
    if not (base / "config.json").is_file():
        build_tiny_base(base, hidden_size=64, init_range=0.3)
    data = root / "data"
    if not (data / "teletables").is_dir():
        write_tiny_teletables(data, rows=120)
    items = root / "judge_items.jsonl"
    items.write_text("".join(json.dumps({
        "id": f"q{i}", "question": f"How do I reset router model {i}?",
        "response": f"Hold the reset button for {i % 7 + 5} seconds.",
        "reference": "Hold reset for 10 s."}) + "\n" for i in range(JUDGE_ITEMS)))
    grid = root / "grid.yaml"
    grid.write_text("rank: [4, 8]\nalpha_ratio: [2]\nmodules: [all]\n")
    return Fixture(root, base, data, items, judge_url, grid)


def _argv(job: str, fx: Fixture, work: Path) -> list[str]:
    slm = [sys.executable, "-m", "harness.cli"]
    train = ["--base-model", str(fx.base), "--data-dir", str(fx.data), "--eval-every", "4",
             "--max-val-examples", "16", "--lr", "5e-3", "--no-chat-template"]
    if job == "lm-eval":
        return [*slm, "lm-eval", "--model", "hf", "--model_args", f"pretrained={fx.base}",
                "--tasks", "teletables,teletables_mc", "--limit", "24",
                "--metadata", f"data_dir={fx.data}"]
    if job == "train":
        return [*slm, "train", "teletables", *train, "--max-steps", "24", "--epochs", "4",
                "--rank", "4", "--alpha", "8", "--output-dir", str(work / "out" / "train")]
    if job == "sweep":
        return [*slm, "sweep", "teletables", *train, "--grid", str(fx.grid), "--max-steps", "8",
                "--eval-limit", "8", "--sweep-dir", str(work / "out" / "sweep")]
    if job == "bench":
        return [*slm, "bench", "--model", str(fx.base), "--formats", "fp32,bf16",
                "--task", "teletables", "--limit", "8", "--data-dir", str(fx.data),
                "--prompts", "4", "--gen-tokens", "8", "--min-runs", "2", "--min-seconds", "0",
                "--synthetic", "none", "--no-chat-template",
                "--output-dir", str(work / "out" / "bench")]
    if job == "judge":
        return [*slm, "judge", "--items", str(fx.items), "--judge", f"{fx.judge_url}=stub",
                "--workers", "1", "--rps", "0", "--store", str(work / "runs")]
    raise ValueError(job)


def _start(job: str, fx: Fixture, work: Path) -> subprocess.Popen:
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SLMBENCH_RUNS": str(work / "runs"), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    log = (work / f"{job}.log").open("ab")
    return subprocess.Popen(_argv(job, fx, work), stdout=log, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)


def _run_to_end(job: str, fx: Fixture, work: Path) -> tuple[int, float]:
    started = time.perf_counter()
    rc = _start(job, fx, work).wait()
    return rc, time.perf_counter() - started


def _strip(value: Any, work: Path) -> Any:
    """The value with measurements dropped and the attempt's own folder renamed."""
    if isinstance(value, dict):
        return {k: _strip(v, work) for k, v in sorted(value.items()) if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v, work) for v in value]
    if isinstance(value, str):
        return value.replace(str(work), "<work>")
    return value


def _outcome(run, work: Path) -> Any:
    """What a finished run produced that an uninterrupted run must reproduce exactly."""
    kind = run.kind
    if kind == "eval":
        return {task: [[r["id"], r["resps"], r["parsed"], r["score"]] for r in run.samples(task)]
                for task in sorted(run.tasks())}
    if kind == "train":
        record = run.json("train_record.json") or {}
        config = run.json("adapter/adapter_config.json") or {}
        if isinstance(config.get("target_modules"), list):  # peft writes a set: any order
            config["target_modules"] = sorted(config["target_modules"])
        return {"weights": {n: d for n, d in run.manifest["files"].items()
                            if n.endswith(".safetensors")}, "adapter_config": config,
                "loss_curve": [[p["step"], p["loss"]] for p in record["train"]["loss_curve"]],
                "val_curve": _strip(record["train"]["val_curve"], work)}
    if kind == "sweep":
        return [_strip(row, work) for row in run.jsonl("results.jsonl") or []]
    if kind == "bench":
        results = (run.json("bench.json") or {}).get("results", {})
        return {name: r.get("skipped") or r.get("crashed")
                or {k: r["accuracy"][k] for k in ("ids", "per_doc", "value")}
                for name, r in sorted(results.items())}
    if kind == "judge":
        return [_strip(row, work) for row in run.jsonl("verdicts.jsonl") or []]
    return None


def _unreadable_files(work: Path) -> list[str]:
    """JSON, JSON Lines and safetensors files a reader would open, that do not parse."""
    bad = []
    for path in sorted(work.rglob("*")):
        rel = path.relative_to(work)
        if not path.is_file() or any(p.startswith(".") for p in rel.parts[:-1]):
            continue
        try:
            if path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
            elif path.suffix == ".jsonl":
                for line in path.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        json.loads(line)
            elif path.suffix == ".safetensors":
                from safetensors import safe_open

                with safe_open(str(path), framework="pt") as fh:
                    fh.keys()
        except Exception as err:  # noqa: BLE001 - any failure to read is the finding
            bad.append(f"{rel}: {type(err).__name__}")
    return bad


def inspect(work: Path) -> tuple[dict[str, Any], Counter, list[str]]:
    """(outcome per finished run, runs per kind and identity, corrupt findings) of a folder."""
    from harness.runs.store import find_runs

    runs, refused = find_runs(work)
    outcomes: dict[str, Any] = {}
    kinds: Counter = Counter()
    corrupt = list(refused)
    for run in runs:
        corrupt.extend(run.problems)
        identity = run.run_id if run.kind != "bench" else "bench"  # bench ids are timestamps
        kinds[(run.kind, identity)] += 1
        if not run.problems:
            outcomes[f"{run.kind}:{identity}"] = _outcome(run, work)
    corrupt.extend(_unreadable_files(work))
    return outcomes, kinds, [c.replace(str(work), "<work>") for c in corrupt]


def _differences(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    return [f"{name}: differs from the uninterrupted run" for name in sorted(want)
            if name in got and got[name] != want[name]]


def _set_aside(live: Path, keep: Path) -> None:
    keep.parent.mkdir(parents=True, exist_ok=True)
    live.rename(keep)


def _kill_mid_run(job: str, fx: Fixture, work: Path, rng: random.Random,
                  reference_wall: float) -> tuple[float, str, float]:
    """SIGKILL ``job``'s process group at a seeded random moment while it still runs.

    A moment drawn past the end of a run that came out faster than its reference kills
    nothing; the attempt is then discarded and another moment, earlier, drawn (three tries;
    the last is recorded as it landed).
    """
    import shutil

    scale = 0.9
    for tries in range(3):
        kill_at = round(rng.uniform(0.05, scale) * reference_wall, 2)
        started = time.perf_counter()
        proc = _start(job, fx, work)
        try:
            proc.wait(timeout=kill_at)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return kill_at, "mid-run", time.perf_counter() - started
        if tries < 2:
            shutil.rmtree(work)
            scale /= 2
    return kill_at, "after exit", time.perf_counter() - started


def kill_once(job: str, fx: Fixture, work: Path, attempt: int, rng: random.Random) -> Kill:
    """Kill ``job`` once in the folder ``work`` (empty), run it again, compare."""
    want, want_kinds, reference_wall = fx.references[job]
    kill_at, landed, killed_wall = _kill_mid_run(job, fx, work, rng, reference_wall)
    rc, rerun_wall = _run_to_end(job, fx, work)
    got, kinds, corrupt = inspect(work)
    if landed == "after exit" and job in NEW_RUN_WHEN_REPEATED:
        want_kinds = want_kinds + Counter({k: n for k, n in want_kinds.items()
                                           if k[0] == job})  # two finished measurements
    lost = sum(max(0, n - kinds[k]) for k, n in want_kinds.items())
    duplicated = sum(max(0, n - want_kinds.get(k, 1)) for k, n in kinds.items())
    error = ""
    if rc != 0:
        tail = (work / f"{job}.log").read_text(errors="replace").strip().splitlines()
        error = tail[-1][:200] if tail else f"exit {rc}"
    return Kill(job, attempt, kill_at, landed, rc, lost, duplicated, corrupt,
                _differences(got, want), round(killed_wall, 1), round(rerun_wall, 1),
                round(reference_wall, 1), error)


def run_killed(work: Path, kills: int = 20, jobs: tuple[str, ...] = JOBS, seed: int = 0,
               progress=None) -> dict[str, Any]:
    """Reference runs, then ``kills`` kills spread over ``jobs`` in turn; the counts."""
    server = LoopbackServer(_judge_reply, delay=0.05)
    try:
        fx = _build_fixture(work / "fixture", server.url)
        live = work / "live"
        references = {}
        for job in jobs:
            if progress:
                progress(f"{job} (reference)")
            rc, wall = _run_to_end(job, fx, live)
            outcomes, kinds, corrupt = inspect(live)
            log = (live / f"{job}.log").read_text(errors="replace").strip().splitlines()
            _set_aside(live, work / "reference" / job)
            if rc != 0 or not outcomes or corrupt:
                raise RuntimeError(f"killed runs: the uninterrupted {job} run failed "
                                   f"(exit {rc}): {log[-1] if log else ''}")
            fx.references[job] = (outcomes, kinds, wall)
            references[job] = {"wall_s": round(wall, 1), "runs": sum(kinds.values())}
        rng = random.Random(seed)
        results = []
        for i in range(kills):
            job = jobs[i % len(jobs)]
            if progress:
                progress(f"{job} kill {i + 1}/{kills}")
            results.append(kill_once(job, fx, live, i, rng))
            _set_aside(live, work / "killed" / f"{i:02d}_{job}")
    finally:
        server.close()
    return {"references": references,
            "kills": [{**k.__dict__, "redone_s": k.redone_s} for k in results]}
