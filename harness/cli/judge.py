"""``slmbench judge``: arguments and the command (kept light: imported when the parser is built).

Examples:
    slmbench judge --run runs/eval/<id> --judge http://127.0.0.1:8080/v1=qwen2.5-7b-instruct
    slmbench judge --items answers.jsonl --judge https://api.openai.com/v1=gpt-4o-mini \
        --judge local:embedded
    slmbench judge --run runs/eval/<lora_a> --against runs/eval/<lora_b> --mode pairwise \
        --judge http://127.0.0.1:8080/v1=qwen2.5-7b-instruct
    slmbench judge --sweep runs/sweeps/<name> --judge local:embedded --limit 30
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import SlmbenchError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("judge", help="LLM-as-a-judge scoring of free-form answers",
                       description="Score an eval run's (or a JSONL file's) answers with one "
                       "or more judges (rubric 1-10, or pairwise A vs B with order swap) and "
                       "record a judge run in the store.")
    add_judge_args(p)
    p.set_defaults(func=run_judge_command)


def add_judge_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", default=None, help="eval run folder whose answers are judged")
    src.add_argument("--items", default=None,
                     help="JSONL file: id, question, response, optional reference")
    src.add_argument("--sweep", default=None,
                     help="sweep folder: judge the eval run of every finished point (one judge "
                          "run each), for validation loss against judge rank")
    p.add_argument("--judge", action="append", required=True, metavar="BASE_URL=MODEL",
                   help="an OpenAI-compatible judge (e.g. http://127.0.0.1:8080/v1=MODEL), "
                        "or local:embedded / local:PATH.gguf (llama.cpp in process); repeat "
                        "for several judges")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY",
                   help="environment variable holding the API key (optional: local servers "
                        "need none; the key is never written anywhere)")
    p.add_argument("--mode", choices=("rubric", "pairwise"), default="rubric")
    p.add_argument("--against", default=None,
                   help="pairwise: the B side (run folder or JSONL), matched by item id")
    p.add_argument("--task", action="append", default=None,
                   help="judge only this task of the run (repeatable)")
    p.add_argument("--limit", type=int, default=None, help="judge the first N items")
    p.add_argument("--max-retries", type=int, default=3,
                   help="retries per call (errors, 429, 5xx) and re-asks per unreadable verdict")
    p.add_argument("--rps", type=float, default=2.0,
                   help="max requests per second per judge (0: unlimited)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    p.add_argument("--workers", type=int, default=4, help="concurrent requests per HTTP judge")
    p.add_argument("--domain", default=None,
                   help="domain named in the judge prompt (default telecom and e-commerce "
                        "customer support)")
    p.add_argument("--cache", default=None,
                   help="verdict cache file (default <store>/judge/.cache/verdicts.sqlite)")
    p.add_argument("--no-cache", action="store_true", help="call the judges for every item")
    p.add_argument("--json-mode", choices=("object", "schema", "off"), default=None,
                   help="response_format sent to judges: object (OpenAI JSON mode; HTTP "
                        "default), schema (JSON mode with the verdict schema, enforced as a "
                        "grammar by llama.cpp; local default), off (servers that reject it)")
    p.add_argument("--label", default=None, help="label of the judge run")
    p.add_argument("--store", default=None, help="run store (default $SLMBENCH_RUNS or runs)")


def run_judge_command(args: argparse.Namespace) -> int:
    from harness.judge.client import parse_judge_spec
    from harness.judge.summary import print_summary

    judges = [parse_judge_spec(spec, api_key_env=args.api_key_env,
                               json_mode=args.json_mode, timeout=args.timeout,
                               max_retries=args.max_retries, rps=args.rps,
                               max_workers=args.workers) for spec in args.judge]
    if args.sweep:
        if args.mode != "rubric":
            raise SlmbenchError("--sweep judges with --mode rubric")
        return _judge_sweep(args, judges)
    job = _job(args, judges, args.run or args.items, args.label)
    folder, manifest = _run(job)
    print_summary(manifest, folder, job.notes)
    return 0


def _job(args: argparse.Namespace, judges: list, source: str | Path, label: str | None):
    from harness.judge.rubric import DEFAULT_DOMAIN
    from harness.judge.runner import JudgeJob

    return JudgeJob(source=source, judges=judges, mode=args.mode,
                    against=args.against, tasks=args.task, limit=args.limit,
                    max_retries=args.max_retries, domain=args.domain or DEFAULT_DOMAIN,
                    store=args.store, cache=False if args.no_cache else (args.cache or True),
                    label=label)


def _run(job) -> tuple[Path, dict]:
    from rich.progress import Progress

    from harness.judge.runner import run_judge

    with Progress(transient=True) as bar:
        def progress(total: int):
            task = bar.add_task("judging", total=total)
            return lambda: bar.advance(task)

        return run_judge(job, progress)


def _judge_sweep(args: argparse.Namespace, judges: list) -> int:
    from harness.judge.summary import print_summary
    from harness.judge.sweep_targets import print_sweep_judgement, sweep_points

    rows = []
    for point in sweep_points(args.sweep, args.store):
        if point.eval_run is None:
            print(f"note: {point.name}: no eval run recorded (swept with --eval-limit 0?); "
                  "not judged")
            rows.append((point, None))
            continue
        who = args.label or "/".join(j.name for j in judges)
        job = _job(args, judges, point.eval_run, f"{who} on {Path(args.sweep).name}/{point.name}")
        folder, manifest = _run(job)
        print_summary(manifest, folder, job.notes)
        rows.append((point, manifest))
    print_sweep_judgement(rows)
    return 0
