"""``run_eval(spec) -> Run``: the one evaluation path, through lm-eval's public API.

Every evaluation (``slmbench lm-eval``, training's test scores, sweep points, bench accuracy,
the adapter gate) comes here with an ``EvalSpec``. slmbench's defaults are applied to it once;
a finished run of the same identity is reused unless ``force``; otherwise one ``TaskManager``
is built (lm-eval's ``EvaluatorConfig.process_tasks``), ``lm_eval.simple_evaluate`` runs, and
the run is recorded from the dict it returns (torchtune's eleuther_eval recipe does the same).
lm-eval's own output files are still written into ``output_path`` for users who read them.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from harness.errors import SlmbenchError
from harness.evaluation import identity, presentation, record
from harness.evaluation.spec import EvalSpec
from harness.paths import tasks_dir
from harness.runs.store import Run, load_run

log = logging.getLogger(__name__)


def register_components() -> None:
    """Make slmbench's filters and lm-eval models known to lm-eval's registries."""
    import harness.scoring.filters  # noqa: F401 - registers filters on import
    from harness.models import register_models

    register_models()
    # One instance: addFilter ignores a filter already there, so the many evaluations of one
    # process (a sweep, `slmbench lm-eval` then run_eval) do not stack copies of it.
    logging.getLogger("lm_eval.api.task").addFilter(_QUIET_HINT)


class _QuietCustomDatasetHint(logging.Filter):
    """Drop lm-eval's per-task hint about --metadata: every slmbench task uses custom_dataset."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Custom kwargs can be passed" not in str(record.msg)


_QUIET_HINT = _QuietCustomDatasetHint()


def with_include_path(current: Any) -> list[str]:
    ours = str(tasks_dir())
    paths = [] if not current else ([current] if isinstance(current, str) else list(current))
    flat = [p for entry in paths for p in str(entry).split(":") if p]
    return [ours, *[p for p in flat if p != ours]]


def with_defaults(spec: EvalSpec) -> EvalSpec:
    """The spec with slmbench's defaults filled in (the same for every caller).

    Its task folder on the include path, ``slm-hf`` and the embedded model when none is
    named, the embedded model's chat template (also when its materialized folder is named:
    without the template it answers nothing parseable), the device, a checked data folder,
    the zoo's seen questions, and a response cache keyed by the weights.
    """
    from harness.artefacts.embedded import is_embedded, resolve_pretrained
    from harness.data.source import resolve_data_dir
    from harness.models import GGUF, TRANSFORMERS, pretrained_format

    model = spec.model or "slm-hf"  # hf, plus shared prefill of Maj@k repeats
    model_args = dict(spec.model_args)
    reads = pretrained_format(model)  # declared by the model's class
    if reads == TRANSFORMERS:
        if model_args.get("adapters") and not model_args.get("pretrained"):
            from harness.artefacts.zoo_manifest import load_manifest

            model_args["pretrained"] = load_manifest(model_args["adapters"]).base_model
        embedded = (is_embedded(model_args.get("pretrained"))
                    or is_embedded_checkpoint(model_args.get("pretrained")))
        model_args["pretrained"] = resolve_pretrained(model_args.get("pretrained"))
    else:
        embedded = reads == GGUF and (is_embedded(model_args.get("pretrained"))
                                      or is_embedded_gguf(model_args.get("pretrained")))
    chat = spec.apply_chat_template
    if embedded and chat is None and not spec.no_chat_template:
        chat = True  # an instruct model that answers nothing without its template
    device = spec.device
    if not device:
        import torch

        device = "cuda:0" if torch.cuda.is_available() else "cpu"
    metadata = dict(spec.metadata)
    if "data_dir" in metadata:
        metadata["data_dir"] = str(resolve_data_dir(metadata["data_dir"]))
    if model_args.get("adapters") and "seen_from" not in metadata:
        _imply_seen_from(str(model_args["adapters"]), metadata)
    spec = spec.with_(model=model, model_args=model_args, apply_chat_template=chat,
                      device=device, metadata=metadata,
                      include_path=tuple(with_include_path(spec.include_path)))
    return spec.with_(use_cache=spec.use_cache or response_cache(spec))


def is_embedded_checkpoint(pretrained: Any) -> bool:
    """Whether ``pretrained`` is a folder the embedded model was materialized into.

    Its cache folder, or a copy of it: the completion marker names the shipped GGUF.
    """
    from harness.artefacts.embedded import EMBEDDED_NAME, MARKER, checkpoint_dir

    if not pretrained or not isinstance(pretrained, str | Path):
        return False
    folder = Path(pretrained).expanduser()
    if not folder.is_dir():
        return False
    if folder.resolve() == checkpoint_dir().resolve():
        return True
    try:
        source = json.loads((folder / MARKER).read_text(encoding="utf-8")).get("source")
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(source, str) and EMBEDDED_NAME in Path(source).name


def is_embedded_gguf(pretrained: Any) -> bool:
    """Whether ``pretrained`` is a GGUF exported from the embedded checkpoint.

    ``slmbench gguf`` and the bench export it under the checkpoint folder's name
    (``general.name``), so the files they print answer with the chat template too, as the
    shipped GGUF does; without it the model answers nothing parseable.
    """
    from harness.artefacts.embedded import EMBEDDED_NAME
    from harness.artefacts.gguf_header import read_gguf_name

    if not pretrained or not str(pretrained).endswith(".gguf") or not Path(pretrained).is_file():
        return False
    return (read_gguf_name(Path(pretrained)) or "").startswith(EMBEDDED_NAME)


def warn_if_unparsed(run: Run, spec: EvalSpec) -> None:
    """Say loudly, in the log and on stderr, when most of a task's answers are unparsed."""
    from harness.evaluation.unparsed_check import run_warnings

    lines = run_warnings(run, spec)
    if lines:
        log.warning("\n".join(lines))
        print("\n".join(f"slmbench: {line}" for line in lines), file=sys.stderr)


def _imply_seen_from(manifest_path: str, metadata: dict[str, Any]) -> None:
    """*_seen tasks score the questions each task's adapter trained on (harness.data.seen).

    Only when every entry records its training draw: a merged or hand-made manifest has none,
    and its unseen tasks must still run (its seen tasks then score the whole train split, as
    said in a warning). An explicit ``--metadata seen_from=`` insists, and errors instead.
    """
    from harness.artefacts.zoo_manifest import load_manifest

    unknown = [e.name for e in load_manifest(manifest_path).adapters if not e.train_subset]
    if unknown:
        log.warning("%s: %s record no train_subset; *_seen tasks score the whole train split",
                    manifest_path, ", ".join(unknown))
        return
    metadata["seen_from"] = manifest_path


def response_cache(spec: EvalSpec) -> str | None:
    """``<output_path>/.slmbench_cache/<weights fingerprint>``: lm-eval's per-request cache."""
    if not spec.output_path:
        return None
    folder = Path(spec.output_path)
    folder = folder.parent if folder.suffix == ".json" else folder
    return str(folder / ".slmbench_cache"
               / identity.model_fingerprint(spec.model, dict(spec.model_args)))


def forget_responses(cache: str | None) -> None:
    """``--fresh``: the run's cached responses go, so every request is answered (and timed) anew.

    A forced run otherwise takes its answers from the cache and records no answering time,
    replacing the timed record of the run it repeats.
    """
    if not cache:
        return
    cache_path = Path(cache)
    for db in cache_path.parent.glob(f"{cache_path.name}_rank*.db"):  # lm-eval's CachingLM files
        db.unlink()
        log.info("--fresh: removed the response cache %s", db)


def process_rank() -> int:
    """The process rank under ``accelerate launch``/``torchrun`` (0 when run alone)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def _leave_process_group() -> None:
    """Tear down an ``accelerate launch``'s process group once every rank's answers are gathered.

    Left to interpreter exit, gloo's threads can outlive it: a rank then dies with "terminate
    called without an active exception" (SIGABRT) after lm-eval's gather, and the launch fails
    though every rank finished (seen once in CI on 2 cores). Nothing after the gather talks
    across ranks: rank 0 records alone.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _task_manager(cfg: Any):
    """lm-eval's one TaskManager for the run; an unknown task name is one line, with hints."""
    try:
        return cfg.process_tasks(cfg.metadata)
    except ValueError as err:
        if not str(err).startswith("Tasks not found"):
            raise
        from lm_eval.tasks import TaskManager

        missing = str(err).split(":", 1)[1].split(",")[0].strip()
        known = TaskManager(include_path=cfg.include_path).all_tasks
        hints = difflib.get_close_matches(missing, sorted(known), n=3)
        hint = f" (did you mean: {', '.join(hints)}?)" if hints else ""
        raise SlmbenchError(f"unknown task {missing!r}{hint}") from None


def run_eval(spec: EvalSpec) -> Run | None:
    """Evaluate ``spec`` (or reuse its finished run) and return the recorded run.

    None on the non-zero ranks of an ``accelerate launch``: rank 0 gathers every rank's
    answers and alone records them.
    """
    from lm_eval.config.evaluate_config import EvaluatorConfig
    from lm_eval.utils import setup_logging

    register_components()
    setup_logging()
    if not spec.tasks:
        raise SlmbenchError("--tasks is required (e.g. --tasks telecom_all)")
    spec = with_defaults(spec)
    key = identity.identity(spec)
    run_id = identity.id_of(key)
    done = identity.finished_run(run_id, spec.store)
    if done is not None and not spec.force:
        presentation.print_reused(done)
        print(f"slmbench: run folder {done} (reused; --force scores it again, --fresh runs the "
              "model again)", file=sys.stderr)
        run = load_run(done)
        warn_if_unparsed(run, spec)
        return run
    if not spec.output_path:
        spec = spec.with_(output_path=str(identity.work_folder(run_id, spec.store)))
        spec = spec.with_(use_cache=response_cache(spec))
    if spec.fresh:
        forget_responses(spec.use_cache)
    options = {**spec.options, "log_samples": True}  # the store keeps every question's answer
    try:
        cfg = EvaluatorConfig.from_cli(spec.with_(options=options).lm_eval_namespace())
    except ValueError as err:
        raise SlmbenchError(f"lm-eval: {err}") from None
    from harness.data.source import collect_load_reports

    started = time.time()
    with collect_load_reports() as reports:
        task_manager = _task_manager(cfg)
        results, samples = _simple_evaluate(cfg, task_manager, reports)
    _leave_process_group()
    if results is None or process_rank() != 0:
        return None
    folder = record.record_eval_run(spec, key, results, samples, started, reports)
    run = load_run(folder)
    presentation.print_baselines(run)
    print(f"slmbench: run folder {folder}", file=sys.stderr)
    warn_if_unparsed(run, spec)
    return run


def _simple_evaluate(cfg: Any, task_manager: Any, reports: dict[str, Any]
                     ) -> tuple[dict | None, dict]:
    """``lm_eval.simple_evaluate`` as lm-eval's ``run`` command calls it, with its outputs.

    lm-eval 0.4.13 keeps that command's body in a private method
    (``lm_eval._cli.run.Run._execute``) that builds its own TaskManager, prints instead of
    returning, and drops the samples, so slmbench cannot call it. What it does is followed
    here step by step through lm-eval's public pieces (``simple_evaluate``,
    ``EvaluationTracker``, the W&B and Trackio loggers, ``make_table``): the usual
    ``results_*.json`` and ``samples_*.jsonl`` are written and the table is printed. The
    samples come back sanitised as they were written, for the run store.
    """
    from lm_eval import simple_evaluate
    from lm_eval.utils import handle_non_serializable

    loggers = _result_loggers(cfg)
    tracker = _evaluation_tracker(cfg)
    seed = cfg.seed or [None] * 4
    results = simple_evaluate(
        model=cfg.model, model_args=cfg.model_args, tasks=cfg.tasks,
        num_fewshot=cfg.num_fewshot, batch_size=cfg.batch_size,
        max_batch_size=cfg.max_batch_size, device=cfg.device, use_cache=cfg.use_cache,
        cache_requests=cfg.cache_requests.get("cache_requests", False),
        rewrite_requests_cache=cfg.cache_requests.get("rewrite_requests_cache", False),
        delete_requests_cache=cfg.cache_requests.get("delete_requests_cache", False),
        limit=cfg.limit, samples=cfg.samples, check_integrity=cfg.check_integrity,
        write_out=cfg.write_out, log_samples=cfg.log_samples, evaluation_tracker=tracker,
        system_instruction=cfg.system_instruction, apply_chat_template=cfg.apply_chat_template,
        fewshot_as_multiturn=cfg.fewshot_as_multiturn, gen_kwargs=cfg.gen_kwargs,
        task_manager=task_manager, verbosity=cfg.verbosity, predict_only=cfg.predict_only,
        random_seed=seed[0], numpy_random_seed=seed[1], torch_random_seed=seed[2],
        fewshot_random_seed=seed[3], confirm_run_unsafe_code=cfg.confirm_run_unsafe_code,
        metadata=cfg.metadata)
    if results is None:
        return None, {}
    samples = results.pop("samples", {}) if cfg.log_samples else {}
    report = record.data_report_payload(reports)
    if report:  # travels with the scores, in lm-eval's results file and the store's copy
        results["slmbench_data_report"] = report
    if cfg.show_config:
        print(json.dumps(results, indent=2, default=handle_non_serializable, ensure_ascii=False))
    _log_to(loggers, results, samples if cfg.log_samples else None)
    _save(tracker, results, samples)
    presentation.print_data_report(reports, cfg.output_path)
    _print_tables(cfg, results)
    for logger in loggers:  # Trackio's logger finishes itself; W&B's through its run
        (logger.finish if hasattr(logger, "finish") else logger.run.finish)()
    safe = json.loads(json.dumps(results, default=handle_non_serializable, ensure_ascii=False))
    safe_samples = {task: json.loads(json.dumps(rows, default=handle_non_serializable,
                                                ensure_ascii=False))
                    for task, rows in samples.items()}
    return safe, safe_samples


def _result_loggers(cfg: Any) -> list[Any]:
    """The W&B and Trackio loggers the flags ask for, built before the run as lm-eval does."""
    loggers: list[Any] = []
    if cfg.wandb_args:
        from lm_eval.loggers import WandbLogger

        loggers.append(WandbLogger(cfg.wandb_args, cfg.wandb_config_args))
    if cfg.trackio_args:
        from lm_eval.loggers import TrackioLogger

        loggers.append(TrackioLogger(cfg.trackio_args))
    return loggers


def _evaluation_tracker(cfg: Any) -> Any:
    from lm_eval.loggers import EvaluationTracker

    if cfg.output_path:
        cfg.hf_hub_log_args["output_path"] = cfg.output_path
    if os.environ.get("HF_TOKEN"):
        cfg.hf_hub_log_args["token"] = os.environ["HF_TOKEN"]
    return EvaluationTracker(**cfg.hf_hub_log_args)


def _log_to(loggers: list[Any], results: dict, samples: dict | None) -> None:
    for logger in loggers:
        try:
            logger.post_init(results)
            logger.log_eval_result()
            if samples is not None:
                logger.log_eval_samples(samples)
        except Exception as err:  # noqa: BLE001 - as lm-eval: a logger never fails the run
            log.info("Logging to %s failed: %s", type(logger).__name__, err)


def _save(tracker: Any, results: dict, samples: dict) -> None:
    """lm-eval's own output files (and its Hub push, when asked)."""
    tracker.save_results_aggregated(results=results, samples=samples or None)
    for task in results.get("configs", {}):
        if task in samples:
            tracker.save_results_samples(task_name=task, samples=samples[task])
    if tracker.push_results_to_hub or tracker.push_samples_to_hub:
        tracker.recreate_metadata_card()


def _print_tables(cfg: Any, results: dict) -> None:
    from lm_eval.utils import make_table

    batch_sizes = ",".join(map(str, results["config"].get("batch_sizes", [])))
    shown = {k: v for k, v in cfg.model_args.items() if k != "trust_remote_code"}
    print(f"{cfg.model} ({shown}), gen_kwargs: ({cfg.gen_kwargs}), limit: {cfg.limit}, "
          f"num_fewshot: {cfg.num_fewshot}, batch_size: {cfg.batch_size}"
          f"{f' ({batch_sizes})' if batch_sizes else ''}")
    print(make_table(results))
    if "groups" in results:
        print(make_table(results, "groups"))
