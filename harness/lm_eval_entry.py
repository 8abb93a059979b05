"""``slmbench lm-eval``: lm-eval's own CLI with our tasks, models and defaults in place.

The arguments are parsed by lm-eval's parser, so every lm-eval flag works. Only the
parsed namespace is adjusted before lm-eval runs it:

- ``--include_path`` gains slmbench's task folder (``harness/tasks/``);
- a missing ``--model`` means ``hf``, and ``pretrained=embedded`` (or no ``pretrained``)
  means the embedded SmolLM2-135M-Instruct checkpoint;
- the embedded model is an instruct model that answers nothing without its chat template,
  so ``--apply_chat_template`` is on for it unless ``--no_chat_template`` is given;
- ``--device`` defaults to ``cpu`` where CUDA is absent (lm-eval defaults to ``cuda:0``);
- every run is recorded in the run store (``runs/eval/<run id>``, see
  ``harness/evaluation/record.py``): lm-eval's results, one JSONL record per question and a
  manifest. The same command again reuses the finished run unless ``--force`` is given;
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

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from harness.errors import SlmbenchError
from harness.evaluation.record import model_fingerprint
from harness.paths import tasks_dir

# Models whose ``pretrained=`` is a transformers checkpoint.
HF_FAMILY = {"hf", "hf-auto", "huggingface", "hf-peft", "slm-hf", "vllm", "vllm-peft"}
# Models that read the embedded model's shipped GGUF when pretrained=embedded.
GGUF_FAMILY = {"llama-cpp"}
LM_EVAL_SUBCOMMANDS = {"run", "ls", "validate"}


def register_components() -> None:
    """Make slmbench's filters and lm-eval models known to lm-eval's registries."""
    import harness.scoring.filters  # noqa: F401 - registers filters on import
    from harness.models import register_models

    register_models()
    logging.getLogger("lm_eval.api.task").addFilter(_QuietCustomDatasetHint())


class _QuietCustomDatasetHint(logging.Filter):
    """Drop lm-eval's per-task hint about --metadata: every slmbench task uses custom_dataset."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Custom kwargs can be passed" not in str(record.msg)


def _with_include_path(current: Any) -> list[str]:
    ours = str(tasks_dir())
    paths = [] if not current else (current if isinstance(current, list) else [current])
    flat = [p for entry in paths for p in str(entry).split(":") if p]
    return [ours, *[p for p in flat if p != ours]]


def adjust_run_args(args: Any, no_chat_template: bool = False) -> Any:
    """Apply slmbench's defaults to a parsed ``lm-eval run`` namespace (in place)."""
    from harness.data.source import resolve_data_dir
    from harness.models.embedded import is_embedded, resolve_pretrained

    args.include_path = _with_include_path(getattr(args, "include_path", None))
    args.model = args.model or "slm-hf"  # hf, plus shared prefill of Maj@k repeats
    model_args = dict(args.model_args or {})
    if args.model in HF_FAMILY:
        if model_args.get("adapters") and not model_args.get("pretrained"):
            from harness.zoo.manifest import load_manifest

            model_args["pretrained"] = load_manifest(model_args["adapters"]).base_model
        embedded = is_embedded(model_args.get("pretrained"))
        model_args["pretrained"] = resolve_pretrained(model_args.get("pretrained"))
    else:
        embedded = args.model in GGUF_FAMILY and is_embedded(model_args.get("pretrained"))
    if embedded and not hasattr(args, "apply_chat_template") and not no_chat_template:
        args.apply_chat_template = True
    args.model_args = model_args
    if not getattr(args, "device", None):
        import torch

        args.device = "cuda:0" if torch.cuda.is_available() else "cpu"
    metadata = getattr(args, "metadata", None) or {}
    if not isinstance(metadata, dict):
        raise SlmbenchError(
            f"--metadata must be key=value pairs or a JSON object, got {metadata!r}"
        )
    if "data_dir" in metadata:
        metadata["data_dir"] = str(resolve_data_dir(metadata["data_dir"]))
    if model_args.get("adapters") and "seen_from" not in metadata:
        _imply_seen_from(str(model_args["adapters"]), metadata)
    args.metadata = metadata
    _response_cache(args)
    return args


def _imply_seen_from(manifest_path: str, metadata: dict[str, Any]) -> None:
    """*_seen tasks score the questions each task's adapter trained on (harness.data.seen).

    Only when every entry records its training draw: a merged or hand-made manifest has none,
    and its unseen tasks must still run (its seen tasks then score the whole train split, as
    said in a warning). An explicit ``--metadata seen_from=`` insists, and errors instead.
    """
    from harness.zoo.manifest import load_manifest

    unknown = [e.name for e in load_manifest(manifest_path).adapters if not e.train_subset]
    if unknown:
        logging.getLogger(__name__).warning(
            "%s: %s record no train_subset; *_seen tasks score the whole train split",
            manifest_path, ", ".join(unknown))
        return
    metadata["seen_from"] = manifest_path


def _response_cache(args: Any) -> None:
    if getattr(args, "output_path", None) and not getattr(args, "use_cache", None):
        folder = Path(args.output_path)
        folder = folder.parent if folder.suffix == ".json" else folder
        args.use_cache = str(folder / ".slmbench_cache"
                             / model_fingerprint(args.model, args.model_args))


def _check_tasks(args: Any) -> None:
    """Fail fast, on one line, for task names that neither lm-eval nor slmbench knows."""
    from lm_eval.tasks import TaskManager

    requested = [t for entry in (args.tasks or []) for t in str(entry).split(",") if t]
    if not requested:
        raise SlmbenchError("--tasks is required (e.g. --tasks telecom_all)")
    manager = TaskManager(include_path=args.include_path)
    known = set(manager.all_tasks)
    unknown = [t for t in requested if t not in known and not Path(t).exists()
               and not manager.match_tasks([t])]
    if unknown:
        import difflib

        hints = difflib.get_close_matches(unknown[0], sorted(known), n=3)
        hint = f" (did you mean: {', '.join(hints)}?)" if hints else ""
        raise SlmbenchError(f"unknown task {unknown[0]!r}{hint}")


def _save_data_report(output_path: str | None) -> None:
    from harness.data.source import LOAD_REPORTS
    from harness.runs.atomic import write_json_atomic

    if not LOAD_REPORTS:
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="slmbench data report")
    for col in ("benchmark", "kept", "duplicates", "skipped", "first skipped row"):
        table.add_column(col)
    for report in LOAD_REPORTS.values():
        table.add_row(report.benchmark, str(report.kept), str(report.duplicates),
                      str(len(report.skipped)), report.skipped[0] if report.skipped else "")
    Console(stderr=True).print(table)
    if not output_path:
        return
    payload = {name: r.as_dict() for name, r in LOAD_REPORTS.items()}
    out = Path(output_path)
    folder = out.parent if out.suffix == ".json" else out
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "slmbench_data_report.json", payload)
    # Also stamp the newest lm-eval results file, so the report travels with the scores.
    newest = max(folder.rglob("results_*.json"), key=os.path.getmtime, default=None)
    if newest is not None:
        results = json.loads(newest.read_text(encoding="utf-8"))
        results["slmbench_data_report"] = payload
        write_json_atomic(newest, results)


def _process_rank() -> int:
    """The process rank under ``accelerate launch``/``torchrun`` (0 when run alone)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def run_lm_eval(argv: list[str]) -> int:
    """Run lm-eval's CLI on ``argv`` with slmbench's tasks, models and defaults."""
    evaluate(argv)
    return 0


def evaluate(argv: list[str]) -> Path | None:
    """``run_lm_eval``, returning the run-store folder of a ``run`` (None for ls/validate).

    Internal callers (training, sweeps, bench) read scores from that folder, so a reused
    run and a fresh one look the same to them.
    """
    from lm_eval._cli import HarnessCLI
    from lm_eval.utils import setup_logging

    register_components()
    setup_logging()
    if argv and argv[0] not in LM_EVAL_SUBCOMMANDS and argv[0] not in ("-h", "--help"):
        argv = ["run", *argv]
    no_chat_template = "--no_chat_template" in argv
    force = "--force" in argv
    argv, label = _pop_option(argv, "--label")
    argv, store = _pop_option(argv, "--store")
    argv = [a for a in argv if a not in ("--no_chat_template", "--force")]
    saved = sys.argv
    sys.argv = ["slmbench lm-eval", *argv]
    try:
        parser = HarnessCLI()
        args = parser.parse_args()
    finally:
        sys.argv = saved
    command = getattr(args, "command", None)
    if command in ("ls", "validate"):
        args.include_path = ":".join(_with_include_path(getattr(args, "include_path", None)))
    if command != "run":
        parser.execute(args)
        return None
    from harness.evaluation import record as eval_record

    adjust_run_args(args, no_chat_template=no_chat_template)
    _check_tasks(args)
    key = eval_record.identity(args)
    run_id = eval_record.id_of(key)
    done = eval_record.finished_run(run_id, store)
    if done is not None and not force:
        eval_record.print_reused(done)
        print(f"slmbench: run folder {done} (reused; --force runs it again)", file=sys.stderr)
        return done
    if not getattr(args, "output_path", None):
        args.output_path = str(eval_record.work_folder(run_id, store))
        _response_cache(args)
    args.log_samples = True  # the run store keeps every question's answer
    started = time.time()
    parser.execute(args)
    if _process_rank() != 0:
        # `accelerate launch` data parallelism: lm-eval gathers every rank's answers on rank
        # 0, which alone writes results; recording them once is rank 0's job too.
        return None
    _save_data_report(args.output_path)
    folder = eval_record.record_eval_run(args, key, started, label=label, root=store)
    print(f"slmbench: run folder {folder}", file=sys.stderr)
    return folder


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
