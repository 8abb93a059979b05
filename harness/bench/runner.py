"""``slmbench bench``: every requested format of one model, measured side by side.

The runner prepares each format's artifact once (merge the adapter, export GGUF, quantize;
cached by content), measures the machine's memory bandwidth, then runs each format in its
own worker process and gathers the results into one JSON per run (config, environment, raw
samples) and a ``rich`` table. Accuracy deltas are paired differences against the
full-precision baseline on the same questions, with a 95% confidence interval; the routed
``gguf-<quant>+lora`` rows pair against ``hf-peft`` instead, the same zoo on transformers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from harness.bench.formats import SEPARATE_ENGINES, Format, parse_format
from harness.bench.outcomes import crash_record, no_result
from harness.child import failure_reason
from harness.console import wide_console
from harness.errors import SlmbenchError
from harness.hashing import files_digest, sha256_json
from harness.meters.bandwidth import bandwidth_utilisation, device_bandwidth
from harness.paths import cache_dir
from harness.runs.atomic import write_json_atomic
from harness.runs.store import write_run
from harness.significance import compare_paired, pair_by_id

# bench.json layout. 2: ``delta_vs_baseline`` is ``significance.compare_paired``'s record
# (ci_low/ci_high from the population variance, plus p_value, test, lost, gained); schema 1
# (no ``schema_version``) wrote ci95_low/ci95_high from the sample variance, and its readers
# (``report.mdtable.delta_ci``) still accept it.
BENCH_SCHEMA = 2


def _help(text: str, flag: bool = True) -> dict[str, Any]:
    return {"help": text, "flag": flag}


@dataclass
class BenchConfig:
    """One bench run; ``slmbench bench``'s flags are generated from these fields."""

    model: str = field(default="embedded", metadata=_help("'embedded' or a checkpoint folder"))
    adapter: str | None = field(default=None, metadata=_help(
        "LoRA folder folded into the model before export"))
    zoo: str | None = field(default=None, metadata=_help(
        "adapter manifest whose adapters hf-peft and gguf-<quant>+lora load beside the "
        "unadapted model, each task routed to its adapter"))
    formats: list[str] = field(
        default_factory=lambda: ["fp32", "gguf-f16", "gguf-q8_0", "gguf-q4_k_m"],
        metadata=_help("fp32, fp16, bf16, gguf-f32, gguf-f16, gguf-q8_0, gguf-q5_k_m, "
                       "gguf-q4_k_m, gguf-q4_0, gguf-shipped, gptq, vllm, hf-peft and "
                       "gguf-<quant>+lora (these two need --zoo)"))
    task: str | None = field(default="teleqna", metadata=_help(
        "accuracy task ('none' to skip)"))
    limit: int | None = field(default=200, metadata=_help("questions scored per format"))
    data_dir: str | None = field(default=None, metadata=_help("benchmark data folder"))
    prompts: int = field(default=16, metadata=_help("real task prompts timed"))
    gen_tokens: int = field(default=64, metadata=_help("fixed generation length"))
    min_runs: int = field(default=10, metadata=_help("timed repetitions, at least"))
    min_seconds: float = field(default=20.0, metadata=_help("seconds of timing, at least"))
    warmup: int = field(default=2, metadata=_help("untimed requests first", flag=False))
    synthetic: tuple[int, int] | None = field(default=(128, 64), metadata=_help(
        "llama-bench style pp,tg run ('none' to skip)"))
    threads: int | None = field(default=None, metadata=_help(
        "llama.cpp threads for decode and prompt batches (default: torch's thread count, so "
        "every engine gets the same cores; llama-cpp-python's own default decodes on half of "
        "them)"))
    chat_template: bool = field(default=True, metadata=_help(
        "render the timed prompts with the model's chat template"))
    llama_mmap: bool = field(default=True, metadata=_help(
        "llama.cpp maps the GGUF (its default); --no-llama-mmap reads it into memory, so the "
        "weights its extra buffer types repack (AMX) are not resident twice"))
    output_dir: str = field(default="runs/bench", metadata=_help("bench run folders go here"))
    gptq_python: str | None = field(default=None, metadata=_help(
        "python of the environment with GPTQModel (tox -e gptq); default "
        "$SLMBENCH_GPTQ_PYTHON, else this one"))
    vllm_python: str | None = field(default=None, metadata=_help(
        "python of the environment with vLLM (tox -e vllm); default $SLMBENCH_VLLM_PYTHON, "
        "else this one"))
    calibration: int = field(default=128, metadata=_help(
        "GPTQ calibration texts drawn from the task's train split"))
    switches: int = field(default=50, metadata=_help(
        "adapter switches timed per routed format"))
    alternating_rounds: int = field(default=8, metadata=_help(
        "adapter on/off request pairs timed in one process per routed format (the decode "
        "ratio is their median, with a distribution-free 95 percent interval from 6 rounds on; "
        "more rounds narrow it)"))
    interleaved_pairs: int = field(default=40, metadata=_help(
        "llama.cpp routed formats: pairs of 8-token blocks decoded with the adapter on and off "
        "in turn within one request (a finer decode ratio, with its 95 percent interval, than "
        "whole requests on a noisy machine; 0 skips it)"))

    def __post_init__(self) -> None:
        routed = [name for name in self.formats if parse_format(name).routed]
        if routed and not self.zoo:
            raise SlmbenchError(f"bench: {', '.join(routed)} load every adapter of a zoo; give "
                                "--zoo adapters_zoo/<name>.yaml")
        if self.switches < 1:
            raise SlmbenchError("bench: --switches must be >= 1")
        if self.alternating_rounds < 1:
            raise SlmbenchError("bench: --alternating-rounds must be >= 1")
        if self.interleaved_pairs < 0:
            raise SlmbenchError("bench: --interleaved-pairs must be >= 0")
        if self.gen_tokens < 2:
            raise SlmbenchError("bench: --gen-tokens must be >= 2 (decode is timed after the "
                                "first token)")
        if self.min_runs < 1 or self.min_seconds < 0:
            raise SlmbenchError("bench: --min-runs must be >= 1 and --min-seconds >= 0")


def _base_source(cfg: BenchConfig) -> Path:
    """The model's own checkpoint, which a zoo's adapters sit on (no ``--adapter`` folded)."""
    from harness.artefacts.embedded import resolve_pretrained

    base = Path(resolve_pretrained(cfg.model))
    if not base.is_dir():
        raise SlmbenchError(f"bench: --model {cfg.model!r} must be 'embedded' or a local "
                            "checkpoint folder (the Hub is not reachable from here)")
    return base


def _hf_source(cfg: BenchConfig) -> Path:
    """The full-precision checkpoint every format is derived from (adapter merged in)."""
    base = _base_source(cfg)
    if not cfg.adapter:
        return base
    from harness.artefacts.lora_fold import fold_adapter_into

    key = sha256_json([str(base), files_digest(Path(cfg.adapter))])[:16]
    merged = cache_dir() / "bench" / f"merged-{key}"
    if not (merged / "config.json").is_file():
        fold_adapter_into(base, Path(cfg.adapter), merged, overwrite=True)
    return merged


def prepare_artifact(fmt: Format, source: Path, cfg: BenchConfig) -> Path:
    """The file or folder this format loads, built once and cached by content."""
    if fmt.engine == "transformers-peft":
        return _base_source(cfg)
    if fmt.engine == "llama.cpp-lora":  # the backbone at that quant; adapters: routed_spec
        quant = f"gguf-{fmt.precision}"
        return prepare_artifact(parse_format(quant), _base_source(cfg), cfg)
    if fmt.engine in ("transformers", "vllm"):
        return source
    if fmt.engine == "gptq":
        return _gptq_artifact(source, cfg)
    if fmt.name == "gguf-shipped":
        from harness.artefacts.embedded import gguf_path, is_embedded

        if not is_embedded(cfg.model) or cfg.adapter:
            raise SlmbenchError("bench: gguf-shipped exists only for the embedded model "
                                "without an adapter")
        return gguf_path()
    from harness.quant.gguf_cache import cached_gguf

    return cached_gguf(source, fmt.precision)


def routed_spec(fmt: Format, artifact: Path, cfg: BenchConfig) -> dict[str, Any]:
    """What a routed format's worker needs beyond the backbone.

    The zoo, and which adapter is active while it is timed: the task's own, or the first
    adapter when no entry routes the task.
    """
    from harness.artefacts.zoo_manifest import load_manifest

    manifest = load_manifest(cfg.zoo)
    entry = manifest.route(cfg.task) or manifest.adapters[0]
    spec = {"zoo": str(cfg.zoo), "pretrained": cfg.model, "active_adapter": entry.name,
            "active_modules": list(entry.target_modules or []),
            "adapter_names": [a.name for a in manifest.adapters], "switches": cfg.switches,
            "alternating_rounds": cfg.alternating_rounds,
            "interleaved_pairs": cfg.interleaved_pairs}
    if fmt.engine == "llama.cpp-lora":
        from harness.models.llama_cpp_peft import zoo_adapter_ggufs

        spec["adapter_ggufs"] = {name: str(path) for name, path in
                                 zoo_adapter_ggufs(manifest, artifact, cfg.model).items()}
    return spec


def _adapter_bytes(spec: dict[str, Any]) -> int:
    """Disk bytes of the adapters a routed format loads beside its backbone."""
    if spec.get("adapter_ggufs"):
        return sum(Path(p).stat().st_size for p in spec["adapter_ggufs"].values())
    from harness.artefacts.zoo_manifest import load_manifest

    manifest = load_manifest(spec["zoo"])
    return sum(_file_bytes(manifest.folder_of(entry)) for entry in manifest.adapters)


def engine_python(fmt: Format, cfg: BenchConfig) -> str:
    """The interpreter of the environment that runs ``fmt``'s engine."""
    import os

    if fmt.engine not in SEPARATE_ENGINES:
        return sys.executable
    given = getattr(cfg, f"{fmt.engine}_python")
    return given or os.environ.get(SEPARATE_ENGINES[fmt.engine][2]) or sys.executable


def engine_missing(fmt: Format, python: str) -> str | None:
    """Why ``python`` cannot run ``fmt``'s engine (one line), or None when it can."""
    if fmt.engine not in SEPARATE_ENGINES:
        return None
    module, extra, env = SEPARATE_ENGINES[fmt.engine]
    try:
        proc = subprocess.run([python, "-c", f"import {module}, harness"], capture_output=True,
                              text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as err:
        return f"{python} cannot be run ({err})"
    if proc.returncode == 0:
        return None
    return (f"{module} is not importable by {python} (install slmbench[{extra}] in its own "
            f"environment, e.g. tox -e {fmt.engine}, and pass --{fmt.engine}-python or "
            f"${env}): {failure_reason(proc)}")


class StepCrashed(SlmbenchError):
    """A child process preparing a format's artifact died; its result entry says how."""

    def __init__(self, proc: subprocess.CompletedProcess, stage: str):
        self.record = crash_record(proc, stage)
        super().__init__(self.record["crashed"])


def _gptq_artifact(source: Path, cfg: BenchConfig) -> Path:
    """GPTQ 4-bit of ``source`` calibrated on the task's train split, made once per content."""
    from harness.quant.gptq import DONE_FILE

    if not cfg.task:
        raise SlmbenchError("bench: gptq calibrates on a task's train split; give --task")
    key = sha256_json([files_digest(source), cfg.task, cfg.calibration, cfg.data_dir,
                       cfg.chat_template])[:16]
    target = cache_dir() / "bench" / f"gptq-{key}"
    if (target / DONE_FILE).is_file():
        return target
    cmd = [engine_python(parse_format("gptq"), cfg), "-m", "harness.quant.gptq", str(source),
           str(target), "--task", cfg.task, "--calibration", str(cfg.calibration)]
    if cfg.data_dir:
        cmd += ["--data-dir", str(cfg.data_dir)]
    if not cfg.chat_template:
        cmd.append("--no-chat-template")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not (target / DONE_FILE).is_file():
        raise StepCrashed(proc, "gptq quantization")
    return target


def task_prompts(cfg: BenchConfig, tokenizer) -> list[str]:
    """Chat-rendered prompts of the task's first test questions (real data, fixed order)."""
    from harness.task_loader import load_task, task_manager

    task = load_task(task_manager(cfg.data_dir), cfg.task or "teleqna")
    docs = list(task.test_docs())[: cfg.prompts]
    texts = [task.doc_to_text(d) for d in docs]
    if cfg.chat_template and getattr(tokenizer, "chat_template", None):
        return [tokenizer.apply_chat_template([{"role": "user", "content": t}], tokenize=False,
                                              add_generation_prompt=True) for t in texts]
    return texts


def environment() -> dict[str, Any]:
    """The run store's hardware and package record, plus what only timing needs."""
    import torch

    from harness.runs.store import hardware, package_versions

    driver = None
    if torch.cuda.is_available():
        try:
            import pynvml

            pynvml.nvmlInit()
            driver = pynvml.nvmlSystemGetDriverVersion()
        except Exception:  # noqa: BLE001 - the driver version is informative only
            driver = None
    return {**hardware(), "driver": driver, "torch_threads": torch.get_num_threads(),
            "versions": package_versions()}


def paired_delta(per_doc: dict[str, float], baseline: dict[str, float]
                 ) -> dict[str, Any] | None:
    """The format against its baseline on the questions both answered (``compare_paired``).

    Scores are paired by question id, so formats are compared only where both answered.
    """
    base, cand = pair_by_id(baseline, per_doc)
    if len(base) < 2:
        return None
    return compare_paired(base, cand)


def run_bench(cfg: BenchConfig) -> dict[str, Any]:
    import torch
    from transformers import AutoTokenizer

    console = wide_console()
    cuda = torch.cuda.is_available()
    source = _hf_source(cfg)
    prompts = task_prompts(cfg, AutoTokenizer.from_pretrained(source))
    started = time.time()
    run_dir = interrupted_run_dir(cfg)
    if run_dir is not None:
        console.print(f"resuming the interrupted bench run {run_dir}")
    else:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        run_dir = Path(cfg.output_dir) / f"{stamp}_{sha256_json(cfg.__dict__)[:8]}"
        run_dir.mkdir(parents=True, exist_ok=True)
    device = "cuda:0" if cuda else "cpu"
    measured = device_bandwidth(device)  # of the memory the formats decode from
    bandwidth = measured.gbs
    console.print(f"memory bandwidth of {device}: {bandwidth:.1f} GB/s ({measured.source})")
    threads = cfg.threads or torch.get_num_threads()
    results = {name: _measure_format(name, cfg, source, prompts, run_dir, device, threads,
                                     bandwidth, console) for name in cfg.formats}
    _add_deltas(results, cfg.formats)
    report = {"schema_version": BENCH_SCHEMA, "config": cfg.__dict__,
              "environment": environment(),
              "bandwidth_gbs": bandwidth, "bandwidth": asdict(measured), "results": results}
    write_json_atomic(run_dir / "bench.json", report)
    write_run(run_dir, "bench", run_dir.name, cfg.__dict__, ["bench.json"],
              extra={"label": _label(cfg)}, started=started)
    console.print(bench_table(report))
    console.print(f"written {run_dir / 'bench.json'}")
    return report


def _measure_format(name: str, cfg: BenchConfig, source: Path, prompts: list[str],
                    run_dir: Path, device: str, threads: int, bandwidth: float,
                    console) -> dict[str, Any]:
    """One format's row, measured in its own process, or why it was skipped or crashed.

    A row finished before an interruption is kept; one bad engine never costs the others.
    """
    fmt = parse_format(name)
    python = engine_python(fmt, cfg)
    reason = engine_missing(fmt, python)
    if reason:
        console.print(f"[yellow]skip[/yellow] {name}: {reason}")
        return {"skipped": reason}
    try:
        artifact = prepare_artifact(fmt, source, cfg)
        routing = routed_spec(fmt, artifact, cfg) if fmt.routed else {}
        if fmt.engine.startswith("llama.cpp"):  # settled here, not in the worker's timed load
            from harness.models.llama_cpp_load import extra_bufts_off

            extra_bufts_off()
    except StepCrashed as err:
        console.print(f"[red]crashed[/red] {name}: {err}")
        return err.record
    except SlmbenchError as err:
        console.print(f"[yellow]skip[/yellow] {name}: {err}")
        return {"skipped": str(err)}
    spec = {"format": name, "engine": fmt.engine, "precision": fmt.precision,
            "artifact": str(artifact), "device": device,
            "prompts": prompts, "gen_tokens": cfg.gen_tokens, "min_runs": cfg.min_runs,
            "min_seconds": cfg.min_seconds, "warmup": cfg.warmup,
            "synthetic": cfg.synthetic, "threads": threads, "task": cfg.task,
            "limit": cfg.limit, "data_dir": cfg.data_dir,
            "chat_template": cfg.chat_template, "label": f"{_label(cfg)}:{name}",
            **routing}
    if fmt.engine.startswith("llama.cpp"):  # another library or patch is another measurement
        from harness.models.llama_cpp_patches import llama_cpp_env

        spec["llama_cpp_env"] = llama_cpp_env()
        if not cfg.llama_mmap:  # left out when on, so older specs still match theirs
            spec["use_mmap"] = False
    spec_path, out_path = run_dir / f"spec_{name}.json", run_dir / f"result_{name}.json"
    if _measured_before(spec_path, out_path, spec):
        console.print(f"[bold]{name}[/bold]: measured before the interruption, kept")
    else:
        out_path.unlink(missing_ok=True)
        write_json_atomic(spec_path, spec)
        console.print(f"[bold]{name}[/bold]: measuring in its own process ...")
        proc = subprocess.run([python, "-m", "harness.bench.worker", str(spec_path),
                               str(out_path)], capture_output=True, text=True)
        if proc.returncode != 0 or not out_path.is_file():
            record = crash_record(proc, "worker")
            console.print(f"[red]crashed[/red] {name}: {record['crashed']}")
            return record
    result = json.loads(out_path.read_text())
    _describe_artifact(result, fmt, artifact, spec, source)
    result["bandwidth_utilisation"] = bandwidth_utilisation(
        result["weight_bytes"], result["decode_tok_s"]["p50"], bandwidth)
    return result


def _describe_artifact(result: dict[str, Any], fmt: Format, artifact: Path,
                       spec: dict[str, Any], source: Path) -> None:
    """Size on disk and bits per weight of what was timed, as each engine stores it."""
    result["file_size_mb"] = _size_mb(artifact)
    if fmt.routed:  # the backbone plus every adapter beside it
        backbone, adapters = _file_bytes(artifact), _adapter_bytes(spec)
        result["disk_bytes"] = {"backbone": backbone, "adapters": adapters,
                                "total": backbone + adapters}
        result["file_size_mb"] = round((backbone + adapters) / 1e6, 1)
    if fmt.engine.startswith("llama.cpp"):
        from harness.artefacts.gguf_header import read_gguf_summary

        result["bits_per_weight"] = read_gguf_summary(artifact).bits_per_weight
    elif fmt.engine == "gptq":  # the whole file: 4-bit layers, 16-bit embeddings
        from harness.quant.gptq import DONE_FILE

        result["bits_per_weight"] = 8 * _file_bytes(artifact) / _source_params(source)
        result["quantization"] = json.loads((artifact / DONE_FILE).read_text())
    else:  # hf-peft: the backbone's fp32
        result["bits_per_weight"] = {"fp32": 32, "fp16": 16, "bf16": 16}.get(
            fmt.precision, result.get("bits_per_weight", 32))


def interrupted_run_dir(cfg: BenchConfig) -> Path | None:
    """The newest run folder of this exact configuration that has no ``run.json`` yet.

    A bench killed mid-way leaves its finished formats' results (each written atomically by
    its worker); re-running the same command measures only the formats still missing. A
    finished run is never reopened: running the command again is a new measurement.
    """
    from harness.runs.store import RUN_FILE

    tag = sha256_json(cfg.__dict__)[:8]
    found = sorted(p for p in Path(cfg.output_dir).glob(f"*_{tag}")
                   if p.is_dir() and not (p / RUN_FILE).exists())
    return found[-1] if found else None


def _measured_before(spec_path: Path, out_path: Path, spec: dict[str, Any]) -> bool:
    try:
        return (json.loads(spec_path.read_text()) == json.loads(json.dumps(spec))
                and isinstance(json.loads(out_path.read_text()), dict))
    except (OSError, ValueError):
        return False


def _label(cfg: BenchConfig) -> str:
    """The model as pages name it: a local checkpoint by its folder's name, not its path."""
    model = Path(cfg.model).name if Path(cfg.model).is_dir() else cfg.model
    return model + (f"+{Path(cfg.adapter).name}" if cfg.adapter else "")


def _file_bytes(artifact: Path) -> int:
    files = [artifact] if artifact.is_file() else list(artifact.glob("*.safetensors"))
    return sum(p.stat().st_size for p in files)


def _size_mb(artifact: Path) -> float:
    return round(_file_bytes(artifact) / 1e6, 1)


def _source_params(source: Path) -> int:
    from harness.artefacts.params import checkpoint_params

    return checkpoint_params(source)


def _add_deltas(results: dict[str, Any], order: list[str]) -> None:
    """Pair each row with its baseline: the first full-precision row, or ``hf-peft``.

    A ``+lora`` row pairs with ``hf-peft``, the same routed adapters on transformers: against
    a plain backbone its delta would be the adapters' gain, not the engine's loss. Without an
    ``hf-peft`` row it stays unpaired.
    """
    baseline = next((n for n in order if n in ("fp32", "fp16", "bf16", "gguf-f32")
                     and results.get(n, {}).get("accuracy")), None)
    peft = "hf-peft" if (results.get("hf-peft") or {}).get("accuracy") else None
    for name, result in results.items():
        acc = result.get("accuracy")
        against = peft if parse_format(name).engine == "llama.cpp-lora" else baseline
        if acc and against and name != against:
            acc["delta_vs_baseline"] = paired_delta(
                _scores(acc), _scores(results[against]["accuracy"]))
            if parse_format(name).routed:  # earlier rows' JSON stays as it was
                acc["paired_with"] = against


def _scores(accuracy: dict[str, Any]) -> dict[str, float]:
    return dict(zip(accuracy["ids"], accuracy["per_doc"], strict=True))


def bench_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"slmbench bench ({report['environment']['cpu']}, "
                        f"{report['bandwidth_gbs']:.1f} GB/s)")
    for col in ("format", "threads", "size MB", "bpw", "load s", "prefill tok/s", "decode tok/s",
                "TTFT p50/p95 s", "latency p50/p95 s", "peak RSS MB", "BW util", "energy",
                "accuracy", "Δ (95% CI) vs", "adapters: switch p50/p95 ms"):
        table.add_column(col)
    for name, r in report["results"].items():
        found = no_result(r)
        if found:
            table.add_row(name, *["-"] * 12, f"{found[0]}: {found[1]}", "-")
            continue
        routed = r.get("adapters")
        acc = r.get("accuracy") or {}
        delta = acc.get("delta_vs_baseline")
        energy = r["energy"]
        threads = r.get("threads") or {}
        table.add_row(
            name, f"{threads.get('decode', '?')}/{threads.get('batch', '?')}",
            f"{r['file_size_mb']:.0f}", f"{r['bits_per_weight']:.2f}",
            f"{r['load_s']:.2f}", f"{r['prefill_tok_s']['p50']:.0f}",
            f"{r['decode_tok_s']['p50']:.1f}",
            f"{r['ttft_s']['p50']:.3f}/{r['ttft_s']['p95']:.3f}",
            f"{r['latency_s']['p50']:.2f}/{r['latency_s']['p95']:.2f}",
            f"{r['peak_rss_mb']:.0f}", f"{r['bandwidth_utilisation']:.0%}",
            f"{energy['j_per_token']:.3f} J/tok" if energy["j_per_token"] is not None
            else "not measured",
            f"{acc['value']:.3f} ± {acc['stderr']:.3f}" if acc else "-",
            f"{delta['delta']:+.3f} [{delta['ci_low']:+.3f}, {delta['ci_high']:+.3f}] "
            f"{acc.get('paired_with') or 'baseline'}" if delta else "-",
            f"{routed['n']}: {routed['switch_ms']['p50']:.3f}/{routed['switch_ms']['p95']:.3f}"
            if routed else "-")
    return table
