"""``slmbench lm-eval``: lm-eval's own CLI with our tasks, models and defaults in place.

The arguments are parsed by lm-eval's parser, so every lm-eval flag works; the parsed
namespace becomes an ``EvalSpec`` and ``harness.evaluation.run.run_eval`` runs it through
lm-eval's ``simple_evaluate`` with slmbench's defaults:

- ``--include_path`` gains slmbench's task folder (``harness/tasks/``);
- a missing ``--model`` means ``hf``, and ``pretrained=embedded`` (or no ``pretrained``)
  means the embedded SmolLM2-135M-Instruct checkpoint;
- the embedded model is an instruct model that answers nothing without its chat template,
  so ``--apply_chat_template`` is on for it unless ``--no_chat_template`` is given;
- ``--device`` defaults to ``cpu`` where CUDA is absent (lm-eval defaults to ``cuda:0``);
- every run is recorded in the run store (``runs/eval/<run id>``, see
  ``harness/evaluation/identity.py`` and ``record.py``): lm-eval's results, one JSONL
  record per question and a manifest. The same command again reuses the finished run
  unless ``--force`` is given (which scores it again, the answers coming from the response
  cache below, so it re-scores without re-running the model) or ``--fresh`` (which runs it
  again with every request answered anew: a timing measured again needs this);
  ``--label NAME`` names the run on leaderboards and ``--store DIR`` moves the store;
- responses are cached per request under ``<output_path>/.slmbench_cache/<model
  fingerprint>`` (``output_path`` defaults to the run's work folder in the store), so
  re-running an interrupted command resumes it (lm-eval's own cache; it never caches sampled
  generations, so Maj@k samples are recomputed). The fingerprint covers the model arguments
  and the content of every file in local model or adapter folders, so retrained
  weights never hit a stale cache;
- ``--metadata data_dir=...`` is checked up front so a typo fails before the model loads.

After the run, the data-quality report (rows skipped as malformed, duplicates) is
printed and, with ``--output_path``, saved next to lm-eval's results.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.errors import SlmbenchError
from harness.evaluation.spec import EvalSpec

LM_EVAL_SUBCOMMANDS = {"run", "ls", "validate"}


def run_lm_eval(argv: list[str]) -> int:
    """Run lm-eval's CLI on ``argv`` with slmbench's tasks, models and defaults."""
    evaluate(argv)
    return 0


def evaluate(argv: list[str]) -> Path | None:
    """``run_lm_eval``, returning the run-store folder of a ``run`` (None for ls/validate).

    lm-eval's own parser reads ``argv`` (so every lm-eval flag works); its namespace becomes
    one ``EvalSpec``, and ``run_eval`` does the rest.
    """
    from lm_eval._cli import HarnessCLI

    from harness.evaluation.run import register_components, run_eval, with_include_path

    register_components()
    if argv and argv[0] not in LM_EVAL_SUBCOMMANDS and argv[0] not in ("-h", "--help"):
        argv = ["run", *argv]
    no_chat_template = "--no_chat_template" in argv
    fresh = "--fresh" in argv
    force = "--force" in argv or fresh
    argv, label = _pop_option(argv, "--label")
    argv, store = _pop_option(argv, "--store")
    argv = [a for a in argv if a not in ("--no_chat_template", "--force", "--fresh")]
    saved = sys.argv
    sys.argv = ["slmbench lm-eval", *argv]
    try:
        parser = HarnessCLI()
        args = parser.parse_args()
    finally:
        sys.argv = saved
    command = getattr(args, "command", None)
    if command != "run":
        if command in ("ls", "validate"):
            args.include_path = ":".join(with_include_path(getattr(args, "include_path", None)))
        parser.execute(args)
        return None
    spec = EvalSpec.from_namespace(args, label=label, store=store, force=force, fresh=fresh,
                                   no_chat_template=no_chat_template)
    run = run_eval(spec)
    return run.path if run is not None else None


def _pop_option(argv: list[str], flag: str) -> tuple[list[str], str | None]:
    """Remove slmbench's own ``flag VALUE`` (or ``flag=VALUE``) before lm-eval parses argv."""
    out, value, i = [], None, 0
    while i < len(argv):
        if argv[i] == flag:
            if i + 1 >= len(argv):
                raise SlmbenchError(f"{flag} needs a value")
            value, i = argv[i + 1], i + 2
            continue
        if argv[i].startswith(flag + "="):
            value = argv[i].split("=", 1)[1]
        else:
            out.append(argv[i])
        i += 1
    return out, value
