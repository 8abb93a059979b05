"""``slmbench data stats|synth`` and ``slmbench intents``: looking at benchmark data."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="inspect benchmark data").add_subparsers(
        dest="data_command", required=True, metavar="DATA_COMMAND")
    p = data.add_parser("stats", help="split sizes and skipped rows per benchmark")
    p.add_argument("benchmarks", nargs="+")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=stats)
    from harness.cli.synth_flags import DESCRIPTION, add_synth_args

    p = data.add_parser("synth", help="generate a synthetic telecom or e-commerce data set",
                        description=DESCRIPTION,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_synth_args(p)
    p.set_defaults(func=synth)
    p = sub.add_parser("intents", help="per-intent and per-language scores of an intent run",
                       description="Precision, recall and F1 per intent, and accuracy and "
                       "macro-F1 per language, from a run folder's per-question records.")
    p.add_argument("run", help="run folder (runs/eval/<id>)")
    p.add_argument("--task", default="ecommerce_intent", help="task in that run")
    p.set_defaults(func=intents)


def stats(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from harness.data.source import load_splits_and_report

    table = Table(title="slmbench data")
    # The name never wraps or gets cut: in 80 columns "three_gpp_tsg" became "three_gpp_…".
    for col in ("benchmark", "train", "validation", "test", "duplicates", "skipped", "source"):
        table.add_column(col, no_wrap=col == "benchmark")
    for name in args.benchmarks:
        parts, report = load_splits_and_report(name, data_dir=args.data_dir, seed=args.seed)
        table.add_row(name, *(str(len(parts[s])) for s in ("train", "validation", "test")),
                      str(report.duplicates), str(len(report.skipped)), report.source)
    Console().print(table)
    return 0


def synth(args: argparse.Namespace) -> int:
    from harness.cli.synth_flags import options_from_args, summary
    from harness.data.synth.pipeline import run_synth

    print(summary(run_synth(options_from_args(args))))
    return 0


def intents(args: argparse.Namespace) -> int:
    from harness.console import wide_console
    from harness.report.intent_table import intent_tables
    from harness.runs.store import load_run

    run = load_run(args.run)
    for table in intent_tables(run, args.task):
        wide_console().print(table)
    return 0
