r"""The ``slmbench`` command: one small module per subcommand (or group of them).

Examples:
    slmbench lm-eval --tasks telecom_all --model hf --model_args pretrained=embedded --limit 20
    slmbench lm-eval --tasks telecom_all,telecom_all_maj4 --metadata data_dir=../shared/data
    slmbench validate --data-dir ../shared/data
    slmbench data stats teleqna --data-dir ../shared/data
    slmbench data synth telecom --out data/synth/telecom --seed 42
    slmbench embedded --rebuild
    slmbench gguf --type f16,q4_k_m
    slmbench train teleqna --data-dir ../shared/data --zoo adapters_zoo/embedded.yaml --evaluate
    slmbench lm-eval --tasks telecom_all --model hf-peft \
        --model_args adapters=adapters_zoo/embedded.yaml
    slmbench regress --export runs/eval/<run_id> --out baselines/main.json
    slmbench regress --baseline baselines/main.json --candidate runs/eval/<run_id> \
        --summary gate.md
    slmbench leaderboard --runs runs --out leaderboards
    slmbench judge --run runs/eval/<run_id> --judge http://127.0.0.1:8080/v1=qwen2.5-7b-instruct
"""

from __future__ import annotations

import argparse
import logging
import sys

from harness.errors import SlmbenchError

# One module per subcommand (or group), in the order ``--help`` lists them; each has
# ``register(subparsers)``, which adds its parser(s) with ``func`` set to its command.
_COMMANDS = ("lm_eval", "validate", "data", "models", "train", "bench", "regress",
             "leaderboard", "campaign", "judge", "zoo")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="slmbench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"harness.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if argv[:1] == ["lm-eval"]:  # every lm-eval flag passes through untouched
            from harness.cli.lm_eval import run_lm_eval_argv

            return run_lm_eval_argv(argv[1:])
        args = build_parser().parse_args(argv)
        return args.func(args)
    except SlmbenchError as err:
        print(f"slmbench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("slmbench: interrupted", file=sys.stderr)
        return 130
    finally:
        leave_process_group()


def leave_process_group() -> None:
    """Tear down an ``accelerate launch``'s gloo group before the interpreter exits.

    Left to interpreter shutdown, its background threads are destroyed while still joinable,
    and a process whose work all succeeded aborts ("terminate called without an active
    exception", exit -6) on about one run in eight.
    """
    if "torch" not in sys.modules:  # no command that never imported torch pays for it
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
