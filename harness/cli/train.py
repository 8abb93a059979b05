"""``slmbench train|distill|sweep|merge|reduce-rank``: making adapters."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.flags import benchmark_list
from harness.cli.train_flags import add_train_args, config_from_args


def register(sub: argparse._SubParsersAction) -> None:
    _register_train(sub)
    _register_distill(sub)
    _register_sweep(sub)
    _register_merge(sub)
    _register_reduce_rank(sub)


def _register_train(sub: argparse._SubParsersAction) -> None:
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
    add_train_args(p)
    p.set_defaults(func=train)


def _register_distill(sub: argparse._SubParsersAction) -> None:
    from harness.train.distill import DistillConfig

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
    add_train_args(p, DistillConfig)
    p.set_defaults(func=distill)


def _register_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="LoRA configuration grid or rank ablation (resumable)",
                       description="Train and score one adapter per grid point. Re-running "
                       "skips finished points and resumes an interrupted one.")
    p.add_argument("benchmarks", nargs="+")
    p.add_argument("--grid", default="rank",
                   help="lora16 (rank x alpha x modules), rank (r in 4,8,16,32), modules (qv, "
                        "attention, all at r16), or a YAML file")
    p.add_argument("--sweep-dir", default=None, help="default runs/sweeps/<grid>_<benchmarks>")
    p.add_argument("--eval-limit", type=int, default=None,
                   help="test questions scored per point (0: skip scoring)")
    p.add_argument("--maj4", action="store_true",
                   help="also score Maj@4 (4 samples, majority vote) on the same questions")
    p.add_argument("--circular", action="store_true",
                   help="also score each benchmark's _circular variant (strict and mean over "
                   "rotations of the options) on about as many questions; adding it to a "
                   "finished sweep scores its points without training them again")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run points as Ray tasks: a local cluster, or the cluster at ADDRESS "
                   "(e.g. ray://head:10001 or auto); folders must be on shared storage")
    p.add_argument("--ray-cpus", type=float, default=1.0, help="CPUs per point on Ray")
    p.add_argument("--ray-gpus", type=float, default=0.0, help="GPUs per point on Ray")
    add_train_args(p)
    p.set_defaults(func=sweep)


def _register_merge(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("merge", help="merge zoo adapters into one (linear, TIES, DARE, ...)")
    p.add_argument("--zoo", required=True, help="manifest holding the source adapters")
    p.add_argument("--adapters", required=True, help="comma-separated adapter names")
    p.add_argument("--method", default="ties",
                   help="linear, ties, dare_linear, dare_ties, cat, svd, magnitude_prune")
    p.add_argument("--weights", default=None, help="comma-separated, default all 1.0")
    p.add_argument("--density", type=float, default=0.5, help="kept share for TIES/DARE")
    p.add_argument("--out", required=True, help="manifest to publish the merged adapter into")
    p.add_argument("--name", default=None)
    p.set_defaults(func=merge)


def _register_reduce_rank(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reduce-rank", help="cut zoo adapters to a lower rank (truncated SVD)",
                       description="Publish each adapter of --zoo cut to --rank (the best "
                       "rank-r approximation of every adapted matrix's update, by peft's svd "
                       "combination) into --out, with the same names and routes, so the two "
                       "manifests run on the same questions and pair in `slmbench regress`.")
    p.add_argument("--zoo", required=True, help="manifest holding the source adapters")
    p.add_argument("--rank", type=int, required=True, help="the new rank, below the source's")
    p.add_argument("--out", required=True, help="manifest to publish the reduced adapters into")
    p.add_argument("--adapters", default=None, help="comma-separated names (default: all)")
    p.set_defaults(func=reduce_rank)


def train(args: argparse.Namespace) -> int:
    from harness.train.workflow import train_and_publish

    benchmarks = benchmark_list(args.benchmarks)
    name = args.name or "+".join(benchmarks)
    cfg = config_from_args(args, benchmarks, args.output_dir or f"runs/train/{name}")
    train_and_publish(cfg, name, zoo=Path(args.zoo) if args.zoo else None,
                      evaluate=args.evaluate, eval_limit=args.eval_limit, baseline=args.baseline,
                      seen_limit=args.seen_limit)
    return 0


def distill(args: argparse.Namespace) -> int:
    from harness.train.distill import DistillConfig, DistillTrainer
    from harness.train.workflow import train_and_publish

    benchmarks = benchmark_list(args.benchmarks)
    name = args.name or f"{'+'.join(benchmarks)}_kd"
    if args.student_layers:
        from harness.artefacts.embedded import resolve_pretrained
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


def sweep(args: argparse.Namespace) -> int:
    from harness.train.sweep import run_sweep

    benchmarks = benchmark_list(args.benchmarks)
    folder = Path(args.sweep_dir or f"runs/sweeps/{args.grid}_{'+'.join(benchmarks)}")
    base = config_from_args(args, benchmarks, str(folder))
    run_sweep(base, args.grid, folder, eval_limit=args.eval_limit, ray_address=args.ray,
              cpus_per_point=args.ray_cpus, gpus_per_point=args.ray_gpus, maj4=args.maj4,
              circular=args.circular)
    return 0


def merge(args: argparse.Namespace) -> int:
    from harness.train.merge import merge_adapters

    weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    entry = merge_adapters(args.zoo, args.adapters.split(","), args.method, args.out,
                           args.name or f"merged_{args.method}", weights, args.density)
    print(f"merged {args.adapters} -> {entry.name} (rank {entry.rank}, {entry.size_mb} MB) "
          f"in {args.out}")
    return 0


def reduce_rank(args: argparse.Namespace) -> int:
    from harness.train.reduce_rank import reduce_zoo

    names = args.adapters.split(",") if args.adapters else None
    for reduced in reduce_zoo(args.zoo, args.rank, args.out, names):
        entry = reduced.entry
        print(f"{entry.name}: rank {reduced.source_rank} -> {entry.rank}, kept "
              f"{reduced.kept_energy:.1%} of the update's energy, {entry.size_mb} MB "
              f"-> {args.out}")
    return 0
