"""``slmbench zoo verify|record``: checking the adapter zoo and recording its scores."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    zoo = sub.add_parser("zoo", help="adapter zoo").add_subparsers(
        dest="zoo_command", required=True, metavar="ZOO_COMMAND")
    p = zoo.add_parser("verify", help="check every adapter's sha256 and base model")
    p.add_argument("manifest")
    p.set_defaults(func=verify)
    p = zoo.add_parser("record", help="write an eval run's scores into the entries it scored",
                       description="Copy the per-task scores of hf-peft eval runs of this "
                       "manifest (runs/eval/<id>) into each serving entry's test_metrics, "
                       "and name the runs in its eval_runs.")
    p.add_argument("manifest")
    p.add_argument("runs", nargs="+", help="eval run folders")
    p.set_defaults(func=record)


def record(args: argparse.Namespace) -> int:
    from harness.zoo.record import describe, record_eval_runs

    for entry in record_eval_runs(args.manifest, args.runs):
        print(f"recorded {describe(entry)}")
    return 0


def verify(args: argparse.Namespace) -> int:
    from transformers import AutoConfig

    from harness.artefacts.embedded import resolve_pretrained
    from harness.artefacts.zoo_manifest import load_manifest, verify_entry

    manifest = load_manifest(args.manifest)
    pretrained = resolve_pretrained(manifest.base_model)
    config = AutoConfig.from_pretrained(pretrained)
    for entry in manifest.adapters:
        verify_entry(manifest, entry, pretrained, config)
        print(f"ok  {entry.name:<20} {entry.task:<24} r={entry.rank:<3} {entry.size_mb} MB "
              f"sha256 {entry.sha256[:12]}")
    return 0
