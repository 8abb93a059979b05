r"""The ``slmbench`` command: one small function per subcommand.

Examples:
    slmbench lm-eval --tasks telecom_all --model hf --model_args pretrained=embedded --limit 20
    slmbench lm-eval --tasks telecom_all,telecom_all_maj4 --metadata data_dir=../shared/data
    slmbench validate --data-dir ../shared/data
    slmbench data stats teleqna --data-dir ../shared/data
    slmbench data synth telecom --out data/synth/telecom --seed 42
    slmbench embedded --rebuild
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


def cmd_lm_eval(argv: list[str]) -> int:
    from harness.lm_eval_entry import run_lm_eval

    return run_lm_eval(argv)


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.validate import validate_tasks

    return validate_tasks(data_dir=args.data_dir, require_data=args.require_data)


def cmd_data_stats(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from harness.data.source import load_splits_and_report

    table = Table(title="slmbench data")
    # The name never wraps or gets cut: in 80 columns "three_gpp_tsg" became "three_gpp_…".
    for col in ("benchmark", "train", "validation", "test", "duplicates", "skipped", "source"):
        table.add_column(col, no_wrap=col == "benchmark")
    for name in args.benchmarks:
        parts, report = load_splits_and_report(name, data_dir=args.data_dir, seed=args.seed)
        table.add_row(name, *(str(len(parts[s])) for s in ("train", "validation", "test")),
                      str(report.duplicates), str(len(report.skipped)), report.source)
    Console().print(table)
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    from harness.data.synth.cli_args import options_from_args, summary
    from harness.data.synth.pipeline import run_synth

    print(summary(run_synth(options_from_args(args))))
    return 0


def cmd_intents(args: argparse.Namespace) -> int:
    from harness.console import wide_console
    from harness.report.intent_table import intent_tables
    from harness.runs.store import load_run

    run = load_run(args.run)
    for table in intent_tables(run, args.task):
        wide_console().print(table)
    return 0


def cmd_embedded(args: argparse.Namespace) -> int:
    from harness.models.embedded import ensure_checkpoint, gguf_path

    print(f"gguf:       {gguf_path()}")
    print(f"checkpoint: {ensure_checkpoint(force=args.rebuild)}")
    return 0


def cmd_gguf(args: argparse.Namespace) -> int:
    """Print one path per type: the line a script reads (``$(slmbench gguf ... | tail -1)``)."""
    from pathlib import Path

    from harness.models.embedded import resolve_pretrained
    from harness.quant.gguf_cache import cached_gguf

    source = Path(resolve_pretrained(args.model))
    for gguf_type in args.type.split(","):
        print(cached_gguf(source, gguf_type))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.train.cli_args import config_from_args
    from harness.train.workflow import train_and_publish

    benchmarks = [b for entry in args.benchmarks for b in entry.split(",") if b]
    name = args.name or "+".join(benchmarks)
    cfg = config_from_args(args, benchmarks, args.output_dir or f"runs/train/{name}")
    train_and_publish(cfg, name, zoo=Path(args.zoo) if args.zoo else None,
                      evaluate=args.evaluate, eval_limit=args.eval_limit, baseline=args.baseline,
                      seen_limit=args.seen_limit)
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.train.cli_args import config_from_args
    from harness.train.distill import DistillConfig, DistillTrainer
    from harness.train.workflow import train_and_publish

    benchmarks = [b for entry in args.benchmarks for b in entry.split(",") if b]
    name = args.name or f"{'+'.join(benchmarks)}_kd"
    if args.student_layers:
        from harness.models.embedded import resolve_pretrained
        from harness.paths import cache_dir
        from harness.train.student import build_pruned_student

        source = resolve_pretrained(args.base_model)
        folder = cache_dir() / "students" / f"{Path(source).name}-{args.student_layers}layers"
        args.base_model = str(build_pruned_student(source, folder, args.student_layers))
    if args.student_adapter:
        from harness.train.student import fold_student_adapter

        args.base_model = str(fold_student_adapter(args.base_model, args.student_adapter))
    cfg = config_from_args(args, benchmarks, args.output_dir or f"runs/distill/{name}",
                           DistillConfig)
    train_and_publish(cfg, name, zoo=Path(args.zoo) if args.zoo else None,
                      evaluate=args.evaluate, eval_limit=args.eval_limit,
                      seen_limit=args.eval_limit, trainer_cls=DistillTrainer)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.train.cli_args import config_from_args
    from harness.train.sweep import run_sweep

    benchmarks = [b for entry in args.benchmarks for b in entry.split(",") if b]
    folder = Path(args.sweep_dir or f"runs/sweeps/{args.grid}_{'+'.join(benchmarks)}")
    base = config_from_args(args, benchmarks, str(folder))
    run_sweep(base, args.grid, folder, eval_limit=args.eval_limit, ray_address=args.ray,
              cpus_per_point=args.ray_cpus, gpus_per_point=args.ray_gpus, maj4=args.maj4)
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from harness.train.merge import merge_adapters

    weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    entry = merge_adapters(args.zoo, args.adapters.split(","), args.method, args.out,
                           args.name or f"merged_{args.method}", weights, args.density)
    print(f"merged {args.adapters} -> {entry.name} (rank {entry.rank}, {entry.size_mb} MB) "
          f"in {args.out}")
    return 0


def cmd_zoo_record(args: argparse.Namespace) -> int:
    from harness.zoo.record import describe, record_eval_runs

    for entry in record_eval_runs(args.manifest, args.runs):
        print(f"recorded {describe(entry)}")
    return 0


def cmd_zoo_verify(args: argparse.Namespace) -> int:
    from transformers import AutoConfig

    from harness.models.embedded import resolve_pretrained
    from harness.zoo.manifest import load_manifest, verify_entry

    manifest = load_manifest(args.manifest)
    pretrained = resolve_pretrained(manifest.base_model)
    config = AutoConfig.from_pretrained(pretrained)
    for entry in manifest.adapters:
        verify_entry(manifest, entry, pretrained, config)
        print(f"ok  {entry.name:<20} {entry.task:<24} r={entry.rank:<3} {entry.size_mb} MB "
              f"sha256 {entry.sha256[:12]}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Exit 1 when a requested format produced no result (skipped or crashed).

    A GPU run whose GPU formats all skipped would otherwise look like a pass; ``--allow-skip``
    accepts it (exit 0), the table of reasons is printed either way.
    """
    from harness.bench.outcomes import outcome_table, unmeasured
    from harness.bench.runner import BenchConfig, run_bench
    from harness.console import wide_console

    synthetic = None
    if args.synthetic and args.synthetic.lower() != "none":
        pp, tg = (int(x) for x in args.synthetic.split(","))
        synthetic = (pp, tg)
    formats = args.formats.split(",")
    report = run_bench(BenchConfig(
        model=args.model, adapter=args.adapter, zoo=args.zoo, switches=args.switches,
        formats=formats,
        task=None if args.task == "none" else args.task, limit=args.limit,
        data_dir=args.data_dir, prompts=args.prompts, gen_tokens=args.gen_tokens,
        min_runs=args.min_runs, min_seconds=args.min_seconds, synthetic=synthetic,
        threads=args.threads, chat_template=args.chat_template, output_dir=args.output_dir,
        gptq_python=args.gptq_python, vllm_python=args.vllm_python,
        calibration=args.calibration))
    missing = unmeasured(report["results"], formats)
    if not missing:
        return 0
    wide_console().print(outcome_table(report["results"], formats))
    if args.allow_skip:
        return 0
    print(f"slmbench: error: bench: {len(missing)} of {len(formats)} requested formats "
          f"produced no result ({', '.join(missing)}); --allow-skip accepts that",
          file=sys.stderr)
    return 1


def cmd_regress(args: argparse.Namespace) -> int:
    from harness.report.regress import run_gate, write_export

    if args.export:
        if args.out is None or args.baseline or args.candidate:
            raise SlmbenchError("regress --export RUN [RUN ...] takes --out FILE and no "
                                "--baseline/--candidate")
        payload = write_export(args.export, args.out)
        runs = payload.get("runs", [payload])
        print(f"exported {', '.join(r['label'] for r in runs)} -> {args.out}")
        return 0
    if not args.baseline or not args.candidate:
        raise SlmbenchError("regress needs --baseline and --candidate (or --export RUN --out FILE)")
    return run_gate(args.baseline, args.candidate, args.baseline_label, args.tolerance,
                    args.alpha, args.allow_mismatch, args.summary, tasks=args.task)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.report.leaderboard import render_leaderboards

    if not Path(args.runs).is_dir():
        raise SlmbenchError(f"leaderboard: runs folder {args.runs} does not exist")
    written = render_leaderboards(args.runs, args.out)
    print(f"wrote {len(written)} files to {args.out} (index: {Path(args.out) / 'README.md'})")
    return 0


def cmd_campaign(args: argparse.Namespace) -> int:
    import shutil
    import tempfile
    from pathlib import Path

    from harness.data.source import resolve_data_dir
    from harness.reliability.campaign import PARTS, QUICK_KILL_JOBS, run_campaign

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
    work = Path(tempfile.mkdtemp(prefix="slmbench-campaign-"))
    try:
        results = run_campaign(data_dir, Path(args.zoo), run, work, Path(args.out), parts,
                               fuzz_rows=900 if args.quick else args.fuzz_rows,
                               kills=2 if args.quick else args.kills,
                               kill_jobs=QUICK_KILL_JOBS if args.quick else None)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {Path(args.out) / 'reliability.md'}")
    for line in results["failures"]:
        print(f"FAIL {line}")
    return 1 if results["failures"] else 0


def cmd_judge(args: argparse.Namespace) -> int:
    from harness.judge.cli import run_judge_command

    return run_judge_command(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slmbench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("lm-eval", help="run lm-eval with slmbench tasks and models (any lm-eval flag)",
                   add_help=False)
    p = sub.add_parser("validate", help="load every shipped task YAML (and its data if given)")
    p.add_argument("--data-dir", default=None, help="also build each task on this data")
    p.add_argument("--require-data", action="store_true",
                   help="fail when a benchmark has no data in --data-dir (default: report it "
                        "as 'no data here'; also set by SLMBENCH_REQUIRE=data)")
    p.set_defaults(func=cmd_validate)
    data = sub.add_parser("data", help="inspect benchmark data").add_subparsers(
        dest="data_command", required=True, metavar="DATA_COMMAND")
    p = data.add_parser("stats", help="split sizes and skipped rows per benchmark")
    p.add_argument("benchmarks", nargs="+")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=cmd_data_stats)
    from harness.data.synth.cli_args import DESCRIPTION, add_synth_args

    p = data.add_parser("synth", help="generate a synthetic telecom or e-commerce data set",
                        description=DESCRIPTION,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_synth_args(p)
    p.set_defaults(func=cmd_data_synth)
    p = sub.add_parser("intents", help="per-intent and per-language scores of an intent run",
                       description="Precision, recall and F1 per intent, and accuracy and "
                       "macro-F1 per language, from a run folder's per-question records.")
    p.add_argument("run", help="run folder (runs/eval/<id>)")
    p.add_argument("--task", default="ecommerce_intent", help="task in that run")
    p.set_defaults(func=cmd_intents)
    p = sub.add_parser("embedded", help="materialize the embedded default model and print paths")
    p.add_argument("--rebuild", action="store_true", help="rebuild the cached checkpoint")
    p.set_defaults(func=cmd_embedded)
    p = sub.add_parser("gguf", help="a checkpoint as a GGUF of a given type (cached); prints "
                       "its path", description="Export a transformers checkpoint to GGUF and "
                       "quantize it with llama.cpp, once per checkpoint content; the file "
                       "`slmbench bench` times and `--model llama-cpp(-peft)` loads.")
    p.add_argument("--model", default="embedded", help="'embedded' or a checkpoint folder")
    p.add_argument("--type", default="q4_k_m",
                   help="comma-separated: f32, f16, q8_0, q5_k_m, q4_k_m, q4_0")
    p.set_defaults(func=cmd_gguf)
    p = sub.add_parser("train", help="train a LoRA adapter on benchmark train splits",
                       description="Train one LoRA adapter (several benchmarks: a monolithic "
                       "one). Re-running the same command resumes from the last checkpoint.")
    p.add_argument("benchmarks", nargs="+", help="benchmark(s), e.g. teleqna or teleqna,oranbench")
    p.add_argument("--name", default=None, help="adapter name (default: the benchmarks)")
    p.add_argument("--output-dir", default=None, help="run folder (default runs/train/<name>)")
    p.add_argument("--zoo", default=None, help="publish the best adapter into this manifest")
    p.add_argument("--evaluate", action="store_true",
                   help="score Pass@1 on the unseen (test) and seen (train) splits")
    p.add_argument("--baseline", action="store_true", help="also score the plain backbone")
    p.add_argument("--eval-limit", type=int, default=None, help="test questions scored")
    p.add_argument("--seen-limit", type=int, default=None,
                   help="train-split questions scored (default: --eval-limit)")
    from harness.train.cli_args import add_train_args

    add_train_args(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("distill", help="distil a teacher into a LoRA student (resumable)",
                       description="Train a LoRA student toward a frozen teacher (KD mixed "
                       "with cross-entropy) on benchmark train splits, in the same resumable "
                       "loop, record and run store as slmbench train.")
    p.add_argument("benchmarks", nargs="+")
    p.add_argument("--name", default=None, help="student adapter name (default <tasks>_kd)")
    p.add_argument("--output-dir", default=None, help="default runs/distill/<name>")
    p.add_argument("--student-layers", type=int, default=None,
                   help="student = --base-model with only N of its decoder layers (evenly "
                        "spaced, built once into the cache)")
    p.add_argument("--student-adapter", default=None,
                   help="an SFT adapter of the student (after --student-layers), folded into "
                        "its weights before distillation: the study's SFT-student arms")
    p.add_argument("--zoo", default=None, help="publish the student adapter into this manifest")
    p.add_argument("--evaluate", action="store_true",
                   help="score Pass@1 on the unseen and seen splits")
    p.add_argument("--eval-limit", type=int, default=None, help="questions scored")
    from harness.train.distill import DistillConfig

    add_train_args(p, DistillConfig)
    p.set_defaults(func=cmd_distill)
    p = sub.add_parser("sweep", help="LoRA configuration grid or rank ablation (resumable)",
                       description="Train and score one adapter per grid point. Re-running "
                       "skips finished points and resumes an interrupted one.")
    p.add_argument("benchmarks", nargs="+")
    p.add_argument("--grid", default="rank",
                   help="lora16 (rank x alpha x modules), rank (r in 4,8,16,32), or a YAML file")
    p.add_argument("--sweep-dir", default=None, help="default runs/sweeps/<grid>_<benchmarks>")
    p.add_argument("--eval-limit", type=int, default=None,
                   help="test questions scored per point (0: skip scoring)")
    p.add_argument("--maj4", action="store_true",
                   help="also score Maj@4 (4 samples, majority vote) on the same questions")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run points as Ray tasks: a local cluster, or the cluster at ADDRESS "
                   "(e.g. ray://head:10001 or auto); folders must be on shared storage")
    p.add_argument("--ray-cpus", type=float, default=1.0, help="CPUs per point on Ray")
    p.add_argument("--ray-gpus", type=float, default=0.0, help="GPUs per point on Ray")
    add_train_args(p)
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("merge", help="merge zoo adapters into one (linear, TIES, DARE, ...)")
    p.add_argument("--zoo", required=True, help="manifest holding the source adapters")
    p.add_argument("--adapters", required=True, help="comma-separated adapter names")
    p.add_argument("--method", default="ties",
                   help="linear, ties, dare_linear, dare_ties, cat, svd, magnitude_prune")
    p.add_argument("--weights", default=None, help="comma-separated, default all 1.0")
    p.add_argument("--density", type=float, default=0.5, help="kept share for TIES/DARE")
    p.add_argument("--out", required=True, help="manifest to publish the merged adapter into")
    p.add_argument("--name", default=None)
    p.set_defaults(func=cmd_merge)
    p = sub.add_parser("bench", help="time, size and score deployment formats side by side",
                       description="Each format runs in its own process: load time, prefill "
                       "and decode tokens/s, TTFT and latency p50/p95, peak RSS/VRAM, energy, "
                       "bandwidth utilisation and accuracy on the timed engine.")
    p.add_argument("--model", default="embedded", help="'embedded' or a checkpoint folder")
    p.add_argument("--adapter", default=None,
                   help="LoRA folder folded into the model before export")
    p.add_argument("--zoo", default=None,
                   help="adapter manifest whose adapters hf-peft and gguf-<quant>+lora load "
                        "beside the unadapted model, each task routed to its adapter")
    p.add_argument("--switches", type=int, default=50,
                   help="adapter switches timed per routed format")
    p.add_argument("--formats", default="fp32,gguf-f16,gguf-q8_0,gguf-q4_k_m",
                   help="comma-separated: fp32, fp16, bf16, gguf-f32, gguf-f16, gguf-q8_0, "
                        "gguf-q5_k_m, gguf-q4_k_m, gguf-q4_0, gguf-shipped, gptq, vllm, "
                        "hf-peft and gguf-<quant>+lora (these two need --zoo)")
    p.add_argument("--task", default="teleqna", help="accuracy task ('none' to skip)")
    p.add_argument("--limit", type=int, default=200, help="questions scored per format")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--prompts", type=int, default=16, help="real task prompts timed")
    p.add_argument("--gen-tokens", type=int, default=64, help="fixed generation length")
    p.add_argument("--min-runs", type=int, default=10)
    p.add_argument("--min-seconds", type=float, default=20.0)
    p.add_argument("--synthetic", default="128,64",
                   help="llama-bench style pp,tg run ('none' to skip)")
    p.add_argument("--threads", type=int, default=None,
                   help="llama.cpp threads for decode and prompt batches (default: torch's "
                        "thread count, so every engine gets the same cores; llama-cpp-python's "
                        "own default decodes on half of them)")
    p.add_argument("--chat-template", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--output-dir", default="runs/bench")
    p.add_argument("--gptq-python", default=None,
                   help="python of the environment with GPTQModel (tox -e gptq); default "
                        "$SLMBENCH_GPTQ_PYTHON, else this one")
    p.add_argument("--vllm-python", default=None,
                   help="python of the environment with vLLM (tox -e vllm); default "
                        "$SLMBENCH_VLLM_PYTHON, else this one")
    p.add_argument("--calibration", type=int, default=128,
                   help="GPTQ calibration texts drawn from the task's train split")
    p.add_argument("--allow-skip", action="store_true",
                   help="exit 0 even when a requested format was skipped or crashed (default: "
                        "exit 1, after a table of the reasons)")
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser(
        "regress", help="fail when a candidate eval run regresses against a baseline",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Pair the two runs' scores by question id per baseline task (exact "
        "McNemar for 0/1 scores, paired bootstrap otherwise). A task regresses when delta < "
        "-tolerance AND p < alpha. Exit 0: passed, 1: a task regressed, 2: refused (missing "
        "task, unreadable samples, or question set / data_sha256 / version mismatch).\n\n"
        "  slmbench regress --export runs/eval/<id> [runs/eval/<id2> ...] --out base.json\n"
        "  slmbench regress --baseline base.json --candidate runs/eval/<id> --summary gate.md")
    p.add_argument("--baseline", default=None,
                   help="run folder or exported JSON (one run, or {'runs': [...]})")
    p.add_argument("--baseline-label", default=None,
                   help="run label (or run_id) to pick from a multi-run baseline JSON")
    p.add_argument("--candidate", default=None, help="run folder or exported JSON")
    p.add_argument("--tolerance", type=float, default=0.02,
                   help="smallest score drop that counts (absolute, default 0.02)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level")
    p.add_argument("--allow-mismatch", action="store_true",
                   help="compare differing question sets on their shared ids (warns)")
    p.add_argument("--summary", default=None, help="write a markdown summary (PR comment) here")
    p.add_argument("--task", action="append", default=None,
                   help="gate only this baseline task (repeatable; default: all of them)")
    p.add_argument("--export", nargs="+", default=None, metavar="RUN",
                   help="instead: export run folder(s) as a committable baseline JSON")
    p.add_argument("--out", default=None, help="file --export writes")
    p.set_defaults(func=cmd_regress)
    p = sub.add_parser("leaderboard", help="render Markdown leaderboards from the run store",
                       description="Accuracy, seen vs unseen, rank ablation, LoRA sweep and "
                       "quantization tables (with PNG figures) from the run records; the same "
                       "records always render to the same bytes.")
    p.add_argument("--runs", default="runs", help="run store folder (default runs)")
    p.add_argument("--out", default="leaderboards", help="output folder (default leaderboards)")
    p.set_defaults(func=cmd_leaderboard)
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
    p.set_defaults(func=cmd_campaign)
    p = sub.add_parser("judge", help="LLM-as-a-judge scoring of free-form answers",
                       description="Score an eval run's (or a JSONL file's) answers with one "
                       "or more judges (rubric 1-10, or pairwise A vs B with order swap) and "
                       "record a judge run in the store.")
    from harness.judge.cli import add_judge_args

    add_judge_args(p)
    p.set_defaults(func=cmd_judge)
    zoo = sub.add_parser("zoo", help="adapter zoo").add_subparsers(
        dest="zoo_command", required=True, metavar="ZOO_COMMAND")
    p = zoo.add_parser("verify", help="check every adapter's sha256 and base model")
    p.add_argument("manifest")
    p.set_defaults(func=cmd_zoo_verify)
    p = zoo.add_parser("record", help="write an eval run's scores into the entries it scored",
                       description="Copy the per-task scores of hf-peft eval runs of this "
                       "manifest (runs/eval/<id>) into each serving entry's test_metrics, "
                       "and name the runs in its eval_runs.")
    p.add_argument("manifest")
    p.add_argument("runs", nargs="+", help="eval run folders")
    p.set_defaults(func=cmd_zoo_record)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if argv[:1] == ["lm-eval"]:
            return cmd_lm_eval(argv[1:])
        args = build_parser().parse_args(argv)
        return args.func(args)
    except SlmbenchError as err:
        print(f"slmbench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("slmbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
