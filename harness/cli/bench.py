"""``slmbench bench``: deployment formats timed, sized and scored side by side.

Its flags are ``BenchConfig``'s fields (:mod:`harness.cli.flags`), so a default lives only in
the config; ``--allow-skip`` is the command's own, about its exit code.
"""

from __future__ import annotations

import argparse
import sys

from harness.cli.flags import add_config_args, config_values


def _pp_tg(text: str) -> tuple[int, int] | None:
    if text.strip().lower() == "none":
        return None
    pp, tg = (int(x) for x in text.split(","))
    return (pp, tg)


def _task_or_none(text: str) -> str | None:
    return None if text.strip().lower() == "none" else text


def register(sub: argparse._SubParsersAction) -> None:
    from harness.bench.runner import BenchConfig

    p = sub.add_parser("bench", help="time, size and score deployment formats side by side",
                       description="Each format runs in its own process: load time, prefill "
                       "and decode tokens/s, TTFT and latency p50/p95, peak RSS/VRAM, energy, "
                       "bandwidth utilisation and accuracy on the timed engine.")
    add_config_args(p, BenchConfig, kinds={"synthetic": _pp_tg, "task": _task_or_none,
                                           "limit": int, "threads": int})
    p.add_argument("--allow-skip", action="store_true",
                   help="exit 0 even when a requested format was skipped or crashed (default: "
                        "exit 1, after a table of the reasons)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit 1 when a requested format produced no result (skipped or crashed).

    A GPU run whose GPU formats all skipped would otherwise look like a pass; ``--allow-skip``
    accepts it (exit 0), the table of reasons is printed either way.
    """
    from harness.bench.outcomes import outcome_table, unmeasured
    from harness.bench.runner import BenchConfig, run_bench
    from harness.console import wide_console

    cfg = BenchConfig(**config_values(args, BenchConfig))
    report = run_bench(cfg)
    missing = unmeasured(report["results"], cfg.formats)
    if not missing:
        return 0
    wide_console().print(outcome_table(report["results"], cfg.formats))
    if args.allow_skip:
        return 0
    print(f"slmbench: error: bench: {len(missing)} of {len(cfg.formats)} requested formats "
          f"produced no result ({', '.join(missing)}); --allow-skip accepts that",
          file=sys.stderr)
    return 1
