"""``slmbench validate``: every shipped task YAML loads (and builds on data, when given)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="load every shipped task YAML (and its data if given)")
    p.add_argument("--data-dir", default=None, help="also build each task on this data")
    p.add_argument("--require-data", action="store_true",
                   help="fail when a benchmark has no data in --data-dir (default: report it "
                        "as 'no data here'; also set by SLMBENCH_REQUIRE=data)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.validate import validate_tasks

    return validate_tasks(data_dir=args.data_dir, require_data=args.require_data)
