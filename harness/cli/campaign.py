"""``slmbench campaign``: the reliability campaign (fuzzed data, tampered artefacts, kills)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import SlmbenchError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("campaign", help="reliability campaign: fuzzed data, tampered "
                       "artefacts, secrets", description="Mix generated bad rows into copies "
                       "of the real data, tamper with copies of real artefacts, and search "
                       "every byte written for a canary key; writes reliability.md with "
                       "figures. Exit 1 when anything was mishandled.")
    p.add_argument("--data-dir", default=None, help="real benchmark data (default "
                   "$SLMBENCH_DATA_DIR)")
    p.add_argument("--zoo", default="adapters_zoo/embedded.yaml",
                   help="adapter manifest whose copies are tampered with")
    p.add_argument("--run", default=None, help="eval run folder whose copies are tampered "
                   "with (default: the first committed one under leaderboards/)")
    p.add_argument("--parts", default="fuzz,tamper,secrets,killed",
                   help="comma-separated parts")
    p.add_argument("--fuzz-rows", type=int, default=10_000, help="bad rows in all")
    p.add_argument("--kills", type=int, default=20,
                   help="kill -9s, spread over lm-eval, train, sweep, bench and judge")
    p.add_argument("--quick", action="store_true",
                   help="900 bad rows and 2 kills (lm-eval, judge): the test-suite size")
    p.add_argument("--out", default="leaderboards", help="folder for reliability.md")
    p.set_defaults(func=run)


def _checked_inputs(args: argparse.Namespace) -> tuple[tuple[str, ...], Path, Path]:
    from harness.data.source import resolve_data_dir
    from harness.reliability.campaign import PARTS

    parts = tuple(p for p in args.parts.split(",") if p)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise SlmbenchError(f"campaign: unknown part {unknown[0]!r} (known: {', '.join(PARTS)})")
    data_dir = resolve_data_dir(args.data_dir)
    if data_dir is None or not data_dir.is_dir():
        raise SlmbenchError(f"campaign: data dir {args.data_dir} does not exist (the fuzzed "
                            "files are made from the real ones)")
    run = Path(args.run) if args.run else next(
        (p.parent for p in sorted(Path("leaderboards").rglob("eval/*/run.json"))), None)
    if run is None or not (run / "run.json").is_file():
        raise SlmbenchError(f"campaign: --run {run} is not an eval run folder")
    return parts, data_dir, run


def run(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from harness.reliability.campaign import QUICK_KILL_JOBS, run_campaign

    parts, data_dir, eval_run = _checked_inputs(args)
    work = Path(tempfile.mkdtemp(prefix="slmbench-campaign-"))
    try:
        results = run_campaign(data_dir, Path(args.zoo), eval_run, work, Path(args.out), parts,
                               fuzz_rows=900 if args.quick else args.fuzz_rows,
                               kills=2 if args.quick else args.kills,
                               kill_jobs=QUICK_KILL_JOBS if args.quick else None)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {Path(args.out) / 'reliability.md'}")
    for line in results["failures"]:
        print(f"FAIL {line}")
    return 1 if results["failures"] else 0
