"""``slmbench leaderboard``: Markdown pages (and figures) rendered from the run store."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import SlmbenchError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leaderboard", help="render Markdown leaderboards from the run store",
                       description="Accuracy, seen vs unseen, rank ablation, LoRA sweep and "
                       "quantization tables (with PNG figures) from the run records; the same "
                       "records always render to the same bytes.")
    p.add_argument("--runs", default="runs", help="run store folder (default runs)")
    p.add_argument("--out", default="leaderboards", help="output folder (default leaderboards)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.report.leaderboard import render_leaderboards

    if not Path(args.runs).is_dir():
        raise SlmbenchError(f"leaderboard: runs folder {args.runs} does not exist")
    written = render_leaderboards(args.runs, args.out)
    print(f"wrote {len(written)} files to {args.out} (index: {Path(args.out) / 'README.md'})")
    return 0
