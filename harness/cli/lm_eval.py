"""``slmbench lm-eval``: lm-eval's own command line, with slmbench's tasks and models."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    # Listed for --help only: main() hands every argument after it to lm-eval unparsed.
    sub.add_parser("lm-eval", help="run lm-eval with slmbench tasks and models (any lm-eval flag)",
                   add_help=False)


def run_lm_eval_argv(argv: list[str]) -> int:
    from harness.lm_eval_entry import run_lm_eval

    return run_lm_eval(argv)
