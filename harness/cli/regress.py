"""``slmbench regress``: the paired regression gate, and baselines exported for it."""

from __future__ import annotations

import argparse

from harness.errors import SlmbenchError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "regress", help="fail when a candidate eval run regresses against a baseline",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Pair the two runs' scores by question id per baseline task (exact "
        "McNemar for 0/1 scores, paired bootstrap otherwise). A task regresses when delta < "
        "-tolerance AND p < alpha. Exit 0: passed, 1: a task regressed, 2: refused (missing "
        "task, unreadable samples, or question set / data_sha256 / version mismatch).\n\n"
        "  slmbench regress --export runs/eval/<id> [runs/eval/<id2> ...] --out base.json\n"
        "  slmbench regress --baseline base.json --candidate runs/eval/<id> --summary gate.md")
    p.add_argument("--baseline", default=None,
                   help="run folder or exported JSON (one run, or {'runs': [...]})")
    p.add_argument("--baseline-label", default=None,
                   help="run label (or run_id) to pick from a multi-run baseline JSON")
    p.add_argument("--candidate", default=None, help="run folder or exported JSON")
    p.add_argument("--tolerance", type=float, default=0.02,
                   help="smallest score drop that counts (absolute, default 0.02)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level")
    p.add_argument("--allow-mismatch", action="store_true",
                   help="compare differing question sets on their shared ids (warns)")
    p.add_argument("--summary", default=None, help="write a markdown summary (PR comment) here")
    p.add_argument("--task", action="append", default=None,
                   help="gate only this baseline task (repeatable; default: all of them)")
    p.add_argument("--export", nargs="+", default=None, metavar="RUN",
                   help="instead: export run folder(s) as a committable baseline JSON")
    p.add_argument("--out", default=None, help="file --export writes")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.report.regress import run_gate, write_export

    if args.export:
        if args.out is None or args.baseline or args.candidate:
            raise SlmbenchError("regress --export RUN [RUN ...] takes --out FILE and no "
                                "--baseline/--candidate")
        payload = write_export(args.export, args.out)
        runs = payload.get("runs", [payload])
        print(f"exported {', '.join(r['label'] for r in runs)} -> {args.out}")
        return 0
    if not args.baseline or not args.candidate:
        raise SlmbenchError("regress needs --baseline and --candidate (or --export RUN --out FILE)")
    return run_gate(args.baseline, args.candidate, args.baseline_label, args.tolerance,
                    args.alpha, args.allow_mismatch, args.summary, tasks=args.task)
